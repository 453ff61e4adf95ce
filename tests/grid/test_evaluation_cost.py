"""`grid plan` shows what walk-forward evaluation costs: K folds train every configuration K times."""

from __future__ import annotations

import pytest

from forex_pipeline.grid.estimate import BACKTEST_SECONDS, evaluation_cost, model_seconds, reference_scale, training_factor
from forex_pipeline.grid.expand import expand_grid, parse_grid_spec
from forex_pipeline.settings import DEFAULT_SETTINGS_FILE, load_settings
from tests.support import TINY_GRID


def test_walk_forward_trains_one_model_per_fold() -> None:
    assert training_factor("holdout", 3) == 1
    assert [training_factor("walk_forward", k) for k in (1, 3, 5)] == [1, 3, 5]


def test_evaluation_cost_grows_with_folds_and_counts_one_noise_reference_per_feature_set_and_horizon() -> None:
    configurations = expand_grid(parse_grid_spec(TINY_GRID)).configurations
    base = load_settings(DEFAULT_SETTINGS_FILE)
    holdout = evaluation_cost(configurations, base)
    walk = evaluation_cost(configurations, base.model_copy(update={"evaluation": base.evaluation.model_copy(update={"mode": "walk_forward", "folds": 4})}))
    assert holdout.reference_runs == walk.reference_runs == 3          # one feature set x horizons 1, 3, 6
    training = sum((model_seconds(c.model_spec, base) - BACKTEST_SECONDS) * reference_scale(c.feature_set) for c in configurations)
    assert training > 0 and walk.extra_seconds - holdout.extra_seconds == pytest.approx(3 * training)
    assert walk.training_factor == 4 and holdout.training_factor == 1
    assert "4 folds" in walk.describe() and "4x the training" in walk.describe()
