"""Issue 10 end to end on the core: a grid on random-walk bars yields no significant best; a grid on
bars with a planted, learnable edge in one regime flags that regime's best significant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.backtest.run import (
    momentum_bars,
    BASELINES,
    baseline_forecasts,
    run_baseline_backtests,
    run_evaluation_backtests,
    run_noise_backtests,
)
from forex_pipeline.backtest.segments import evaluation_segments
from forex_pipeline.settings import DEFAULT_SETTINGS_FILE, Settings, load_settings
from tests.backtest.trust_support import TEST, SignalModel, evaluate_grid, make_market


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(DEFAULT_SETTINGS_FILE)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_grid_on_a_random_walk_has_no_significant_best(settings: Settings, seed: int) -> None:
    matrix, labels = make_market(seed, edge=0.0)
    bests = evaluate_grid(matrix, labels, settings).bests
    assert len(bests) == 4
    assert not bests["significant"].any()
    assert (bests["n_trials"] == 270).all()
    assert (bests["null_p_value"] > 0.05).all() and (bests["deflated_sharpe"] < 0.95).all()


def test_a_planted_edge_in_one_regime_is_flagged_significant(settings: Settings) -> None:
    matrix, labels = make_market(1, edge=0.3, edge_regime="volatile_ranging")
    bests = evaluate_grid(matrix, labels, settings).bests
    assert bests["significant"].tolist() == [r == "volatile_ranging" for r in bests.index]
    edge = bests.loc["volatile_ranging"]
    assert edge["deflated_sharpe"] >= 0.95 and edge["null_p_value"] <= 0.05 and edge["holdout_score"] > 0
    assert edge["improvement_over_baseline"] == pytest.approx(edge["selection_score"] - edge["baseline_score"])
    assert edge["improvement_over_baseline"] > 0


def test_evaluation_frame_has_both_segments_and_the_trust_columns(settings: Settings) -> None:
    from forex_pipeline.backtest.columns import EVALUATION_COLUMNS

    matrix, labels = make_market(3, edge=0.0)
    frame = run_evaluation_backtests(SignalModel(0), matrix, TEST, labels, settings, "EURUSD").frame
    assert tuple(frame.columns) == EVALUATION_COLUMNS
    assert set(frame["segment"]) == {"selection", "holdout"} and len(frame) == 135 * 2 * 5
    selection, holdout = evaluation_segments(TEST.size, settings.evaluation, 1)
    alls = frame[frame["regime"] == "all"].groupby("segment")["n_bars"].unique()
    assert alls["selection"].tolist() == [selection.size] and alls["holdout"].tolist() == [holdout.size]
    assert all(len(b) == 16 for b in frame["block_sum_ret"])
    assert np.allclose([sum(b) for b in frame["block_sum_ret"]], frame["sum_ret"], atol=1e-12)


def test_baselines_run_through_the_same_simulator(settings: Settings) -> None:
    matrix, labels = make_market(4, edge=0.0)
    frame = run_baseline_backtests(matrix.close, TEST, labels, settings, "EURUSD", 3, "1h")
    assert set(frame["baseline"]) == set(BASELINES) and set(frame["segment"]) == {"test"}
    alls = frame[frame["regime"] == "all"].set_index("baseline")
    assert alls.loc["flat", "trade_count"] == 0 and np.isnan(alls.loc["flat", "sharpe"])
    assert alls.loc["long", "trade_count"] == 1 and alls.loc["long", "exposure"] == pytest.approx(1 - 1 / TEST.size)
    costs = settings.data.costs_for("EURUSD")
    unit = (costs.spread_pips / 2 + costs.commission_pips) * costs.pip_size
    close = matrix.close[TEST]
    long_log = np.log(close[-1] / close[0]) - unit / close[0] - unit / close[-1]
    assert np.log1p(alls.loc["long", "total_return"]) == pytest.approx(long_log, abs=1e-12)
    w = momentum_bars(settings.regimes.trend_hours, matrix.base_timeframe)
    forecasts = baseline_forecasts(matrix.close, TEST, w)
    assert forecasts[3, 0] == pytest.approx(np.log(matrix.close[TEST[0]] / matrix.close[TEST[0] - w]))


def test_noise_runs_are_deterministic_per_seed_and_feature_set(settings: Settings) -> None:
    matrix, labels = make_market(5, edge=0.0)
    segments = evaluation_segments(TEST.size, settings.evaluation, 1)
    args = (matrix.close[TEST], labels[TEST], settings, "EURUSD", 1, "1h", segments)
    a = run_noise_backtests(*args, n_models=12, seed=7)
    b = run_noise_backtests(*args, n_models=12, seed=7)
    c = run_noise_backtests(*args, n_models=12, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a["best_sharpe"].equals(c["best_sharpe"])
    assert len(a) == 12 * 2 * 5 and set(a["segment"]) == {"selection", "holdout"}
    assert (a["eligible"] <= 135).all()
