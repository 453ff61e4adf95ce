"""`grid plan` shows what walk-forward evaluation costs: K folds simulate K/2 + K/(K+1) test segments."""

from __future__ import annotations

import pytest

from forex_pipeline.grid.estimate import backtest_factor, evaluation_cost
from forex_pipeline.grid.expand import expand_grid, parse_grid_spec
from forex_pipeline.settings import DEFAULT_SETTINGS_FILE, load_settings
from tests.support import TINY_GRID


def test_walk_forward_factor_counts_the_rows_every_fold_simulates() -> None:
    assert backtest_factor("holdout", 3) == 1.0
    for k in (1, 3, 5):
        n = 600
        edges = [(j * n) // (k + 1) for j in range(k + 2)]
        rows = sum(edges[i] + (edges[i + 1] - edges[i]) for i in range(1, k + 1))   # selection_i + holdout_i
        assert backtest_factor("walk_forward", k) == pytest.approx(rows / n)


def test_evaluation_cost_grows_with_folds_and_counts_one_noise_reference_per_feature_set_and_horizon() -> None:
    configurations = expand_grid(parse_grid_spec(TINY_GRID)).configurations
    base = load_settings(DEFAULT_SETTINGS_FILE)
    holdout = evaluation_cost(configurations, base)
    walk = evaluation_cost(configurations, base.model_copy(update={"evaluation": base.evaluation.model_copy(update={"mode": "walk_forward", "folds": 4})}))
    assert holdout.reference_runs == walk.reference_runs == 3          # one feature set x horizons 1, 3, 6
    assert walk.backtest_factor == pytest.approx(2 + 0.8) and walk.extra_seconds > holdout.extra_seconds > 0
    assert "4 folds" in walk.describe() and "2.80x" in walk.describe()
