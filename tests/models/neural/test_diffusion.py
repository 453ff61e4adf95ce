"""diffusion-ddpm, diffusion-ddim and sssd: train on real EUR/USD 1h, sample seeded members, reload exactly."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models.base import PREDICTION_METHODS, TrainedModel
from forex_pipeline.models.hyperparameters import HyperparameterError
from forex_pipeline.models.neural import diffusion, sssd
from forex_pipeline.models.neural.common import FILE_FORMAT, NeuralModelFileError
from forex_pipeline.models.neural.diffusion import (
    PathLayout,
    aggregate_paths,
    cosine_schedule,
    ddim_sample,
    ddpm_sample,
)
from forex_pipeline.models.registry import load_model, save_model, train_model
from forex_pipeline.models.spec import ModelSpec
from tests.models.neural.conftest import segment_rows, tiny_context, truncated

DIFFUSION_HP = {"context_length": 16, "channels": 16, "layers": 2, "hidden": 32, "path_points": 8,
                "combiner_rows": 64}
SSSD_HP = {"context_length": 16, "channels": 8, "layers": 1, "state_dim": 8, "path_points": 8,
           "combiner_rows": 64, "diffusion_steps": 10}
HORIZON = 6


def spec(model_type: str, **hp: object) -> ModelSpec:
    base = SSSD_HP if model_type == "sssd" else DIFFUSION_HP
    return ModelSpec(model_type=model_type, horizon=HORIZON, hyperparameters={**base, **hp})


@pytest.fixture(scope="module")
def models(neural_matrix: FeatureMatrix, tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainedModel]:
    out = {}
    for model_type in ("diffusion-ddpm", "diffusion-ddim", "sssd"):
        out[model_type] = train_model(neural_matrix, spec(model_type),
                                      tiny_context(tmp_path_factory.mktemp(model_type)))
    return out


@pytest.mark.parametrize("model_type", ["diffusion-ddpm", "diffusion-ddim", "sssd"])
def test_samples_are_members_for_every_method(models: dict[str, TrainedModel], neural_matrix: FeatureMatrix,
                                              model_type: str) -> None:
    model = models[model_type]
    rows = segment_rows(neural_matrix, HORIZON)
    assert model.n_members == 3                              # settings.training.neural.samples
    target_std = np.std(np.log(neural_matrix.close[rows + HORIZON] / neural_matrix.close[rows]))
    for method in PREDICTION_METHODS:
        preds = model.predict_members(neural_matrix, rows, method)
        assert preds.shape == (3, len(rows))
        assert np.isfinite(preds).all()
        assert 0 < preds.std() < 20 * target_std
        assert model.combiners[method].weights.shape == (3,)
    direct = model.predict_members(neural_matrix, rows, "direct")
    multi = model.predict_members(neural_matrix, rows, "direct_multi")
    np.testing.assert_allclose(direct.mean(axis=0), multi.mean(axis=0), rtol=1e-9, atol=1e-15)
    assert not np.allclose(direct, multi)


@pytest.mark.parametrize("model_type", ["diffusion-ddpm", "diffusion-ddim", "sssd"])
def test_reload_reproduces_predictions_exactly(models: dict[str, TrainedModel], neural_matrix: FeatureMatrix,
                                               tmp_path: Path, model_type: str) -> None:
    model = models[model_type]
    rows = segment_rows(neural_matrix, HORIZON)
    info = save_model(model, tmp_path / "model.pt")
    loaded = load_model(info.path, model.model_spec, info.sha256)
    for method in PREDICTION_METHODS:
        np.testing.assert_array_equal(loaded.predict_members(neural_matrix, rows, method),
                                      model.predict_members(neural_matrix, rows, method))


def test_ddim_uses_fewer_network_evaluations_than_ddpm(models: dict[str, TrainedModel],
                                                       neural_matrix: FeatureMatrix) -> None:
    model = models["diffusion-ddpm"]
    rows = segment_rows(neural_matrix, HORIZON)[:100]
    counts = {}
    for sampler in ("ddpm", "ddim"):
        model._cache = None
        model.network_evaluations = 0
        model.sample_paths(neural_matrix, rows, sampler)
        counts[sampler] = model.network_evaluations
    assert counts == {"ddpm": 20, "ddim": 4}                 # TINY_NEURAL diffusion_steps / ddim_steps, one batch


def test_noise_is_tied_to_the_row_not_the_request(models: dict[str, TrainedModel],
                                                  neural_matrix: FeatureMatrix) -> None:
    model = models["diffusion-ddim"]
    rows = segment_rows(neural_matrix, HORIZON)
    whole = model.predict_members(neural_matrix, rows, "direct")
    part = model.predict_members(neural_matrix, rows[40:90], "direct")
    np.testing.assert_allclose(part, whole[:, 40:90], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("model_type", ["diffusion-ddpm", "sssd"])
def test_no_look_ahead(models: dict[str, TrainedModel], neural_matrix: FeatureMatrix, model_type: str) -> None:
    model = models[model_type]
    rows = segment_rows(neural_matrix, HORIZON)[:40]
    cut = truncated(neural_matrix, int(rows[-1]) + 1)
    np.testing.assert_allclose(model.predict_members(cut, rows, "direct"),
                               model.predict_members(neural_matrix, rows, "direct"), rtol=1e-6, atol=1e-12)


def test_loading_refuses_a_pickled_object(models: dict[str, TrainedModel], tmp_path: Path) -> None:
    model = models["diffusion-ddim"]
    path = tmp_path / "evil.pt"
    diffusion.save(model, path)
    payload = torch.load(path, weights_only=True)
    payload["tensors"]["extra"] = Path("/etc/passwd")          # any non-tensor object is pickled by class
    torch.save(payload, path)
    with pytest.raises(NeuralModelFileError, match="refusing to unpickle"):
        diffusion.load(path, model.model_spec)


def test_loading_refuses_another_spec(models: dict[str, TrainedModel], tmp_path: Path) -> None:
    model = models["diffusion-ddim"]
    path = tmp_path / "m.pt"
    diffusion.save(model, path)
    with pytest.raises(NeuralModelFileError, match="model_spec"):
        diffusion.load(path, spec("diffusion-ddim", channels=8))
    torch.save({"format": "something else"}, path)
    with pytest.raises(NeuralModelFileError, match=FILE_FORMAT):
        diffusion.load(path, model.model_spec)


def test_budget_stops_training_gracefully(neural_matrix: FeatureMatrix, tmp_path: Path) -> None:
    started = time.monotonic()
    model = diffusion.train(neural_matrix, spec("diffusion-ddim", patience=1000),
                            tiny_context(tmp_path, max_epochs=100000, max_seconds=1.0))
    assert time.monotonic() - started < 60  # a hang guard: 100000 epochs would take hours
    assert model.reports["stopped_by"] == "max_seconds"


def test_hyperparameters_are_validated() -> None:
    assert sssd.validate_hyperparameters(ModelSpec(model_type="sssd", horizon=1))["diffusion_steps"] == 50
    with pytest.raises(HyperparameterError, match="ddim_steps"):
        diffusion.validate_hyperparameters(spec("diffusion-ddim", diffusion_steps=5, ddim_steps=8))
    with pytest.raises(HyperparameterError, match="unknown hyperparameter.*'heads'"):
        sssd.validate_hyperparameters(spec("sssd", heads=4))
    with pytest.raises(HyperparameterError, match="sampler"):
        sssd.validate_hyperparameters(spec("sssd", sampler="euler"))


def _oracle(target: float, schedule) -> callable:
    """The exact velocity for data concentrated at `target`: v = sqrt(ab) eps - sqrt(1-ab) x0."""
    def denoise(x: torch.Tensor, t: int) -> torch.Tensor:
        ab = float(schedule.alpha_bar[t])
        eps = (x - math.sqrt(ab) * target) / math.sqrt(1 - ab)
        return math.sqrt(ab) * eps - math.sqrt(1 - ab) * target
    return denoise


def test_samplers_recover_a_point_mass() -> None:
    schedule = cosine_schedule(30)
    noise = torch.randn(30, 64, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    np.testing.assert_allclose(ddpm_sample(_oracle(1.5, schedule), schedule, noise, clip=6.0).numpy(), 1.5, atol=1e-9)
    np.testing.assert_allclose(ddim_sample(_oracle(-0.5, schedule), schedule, 5, noise[0], clip=6.0).numpy(), -0.5,
                               atol=1e-9)


def test_path_aggregations() -> None:
    layout = PathLayout(horizon=8, bounds=np.array([0, 2, 4, 6, 8]), groups=np.array([0, 2, 4]))
    paths = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)      # K=2 samples, 3 rows, 4 chunks
    np.testing.assert_array_equal(aggregate_paths(paths, layout, "direct"), paths.sum(axis=-1))
    np.testing.assert_array_equal(aggregate_paths(paths, layout, "recursive"), paths[..., 0] * 4)
    multi = aggregate_paths(paths, layout, "direct_multi")
    expected0 = paths[0, :, :2].sum(axis=-1) + paths[1, :, 2:].sum(axis=-1)
    np.testing.assert_array_equal(multi[0], expected0)
    with pytest.raises(ValueError, match="prediction method"):
        aggregate_paths(paths, layout, "iterated")


def test_same_seed_same_samples(models: dict[str, TrainedModel], neural_matrix: FeatureMatrix, tmp_path: Path) -> None:
    again = train_model(neural_matrix, spec("diffusion-ddim"), tiny_context(tmp_path))
    rows = segment_rows(neural_matrix, HORIZON)
    np.testing.assert_array_equal(again.predict_members(neural_matrix, rows, "direct"),
                                  models["diffusion-ddim"].predict_members(neural_matrix, rows, "direct"))


@pytest.mark.slow
def test_training_and_validation_sampling_stay_within_the_budget(eurusd_matrix: FeatureMatrix,
                                                                  tmp_path: Path) -> None:
    """Default sssd with DDPM sampling on six months: the sampling reserve keeps the total near max_seconds."""
    budget = 12.0
    context = tiny_context(tmp_path, max_epochs=100000, max_seconds=budget, diffusion_steps=100, samples=5)
    model_spec = ModelSpec(model_type="sssd", horizon=HORIZON, hyperparameters={"sampler": "ddpm", "patience": 1000})
    started = time.monotonic()
    model = sssd.train(eurusd_matrix, model_spec, context)
    assert time.monotonic() - started < 5 * budget            # a hang guard; the reserve logic is checked below
    assert model.reports["stopped_by"] == "max_seconds"
    assert 0 < model.reports["sampling_reserve_seconds"] <= 0.7 * budget or model.reports["combiner_rows"] == 32
    assert 32 <= model.reports["combiner_rows"] <= 256
