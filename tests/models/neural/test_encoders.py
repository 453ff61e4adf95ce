"""autoencoder, vae and latents: fitted on real features, numpy inference, per-feature-set latents cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models.encoders import (
    autoencoder,
    encoder_from_state,
    fit_encoder,
    latents,
)
from forex_pipeline.models.registry import load_model, save_model, train_model
from forex_pipeline.models.spec import ModelSpec
from tests.conftest import REPO_ROOT
from tests.models.neural.conftest import segment_rows, tiny_context


def train_rows(matrix: FeatureMatrix) -> np.ndarray:
    return matrix.X[: int(matrix.n_rows * 0.6)]


@pytest.mark.parametrize("kind", ["autoencoder", "vae"])
def test_encoder_fits_and_round_trips_through_its_state(neural_matrix: FeatureMatrix, tmp_path: Path,
                                                        kind: str) -> None:
    X = train_rows(neural_matrix)
    encoder = fit_encoder(kind, X, 3, seed=1, context=tiny_context(tmp_path), feature_set_hash="fs")
    Z = encoder.transform(neural_matrix.X)
    assert Z.shape == (neural_matrix.n_rows, 3) and np.isfinite(Z).all()
    assert Z[:, 0].std() > 0
    state = encoder.to_state()
    assert state["kind"] == kind
    assert all(isinstance(v, np.ndarray | str) for v in state.values())
    np.testing.assert_array_equal(encoder_from_state(state).transform(neural_matrix.X), Z)


def test_autoencoder_latents_carry_the_features(neural_matrix: FeatureMatrix, tmp_path: Path) -> None:
    """A linear read-out of 4 latents explains most held-out variance of the standardised features."""
    n_train = int(neural_matrix.n_rows * 0.6)
    X = neural_matrix.X
    encoder = fit_encoder("autoencoder", X[:n_train], 4, seed=3,
                          context=tiny_context(tmp_path, max_epochs=60), feature_set_hash="fs")
    center, scale = X[:n_train].mean(axis=0), X[:n_train].std(axis=0)
    S = (X - center) / scale
    Z = np.column_stack([encoder.transform(X), np.ones(len(X))])
    coef, *_ = np.linalg.lstsq(Z[:n_train], S[:n_train], rcond=None)
    residual = S[n_train:] - Z[n_train:] @ coef
    explained = 1 - residual.var(axis=0).sum() / S[n_train:].var(axis=0).sum()
    assert explained > 0.4


def test_encoder_is_indifferent_to_column_scaling(neural_matrix: FeatureMatrix, tmp_path: Path) -> None:
    X = train_rows(neural_matrix)
    context = tiny_context(tmp_path)
    raw = fit_encoder("autoencoder", X, 2, seed=5, context=context, feature_set_hash="fs")
    scaled = fit_encoder("autoencoder", 3.0 * X + 7.0, 2, seed=5, context=context, feature_set_hash="fs")
    np.testing.assert_allclose(scaled.transform(3.0 * neural_matrix.X + 7.0), raw.transform(neural_matrix.X),
                               rtol=1e-4, atol=1e-4)


def test_bad_training_rows_are_refused(neural_matrix: FeatureMatrix, tmp_path: Path) -> None:
    X = train_rows(neural_matrix).copy()
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="encoder vae: the training rows hold NaN"):
        fit_encoder("vae", X, 2, seed=0, context=tiny_context(tmp_path), feature_set_hash="fs")
    with pytest.raises(ValueError, match="encoder autoencoder needs at least"):
        fit_encoder("autoencoder", X[:5], 2, seed=0, context=tiny_context(tmp_path), feature_set_hash="fs")


def test_numpy_inference_does_not_import_torch(neural_matrix: FeatureMatrix, tmp_path: Path) -> None:
    encoder = fit_encoder("vae", train_rows(neural_matrix), 2, seed=0, context=tiny_context(tmp_path),
                          feature_set_hash="fs")
    np.savez(tmp_path / "state.npz", **{k: v for k, v in encoder.to_state().items() if k != "kind"})
    np.save(tmp_path / "X.npy", neural_matrix.X[:10])
    np.save(tmp_path / "expected.npy", encoder.transform(neural_matrix.X[:10]))
    script = (
        "import sys, numpy as np\n"
        "import forex_pipeline.models.neural, forex_pipeline.models.registry\n"
        "from forex_pipeline.models.encoders import encoder_from_state\n"
        f"state = dict(np.load({str(tmp_path / 'state.npz')!r}))\n"
        "state['kind'] = 'vae'\n"
        f"out = encoder_from_state(state).transform(np.load({str(tmp_path / 'X.npy')!r}))\n"
        f"assert np.array_equal(out, np.load({str(tmp_path / 'expected.npy')!r}))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr


def test_latents_are_fitted_once_per_feature_set_and_shared(neural_matrix: FeatureMatrix, tmp_path: Path) -> None:
    context = tiny_context(tmp_path)
    path = latents.cache_path(context.artifacts_dir, neural_matrix.feature_set_hash, 3)
    runs = autoencoder.TRAINING_RUNS
    first = train_model(neural_matrix, ModelSpec(model_type="lightning", encoder="latents", encoder_dim=3, horizon=4,
                                                 hyperparameters={"context_length": 8}), context)
    assert path.is_file() and autoencoder.TRAINING_RUNS == runs + 1
    mtime = path.stat().st_mtime_ns
    second = train_model(neural_matrix, ModelSpec(model_type="diffusion-ddim", encoder="latents", encoder_dim=3,
                                                  horizon=2, hyperparameters={"context_length": 8,
                                                                              "combiner_rows": 32}), context)
    assert autoencoder.TRAINING_RUNS == runs + 1                     # the second spec did not retrain
    assert path.stat().st_mtime_ns == mtime
    for name in ("w0", "b0", "w1", "b1"):
        np.testing.assert_array_equal(first.pipeline.encoder.to_state()[name], second.pipeline.encoder.to_state()[name])
    rows = segment_rows(neural_matrix, 4)
    assert second.predict_members(neural_matrix, rows, "direct").shape == (3, len(rows))
    other_dim = fit_encoder("latents", train_rows(neural_matrix), 2, seed=0, context=context,
                            feature_set_hash=neural_matrix.feature_set_hash)
    assert other_dim.dim == 2 and autoencoder.TRAINING_RUNS == runs + 2


def test_latents_cache_that_does_not_match_is_refused(neural_matrix: FeatureMatrix, tmp_path: Path) -> None:
    context = tiny_context(tmp_path)
    X = train_rows(neural_matrix)
    fit_encoder("latents", X, 2, seed=0, context=context, feature_set_hash="fsx")
    with pytest.raises(latents.LatentsCacheError, match="fsx-2.npz.*columns"):
        fit_encoder("latents", X[:, :5], 2, seed=0, context=context, feature_set_hash="fsx")
    with pytest.raises(ValueError, match="feature_set_hash"):
        latents.cache_path(tmp_path, "../escape", 2)


@pytest.mark.parametrize(("model_type", "kind"), [("lightning", "autoencoder"), ("diffusion-ddim", "vae")])
def test_models_train_on_encoded_features_and_reload_exactly(neural_matrix: FeatureMatrix, tmp_path: Path,
                                                             model_type: str, kind: str) -> None:
    spec = ModelSpec(model_type=model_type, encoder=kind, encoder_dim=3, horizon=3,
                     hyperparameters={"context_length": 8, "path_points": 4})
    model = train_model(neural_matrix, spec, tiny_context(tmp_path))
    assert model.pipeline.encoder.kind == kind and model.pipeline.n_channels == 3 + 1
    rows = segment_rows(neural_matrix, 3)
    info = save_model(model, tmp_path / "m.pt")
    loaded = load_model(info.path, spec, info.sha256)
    assert loaded.pipeline.encoder.kind == kind
    for method in ("direct", "recursive", "direct_multi"):
        np.testing.assert_array_equal(loaded.predict_members(neural_matrix, rows, method),
                                      model.predict_members(neural_matrix, rows, method))
