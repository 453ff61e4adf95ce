"""Every metric on series small enough to compute by hand; stats-based metrics agree with them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forex_pipeline.backtest import metrics as m
from forex_pipeline.backtest import simulator as sim

R = np.array([0.01, -0.02, 0.03, 0.0])


def test_sharpe_by_hand() -> None:
    mean = 0.02 / 4
    std = math.sqrt(((0.005) ** 2 + (0.025) ** 2 + (0.025) ** 2 + (0.005) ** 2) / 3)
    assert m.sharpe(R, 100.0) == pytest.approx(mean / std * 10.0, rel=1e-12)


def test_sortino_by_hand() -> None:
    downside = math.sqrt(0.02**2 / 4)
    assert m.sortino(R, 25.0) == pytest.approx(0.005 / downside * 5.0, rel=1e-12)


def test_max_drawdown_by_hand() -> None:
    # equity 0, .01, -.01, .02, .02: worst fall .02 in log terms from the peak at .01
    assert m.max_drawdown(R) == pytest.approx(1 - math.exp(-0.02), rel=1e-12)
    assert m.max_drawdown(np.array([0.01, 0.02])) == 0.0
    # a loss from the very start counts against the initial equity
    assert m.max_drawdown(np.array([-0.1, 0.05])) == pytest.approx(1 - math.exp(-0.1))


def test_total_return_win_rate_profit_factor_exposure() -> None:
    assert m.total_return(R) == pytest.approx(math.exp(0.02) - 1, rel=1e-12)
    pnls = np.array([0.03, -0.01, 0.02, -0.02, 0.0])
    assert m.win_rate(pnls) == pytest.approx(2 / 5)
    assert m.profit_factor(pnls) == pytest.approx(0.05 / 0.03)
    assert m.exposure(np.array([0, 1, -1, 0])) == 0.5


def test_undefined_metrics_are_nan() -> None:
    flat = np.zeros(10)
    assert math.isnan(m.sharpe(flat, 252.0))                      # no trades: constant returns
    assert math.isnan(m.sharpe(np.full(5, 0.001), 252.0))         # constant non-zero returns
    assert math.isnan(m.sharpe(np.array([0.01]), 252.0))
    assert math.isnan(m.sortino(np.array([0.01, 0.02]), 252.0))   # no losing bar
    assert math.isnan(m.win_rate(np.array([])))
    assert math.isnan(m.profit_factor(np.array([0.01, 0.02])))    # no losing trade
    assert math.isnan(m.profit_factor(np.array([])))
    assert math.isnan(m.total_return(np.array([])))
    assert math.isnan(m.max_drawdown(np.array([])))
    with pytest.raises(ValueError, match="NaN"):
        m.sharpe(np.array([0.1, np.nan]), 252.0)


def test_metrics_from_stats_agree_with_series_functions() -> None:
    rng = np.random.default_rng(3)
    r = rng.normal(0.0002, 0.01, 300)
    r[rng.random(300) < 0.3] = 0.0
    positions = (r != 0).astype(int)
    pnls = rng.normal(0.001, 0.02, 40)
    stats = np.zeros(sim.N_STATS)
    stats[sim.SUM_RET], stats[sim.SUM_SQ] = r.sum(), (r**2).sum()
    stats[sim.SUM_DOWN_SQ] = (np.minimum(r, 0) ** 2).sum()
    stats[sim.N_BARS], stats[sim.N_EXPOSED] = r.size, positions.sum()
    equity = np.concatenate([[0.0], np.cumsum(r)])
    stats[sim.MAX_DD_LOG] = (np.maximum.accumulate(equity) - equity).max()
    stats[sim.TRADES], stats[sim.WINS] = pnls.size, (pnls > 0).sum()
    stats[sim.GROSS_PROFIT], stats[sim.GROSS_LOSS] = pnls[pnls > 0].sum(), -pnls[pnls <= 0].sum()
    got = m.metrics_from_stats(stats[None, :], 6240.0)
    assert got["sharpe"][0] == pytest.approx(m.sharpe(r, 6240.0), rel=1e-9)
    assert got["sortino"][0] == pytest.approx(m.sortino(r, 6240.0), rel=1e-9)
    assert got["max_drawdown"][0] == pytest.approx(m.max_drawdown(r), rel=1e-12)
    assert got["total_return"][0] == pytest.approx(m.total_return(r), rel=1e-12)
    assert got["win_rate"][0] == pytest.approx(m.win_rate(pnls))
    assert got["profit_factor"][0] == pytest.approx(m.profit_factor(pnls), rel=1e-12)
    assert got["exposure"][0] == pytest.approx(m.exposure(positions))
    assert got["trade_count"][0] == 40 and got["n_bars"][0] == 300


def test_metrics_from_stats_without_trades_or_bars() -> None:
    stats = np.zeros((2, sim.N_STATS))
    stats[0, sim.N_BARS] = 50
    got = m.metrics_from_stats(stats, 252.0)
    assert np.isnan(got["sharpe"]).all() and np.isnan(got["win_rate"]).all() and np.isnan(got["profit_factor"]).all()
    assert got["exposure"][0] == 0.0 and np.isnan(got["exposure"][1])
    assert got["total_return"][0] == 0.0 and np.isnan(got["total_return"][1])
