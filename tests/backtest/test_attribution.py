"""One attribution rule for every per-regime figure (backtest/simulator.py): a trade and all its bars'
returns belong to the regime it was entered in; Sharpe, trades, win rate, profit factor and the
min_trades gate therefore measure the same set."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forex_pipeline.backtest import simulator as sim
from forex_pipeline.backtest.metrics import kurtosis, metrics_from_stats, skewness, trust_from_stats
from forex_pipeline.backtest.simulator import simulate_grid
from forex_pipeline.settings import SymbolCosts
from tests.backtest.test_simulator import random_case, reference

PIP = SymbolCosts(pip_size=0.0001, spread_pips=2.0, commission_pips=0.0)   # 1 pip per unit of change


def test_a_trade_and_its_bars_belong_to_the_regime_it_was_entered_in() -> None:
    close = np.array([1.0, 1.01, 1.02, 1.015, 1.0, 1.005, 1.0])
    regimes = np.array([0, 0, 1, 1, 1, 0, 0])
    forecast = np.array([[1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0]])
    stats = simulate_grid(forecast, np.ones_like(forecast), np.array([0.5]), close, 3, PIP, regimes, 2)[0, 0]
    lr = np.log(close[1:] / close[:-1])
    cost = 1e-4 / close
    # trade A: long at 0, flipped at 2 (regime 1 bar, but A was entered in regime 0)
    a_pnl = lr[0] + lr[1] - cost[0] - cost[2]
    # trade B: short entered at 2 in regime 1, held 3 bars, closed at the close of bar 5 (a regime 0 bar)
    b_pnl = -lr[2] - lr[3] - lr[4] - cost[2] - cost[5]
    assert stats[0, sim.SUM_RET] == pytest.approx(a_pnl, abs=1e-15)
    assert stats[1, sim.SUM_RET] == pytest.approx(b_pnl, abs=1e-15)
    assert stats[:2, sim.TRADES].tolist() == [1.0, 1.0]
    # regime 0: bars 0, 1, the flip's closing cost, flat bar 6; regime 1: the flip's new leg, 3, 4, 5
    assert stats[:2, sim.N_BARS].tolist() == [4.0, 4.0] and stats[2, sim.N_BARS] == 7.0
    assert stats[2, sim.SUM_RET] == pytest.approx(a_pnl + b_pnl, abs=1e-15)
    assert stats[0, sim.N_EXPOSED] == 2 and stats[1, sim.N_EXPOSED] == 3


@pytest.mark.parametrize("seed", range(6))
def test_every_regime_figure_comes_from_the_same_trades(seed: int) -> None:
    close, forecasts, confidences, regimes = random_case(seed, n=900)
    costs = SymbolCosts(pip_size=0.0001, spread_pips=1.0, commission_pips=0.5)
    stats = simulate_grid(forecasts, confidences, np.array([0.0, 0.6]), close, 1 + seed % 4, costs, regimes, 3)
    per_regime = stats[:, :, :3]
    # the regime's returns sum to the P&L of the trades entered in it (win rate and profit factor's trades)
    np.testing.assert_allclose(
        per_regime[..., sim.SUM_RET], per_regime[..., sim.GROSS_PROFIT] - per_regime[..., sim.GROSS_LOSS], atol=1e-12
    )
    # ... and to the whole segment's returns when added up; the trades add up too
    np.testing.assert_allclose(per_regime[..., sim.SUM_RET].sum(-1), stats[:, :, 3, sim.SUM_RET], atol=1e-12)
    np.testing.assert_array_equal(per_regime[..., sim.TRADES].sum(-1), stats[:, :, 3, sim.TRADES])
    # CSCV blocks partition each regime's series
    for first, block in ((sim.SUM_RET, sim.BLOCK_RET), (sim.SUM_SQ, sim.BLOCK_SQ), (sim.N_BARS, sim.BLOCK_N)):
        np.testing.assert_allclose(stats[..., block : block + sim.CSCV_BLOCKS].sum(-1), stats[..., first], atol=1e-12)


def test_moments_from_the_kernel_equal_those_of_the_regime_series() -> None:
    close, forecasts, confidences, regimes = random_case(11, n=1200)
    costs = SymbolCosts(pip_size=0.0001, spread_pips=1.0, commission_pips=0.5)
    stats = simulate_grid(forecasts[:1], confidences[:1], np.array([0.3]), close, 3, costs, regimes, 3)[0, 0]
    _, returns, _, parts = reference(forecasts[0], confidences[0], 0.3, close, 3, costs, regimes, 3)
    trust = trust_from_stats(stats)
    metrics = metrics_from_stats(stats, 6240.0)
    for g in range(3):
        series = np.array([v for _, owner, v, _ in parts if owner == g])
        assert trust["skewness"][g] == pytest.approx(skewness(series), rel=1e-6)
        assert trust["kurtosis"][g] == pytest.approx(kurtosis(series), rel=1e-6)
        assert trust["sharpe_per_bar"][g] == pytest.approx(series.mean() / series.std(ddof=1), rel=1e-9)
        assert metrics["sharpe"][g] == pytest.approx(trust["sharpe_per_bar"][g] * math.sqrt(6240.0), rel=1e-12)
    assert trust["kurtosis"][3] == pytest.approx(kurtosis(returns), rel=1e-6)


def test_skewness_and_kurtosis_match_scipy() -> None:
    from scipy import stats as st

    r = np.random.default_rng(0).standard_t(4, 5000) * 1e-3
    assert skewness(r) == pytest.approx(st.skew(r), rel=1e-8)
    assert kurtosis(r) == pytest.approx(st.kurtosis(r, fisher=False), rel=1e-8)
