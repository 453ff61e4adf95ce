"""`lightning` trains on real EUR/USD 1h features, predicts all methods, reloads exactly, honours budgets."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.features.targets import forward_log_return
from forex_pipeline.models.base import PREDICTION_METHODS, TrainedModel
from forex_pipeline.models.hyperparameters import HyperparameterError
from forex_pipeline.models.neural import lightning
from forex_pipeline.models.torch_training import NeuralTrainingError
from forex_pipeline.models.registry import (
    file_suffix,
    load_model,
    save_model,
    train_model,
)
from forex_pipeline.models.spec import ModelSpec
from tests.models.neural.conftest import segment_rows, tiny_context, truncated

HP = {"context_length": 16, "hidden": 32, "path_points": 8}


def spec(horizon: int = 4, **hp: object) -> ModelSpec:
    return ModelSpec(model_type="lightning", horizon=horizon, hyperparameters={**HP, **hp})


@pytest.fixture(scope="module")
def trained(neural_matrix: FeatureMatrix, tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    return train_model(neural_matrix, spec(), tiny_context(tmp_path_factory.mktemp("lightning")))


def test_predicts_every_method_with_k_members(trained: TrainedModel, neural_matrix: FeatureMatrix) -> None:
    rows = segment_rows(neural_matrix, 4)
    target = forward_log_return(neural_matrix.close, 4)[rows]
    assert isinstance(trained, TrainedModel)
    assert trained.n_members == 2
    for method in PREDICTION_METHODS:
        preds = trained.predict_members(neural_matrix, rows, method)
        assert preds.shape == (2, len(rows))
        assert np.isfinite(preds).all()
        assert 0 < preds.std() < 5 * target.std()                  # log-return scale, not unit scale
        assert not np.allclose(preds[0], preds[1])                  # members are different seeds
        assert set(trained.combiners[method].weights.shape) == {2}
    direct = trained.predict_members(neural_matrix, rows, "direct")
    assert not np.allclose(direct, trained.predict_members(neural_matrix, rows, "recursive"))


def test_reload_reproduces_predictions_exactly(trained: TrainedModel, neural_matrix: FeatureMatrix,
                                               tmp_path: Path) -> None:
    rows = segment_rows(neural_matrix, 4)
    path = tmp_path / f"m{file_suffix('lightning')}"
    info = save_model(trained, path)
    loaded = load_model(path, trained.model_spec, info.sha256)
    for method in PREDICTION_METHODS:
        np.testing.assert_array_equal(loaded.predict_members(neural_matrix, rows, method),
                                      trained.predict_members(neural_matrix, rows, method))
        np.testing.assert_array_equal(loaded.combiners[method].stacking_coef, trained.combiners[method].stacking_coef)


def test_no_look_ahead(trained: TrainedModel, neural_matrix: FeatureMatrix) -> None:
    rows = segment_rows(neural_matrix, 4)[:50]
    cut = truncated(neural_matrix, int(rows[-1]) + 1)
    for method in PREDICTION_METHODS:
        np.testing.assert_allclose(trained.predict_members(cut, rows, method),
                                   trained.predict_members(neural_matrix, rows, method), rtol=1e-6, atol=1e-12)


def test_same_seed_same_model(neural_matrix: FeatureMatrix, tmp_path: Path, trained: TrainedModel) -> None:
    again = train_model(neural_matrix, spec(), tiny_context(tmp_path))
    other_seed = train_model(neural_matrix, spec(), tiny_context(tmp_path, seed=8))
    rows = segment_rows(neural_matrix, 4)
    np.testing.assert_array_equal(again.predict_members(neural_matrix, rows, "direct"),
                                  trained.predict_members(neural_matrix, rows, "direct"))
    assert not np.allclose(other_seed.predict_members(neural_matrix, rows, "direct"),
                           trained.predict_members(neural_matrix, rows, "direct"))


def test_long_horizon_caps_path_points_and_members_override(neural_matrix: FeatureMatrix, tmp_path: Path) -> None:
    model = train_model(neural_matrix, spec(horizon=30, members=3), tiny_context(tmp_path))
    assert model.n_members == 3
    assert model.layout.n_path == 8 and model.layout.bounds[-1] == 30
    assert model.layout.n_multi == 4                          # training.direct_multi_steps
    rows = segment_rows(neural_matrix, 30)
    for method in PREDICTION_METHODS:
        assert model.predict_members(neural_matrix, rows, method).shape == (3, len(rows))


def test_budget_stops_training_gracefully(neural_matrix: FeatureMatrix, tmp_path: Path) -> None:
    started = time.monotonic()
    model = lightning.train(neural_matrix, spec(patience=1000), tiny_context(tmp_path, max_epochs=100000, max_seconds=0.5))
    assert time.monotonic() - started < 60  # a hang guard: 100000 epochs would take hours
    assert [r["stopped_by"] for r in model.reports[:-1]] == ["max_seconds", "max_seconds"]


def test_hyperparameters_are_validated() -> None:
    resolved = lightning.validate_hyperparameters(ModelSpec(model_type="lightning", horizon=2))
    assert resolved["context_length"] == 50 and resolved["members"] is None
    with pytest.raises(HyperparameterError, match="unknown hyperparameter.*'hiden'"):
        lightning.validate_hyperparameters(spec(hiden=3))
    with pytest.raises(HyperparameterError, match="hyperparameters.dropout"):
        lightning.validate_hyperparameters(spec(dropout=1.5))


def test_too_few_rows_is_a_clear_error(neural_matrix: FeatureMatrix, tmp_path: Path) -> None:
    with pytest.raises(NeuralTrainingError, match="too few rows"):
        lightning.train(truncated(neural_matrix, 40), spec(), tiny_context(tmp_path))


def test_refuses_another_model_type(neural_matrix: FeatureMatrix, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model_type"):
        lightning.train(neural_matrix, ModelSpec(model_type="sssd", horizon=2), tiny_context(tmp_path))
