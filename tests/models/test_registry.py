"""Specs that cannot train are refused before any work, with an error naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models import encoders, linear, registry
from forex_pipeline.models.registry import (
    FAMILY_MODULES,
    ModelSpecError,
    TrainingContext,
    family_module,
    train_model,
    validate_spec,
)
from forex_pipeline.models.spec import ModelSpec
from tests.models.conftest import small_settings


@pytest.fixture()
def no_training(monkeypatch):
    """Fail the test if the linear family ever starts fitting."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started although the spec is invalid")
    monkeypatch.setattr(linear, "train_tabular", refuse)


def test_every_model_type_has_a_family_module():
    from forex_pipeline.models.spec import MODEL_TYPES

    assert set(FAMILY_MODULES) == set(MODEL_TYPES)
    assert FAMILY_MODULES["diffusion-ddim"] == FAMILY_MODULES["diffusion-ddpm"]


def test_unknown_model_type_is_refused(eurusd_matrix, no_training):
    with pytest.raises(ValidationError, match="model_type"):
        ModelSpec(model_type="xgboost", horizon=3)
    spec = ModelSpec.model_construct(model_type="xgboost", encoder="none", encoder_dim=8, horizon=3, hyperparameters={})
    with pytest.raises(ModelSpecError, match="model_type 'xgboost' is unknown"):
        validate_spec(spec, eurusd_matrix, small_settings())


def test_missing_family_module_names_the_model_type_and_never_falls_back(monkeypatch, eurusd_matrix, tmp_path):
    monkeypatch.setitem(FAMILY_MODULES, "lightning", "forex_pipeline.models.neural.no_such_module")
    spec = ModelSpec(model_type="lightning", horizon=3)
    context = TrainingContext(settings=small_settings(), artifacts_dir=tmp_path)
    with pytest.raises(ModelSpecError, match="'lightning' is not available.*no_such_module"):
        train_model(eurusd_matrix, spec, context)
    with pytest.raises(ModelSpecError, match="lightning"):
        family_module("lightning")


def test_unknown_or_missing_encoder_is_refused(monkeypatch, eurusd_matrix, no_training):
    spec = ModelSpec.model_construct(model_type="ridge", encoder="umap", encoder_dim=8, horizon=3, hyperparameters={})
    with pytest.raises(ModelSpecError, match="model_spec.encoder.*'umap' is unknown"):
        validate_spec(spec, eurusd_matrix, small_settings())
    monkeypatch.setitem(encoders.ENCODER_MODULES, "vae", "forex_pipeline.models.encoders.no_such_vae")
    with pytest.raises(ModelSpecError, match="model_spec.encoder.*'vae' is not available"):
        validate_spec(ModelSpec(model_type="ridge", encoder="vae", horizon=3), eurusd_matrix, small_settings())


def test_horizon_at_or_beyond_usable_bars_is_refused(eurusd_matrix, tmp_path, no_training):
    short = FeatureMatrix(
        feature_set_hash="short", timestamps=eurusd_matrix.timestamps[:120], X=eurusd_matrix.X[:120],
        feature_names=eurusd_matrix.feature_names, close=eurusd_matrix.close[:120], base_timeframe="1h", symbol="EURUSD",
    )
    context = TrainingContext(settings=small_settings(), artifacts_dir=tmp_path)
    with pytest.raises(ModelSpecError, match="model_spec.horizon 120 must be smaller than the 120 usable bars"):
        train_model(short, ModelSpec(model_type="ridge", horizon=120), context)
    with pytest.raises(ModelSpecError, match="model_spec.horizon 60"):
        train_model(short, ModelSpec(model_type="ridge", horizon=60), context)


@pytest.mark.parametrize(
    ("model_type", "hyperparameters", "message"),
    [
        ("ridge", {"alpah": 1.0}, r"unknown hyperparameter\(s\) \['alpah'\]"),
        ("rf", {"n_estimators": "many"}, "hyperparameters.n_estimators must be an integer"),
        ("rf", {"max_depth": 0}, "hyperparameters.max_depth is 0; must be >= 1"),
        ("lasso", {"alpha": 0.0}, "hyperparameters.alpha is 0.0; must be > 0"),
        ("elasticnet", {"l1_ratio": 1.5}, "hyperparameters.l1_ratio is 1.5; must be <= 1"),
        ("lightgbm", {"learning_rate": float("nan")}, "hyperparameters.learning_rate must be a finite number"),
        ("lightgbm", {"boosting": "dart"}, "unknown hyperparameter"),
    ],
)
def test_bad_hyperparameters_are_refused_naming_the_field(model_type, hyperparameters, message, eurusd_matrix, tmp_path, no_training):
    spec = ModelSpec(model_type=model_type, horizon=3, hyperparameters=hyperparameters)
    context = TrainingContext(settings=small_settings(), artifacts_dir=tmp_path)
    with pytest.raises(ModelSpecError, match=message):
        train_model(eurusd_matrix, spec, context)


def test_defaults_are_filled(eurusd_matrix):
    resolved = validate_spec(ModelSpec(model_type="rf", horizon=3, hyperparameters={"n_estimators": 7}),
                             eurusd_matrix, small_settings())
    assert resolved["n_estimators"] == 7
    assert {"max_depth", "min_samples_leaf", "n_jobs"} <= set(resolved)


def test_matrix_without_ret_lags_is_refused(eurusd_matrix, no_training):
    keep = [i for i, name in enumerate(eurusd_matrix.feature_names) if not name.startswith("ret_lag_")]
    matrix = FeatureMatrix(
        feature_set_hash="nolags", timestamps=eurusd_matrix.timestamps, X=eurusd_matrix.X[:, keep],
        feature_names=tuple(eurusd_matrix.feature_names[i] for i in keep), close=eurusd_matrix.close,
        base_timeframe="1h", symbol="EURUSD",
    )
    with pytest.raises(ModelSpecError, match="ret_lag"):
        validate_spec(ModelSpec(model_type="ridge", horizon=3), matrix, small_settings())


def test_time_budget_raises_a_clear_timeout(eurusd_matrix, tmp_path):
    context = TrainingContext(settings=small_settings(), artifacts_dir=tmp_path, deadline_seconds=1e-9)
    with pytest.raises(TimeoutError, match="budget of 1e-09s"):
        train_model(eurusd_matrix, ModelSpec(model_type="ridge", horizon=3), context)


def test_lightgbm_is_not_imported_by_the_registry():
    import subprocess
    import sys

    code = ("import sys, forex_pipeline.models.registry as r; r.family_module('ridge'); "
            "print('lightgbm' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    assert registry.file_suffix("ridge") == ".joblib"
