"""Encoders: fitted on training rows only, dimension capped, state is plain data and round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models.encoders import EncoderError, encoder_from_state, fit_encoder
from forex_pipeline.models.registry import TrainingContext, train_model
from forex_pipeline.models.spec import ModelSpec
from tests.models.conftest import small_settings


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return isinstance(value, (np.ndarray, str, int, float, bool)) or value is None


@pytest.mark.parametrize("kind", ["none", "pca"])
def test_state_is_plain_data_and_round_trips(kind):
    X = np.random.default_rng(0).normal(size=(200, 6)) * np.array([1, 10, 100, 1e-3, 1, 5])
    encoder = fit_encoder(kind, X, 3, seed=0, context=None, feature_set_hash="h")
    state = encoder.to_state()
    assert _plain(state) and state["kind"] == kind
    assert np.array_equal(encoder_from_state(state).transform(X), encoder.transform(X))


def test_pca_dim_is_capped_at_feature_count_and_components_are_orthonormal():
    X = np.random.default_rng(1).normal(size=(100, 4))
    encoder = fit_encoder("pca", X, 16, seed=0, context=None, feature_set_hash="h")
    Z = encoder.transform(X)
    assert Z.shape == (100, 4)
    np.testing.assert_allclose(encoder.components @ encoder.components.T, np.eye(4), atol=1e-10)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-10)


def test_unknown_encoder_and_wrong_width_are_refused():
    with pytest.raises(EncoderError, match="'umap' is unknown"):
        fit_encoder("umap", np.zeros((5, 2)), 2, seed=0, context=None, feature_set_hash="h")
    encoder = fit_encoder("pca", np.random.default_rng(2).normal(size=(20, 3)), 2, seed=0, context=None, feature_set_hash="h")
    with pytest.raises(ValueError, match="fitted on 3 columns"):
        encoder.transform(np.zeros((4, 5)))


def test_pca_is_fitted_on_training_rows_only(eurusd_matrix, tmp_path):
    spec = ModelSpec(model_type="ridge", encoder="pca", encoder_dim=3, horizon=2)
    context = TrainingContext(settings=small_settings(members=1), artifacts_dir=tmp_path)
    model = train_model(eurusd_matrix, spec, context)
    changed_X = eurusd_matrix.X.copy()
    first_validation = int(np.floor(eurusd_matrix.n_rows * 0.6))
    changed_X[first_validation:] = np.random.default_rng(5).normal(size=changed_X[first_validation:].shape) * 50
    changed = FeatureMatrix(
        feature_set_hash=eurusd_matrix.feature_set_hash, timestamps=eurusd_matrix.timestamps, X=changed_X,
        feature_names=eurusd_matrix.feature_names, close=eurusd_matrix.close, base_timeframe="1h", symbol="EURUSD",
    )
    again = train_model(changed, spec, context)
    for key, value in model.encoder.to_state().items():
        assert np.array_equal(value, again.encoder.to_state()[key]), key
    assert np.array_equal(model.scaler.center, again.scaler.center)
    rows = np.arange(100, 200)
    assert np.array_equal(model.predict_members(eurusd_matrix, rows, "direct"),
                          again.predict_members(changed, rows, "direct"))
