"""Every classical family trains on real EUR/USD 1h bars, predicts sane shapes and reloads bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forex_pipeline.features.splits import split_rows
from forex_pipeline.features.targets import forward_log_return
from forex_pipeline.models.base import PREDICTION_METHODS, TrainedModel
from forex_pipeline.models.registry import TrainingContext, file_suffix, load_model, save_model, train_model
from forex_pipeline.models.spec import ModelSpec
from forex_pipeline.models.files import ModelFileError, model_file_path
from tests.models.conftest import small_settings

HORIZON = 4
FAMILIES = {
    "ridge": {},
    "lasso": {},
    "elasticnet": {},
    "rf": {"n_estimators": 8, "max_depth": 4},
    "lightgbm": {"n_estimators": 25},
}


def out_of_sample(matrix, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Test rows whose forward target exists, and that target."""
    splits = split_rows(matrix.n_rows, horizon, 0.6, 0.2)
    rows = splits.test[splits.test + horizon < matrix.n_rows]
    return rows, forward_log_return(matrix.close, horizon)[rows]


@pytest.fixture(scope="module")
def trained(eurusd_matrix, tmp_path_factory) -> dict[str, tuple[ModelSpec, TrainedModel, TrainingContext]]:
    artifacts = tmp_path_factory.mktemp("artifacts")
    context = TrainingContext(settings=small_settings(members=2), artifacts_dir=artifacts, seed=7)
    models = {}
    for family, hyperparameters in FAMILIES.items():
        spec = ModelSpec(model_type=family, horizon=HORIZON, hyperparameters=hyperparameters)
        models[family] = (spec, train_model(eurusd_matrix, spec, context), context)
    return models


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_predicts_finite_members_and_reports_oos_mse(family, trained, eurusd_matrix, record_property):
    spec, model, _ = trained[family]
    rows, y = out_of_sample(eurusd_matrix, HORIZON)
    assert isinstance(model, TrainedModel)
    assert model.n_members == 2
    zero_mse = float(np.mean(y**2))
    for method in PREDICTION_METHODS:
        preds = model.predict_members(eurusd_matrix, rows, method)
        assert preds.shape == (2, len(rows))
        assert np.isfinite(preds).all()
        assert np.abs(preds).max() < 0.05, "a 4-hour EUR/USD forecast beyond 5% is not a return forecast"
        mse = float(np.mean((preds.mean(axis=0) - y) ** 2))
        assert np.isfinite(mse)
        record_property(f"{family}_{method}_oos_mse_ratio_vs_zero", mse / zero_mse)
        print(f"family={family} method={method} oos_mse={mse:.3e} zero_mse={zero_mse:.3e} ratio={mse / zero_mse:.4f}")
    assert set(model.combiners) == set(PREDICTION_METHODS)
    for combiners in model.combiners.values():
        assert combiners.weights.shape == (2,) and np.isclose(combiners.weights.sum(), 1.0)
        assert np.isfinite(combiners.stacking_coef).all() and np.isfinite(combiners.stacking_intercept)
    assert np.isfinite(model.metrics["validation_mse_direct_mean"])
    assert model.metrics["validation_mse_zero"] > 0


@pytest.mark.parametrize("family", list(FAMILIES))
def test_reload_from_store_is_bit_for_bit(family, trained, eurusd_matrix, tmp_path):
    spec, model, _ = trained[family]
    path = model_file_path(tmp_path, "EURUSD-1h-d180-abcdef12", spec.partition_key, file_suffix(family))
    info = save_model(model, path)
    assert info.path == path and path.is_file() and info.bytes == path.stat().st_size
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file may be left behind"
    reloaded = load_model(path, spec, info.sha256)
    rows, _ = out_of_sample(eurusd_matrix, HORIZON)
    for method in PREDICTION_METHODS:
        assert np.array_equal(model.predict_members(eurusd_matrix, rows, method),
                              reloaded.predict_members(eurusd_matrix, rows, method)), method
        assert np.array_equal(model.combiners[method].weights, reloaded.combiners[method].weights)
        assert np.array_equal(model.combiners[method].stacking_coef, reloaded.combiners[method].stacking_coef)


def test_members_differ_and_training_is_reproducible(trained, eurusd_matrix):
    spec, model, context = trained["rf"]
    rows, _ = out_of_sample(eurusd_matrix, HORIZON)
    preds = model.predict_members(eurusd_matrix, rows, "direct")
    assert not np.array_equal(preds[0], preds[1]), "members must differ (seed and bootstrap)"
    again = train_model(eurusd_matrix, spec, context)
    assert np.array_equal(preds, again.predict_members(eurusd_matrix, rows, "direct"))


def test_pca_encoder_model_reloads_bit_for_bit(eurusd_matrix, tmp_path):
    spec = ModelSpec(model_type="ridge", encoder="pca", encoder_dim=4, horizon=3)
    context = TrainingContext(settings=small_settings(members=2), artifacts_dir=tmp_path)
    model = train_model(eurusd_matrix, spec, context)
    assert model.metrics["encoded_dim"] == 4
    info = save_model(model, tmp_path / "m.joblib")
    reloaded = load_model(info.path, spec, info.sha256)
    rows = np.arange(eurusd_matrix.n_rows - 50, eurusd_matrix.n_rows)
    for method in PREDICTION_METHODS:
        assert np.array_equal(model.predict_members(eurusd_matrix, rows, method),
                              reloaded.predict_members(eurusd_matrix, rows, method))


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["tampered", "truncated", "missing"])
def test_damaged_model_file_is_refused(damage, trained, tmp_path):
    spec, model, _ = trained["ridge"]
    info = save_model(model, tmp_path / "ridge.joblib")
    if damage == "tampered":
        _flip_one_byte(info.path)
    elif damage == "truncated":
        info.path.write_bytes(info.path.read_bytes()[: info.bytes // 2])
    else:
        info.path.unlink()
    expected = "missing" if damage == "missing" else "corrupt or was modified"
    with pytest.raises(ModelFileError, match=expected) as excinfo:
        load_model(info.path, spec, info.sha256)
    assert str(info.path) in str(excinfo.value)


def test_loading_a_file_for_another_spec_is_refused(trained, tmp_path):
    spec, model, _ = trained["ridge"]
    info = save_model(model, tmp_path / "ridge.joblib")
    other = ModelSpec(model_type="ridge", horizon=HORIZON, hyperparameters={"alpha": 2.0})
    with pytest.raises(ValueError, match="model_spec"):
        load_model(info.path, other, info.sha256)


def test_predict_members_refuses_bad_input(trained, eurusd_matrix):
    _, model, _ = trained["ridge"]
    with pytest.raises(ValueError, match="prediction method"):
        model.predict_members(eurusd_matrix, np.arange(3), "sideways")
    with pytest.raises(ValueError, match="rows"):
        model.predict_members(eurusd_matrix, np.array([eurusd_matrix.n_rows]), "direct")
    assert model.predict_members(eurusd_matrix, np.array([], dtype=np.int64), "recursive").shape == (2, 0)


def test_trains_on_the_feature_builder_output_with_its_scaling(eurusd_1h, tmp_path):
    from datetime import datetime, timezone

    from forex_pipeline.features.build import build_feature_matrix, select_window
    from forex_pipeline.features.spec import FeatureSetSpec, Preprocessing

    spec = FeatureSetSpec(
        symbol="EUR/USD", base_timeframe="1h", days_history=120, as_of=datetime(2019, 6, 1, tzinfo=timezone.utc),
        indicator_timeframes={"rsi": ("1h", "4h"), "atr": ("1h",)}, additional_features=("returns_volatility",),
        preprocessing=Preprocessing(warmup_bars=100, scaling="robust"),
    )
    matrix = build_feature_matrix(spec, select_window(eurusd_1h, spec))
    model_spec = ModelSpec(model_type="elasticnet", encoder="pca", encoder_dim=5, horizon=6)
    model = train_model(matrix, model_spec, TrainingContext(settings=small_settings(members=2), artifacts_dir=tmp_path))
    assert model.scaler.kind == "robust"
    rows, _ = out_of_sample(matrix, 6)
    for method in PREDICTION_METHODS:
        assert np.isfinite(model.predict_members(matrix, rows, method)).all()


def test_a_file_that_is_not_a_model_is_refused_by_the_family_loader(trained, tmp_path):
    from forex_pipeline.models import linear

    spec, _, _ = trained["ridge"]
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"definitely not joblib")
    with pytest.raises(ValueError, match=f"model file {junk} cannot be read"):
        linear.load(junk, spec)
    import joblib

    joblib.dump({"format": "something-else"}, junk)
    with pytest.raises(ValueError, match="is not a forex_pipeline.tabular/1 model file"):
        linear.load(junk, spec)
