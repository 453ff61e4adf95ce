"""The numba simulator against a plain per-bar Python reference, and against vectorbt."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forex_pipeline.backtest import simulator as sim
from forex_pipeline.backtest.simulator import equity_curve, simulate_grid
from forex_pipeline.settings import SymbolCosts

COSTS = SymbolCosts(pip_size=0.0001, spread_pips=1.0, commission_pips=0.5)
FREE = SymbolCosts(pip_size=0.0001, spread_pips=0.0, commission_pips=0.0)


def reference(forecast, conf, threshold, close, horizon, costs, regimes, n_regimes):
    """Per-bar loop written from the written semantics and attribution rule, independent of the kernel.

    Every bar yields parts (owner regime, return, exposed): one part normally, two on a flip between
    trades entered in different regimes (the old trade's closing cost, then the new trade's bar).
    Returns (stats, per-bar returns, positions, parts) with parts a list of (t, owner, value, exposed).
    """
    n = len(close)
    unit = (costs.spread_pips / 2 + costs.commission_pips) * costs.pip_size
    pos = 0
    since_signal = 0
    returns, positions, trades, parts = [], [], [], []   # trades: (entry regime, pnl)
    open_trade = None
    for t in range(n):
        signal = 0
        if conf[t] >= threshold and forecast[t] != 0:
            signal = 1 if forecast[t] > 0 else -1
        prev = pos
        if t == n - 1:
            pos = 0
        elif signal != 0:
            pos, since_signal = signal, 1
        elif pos != 0 and since_signal < horizon:
            since_signal += 1
        else:
            pos = 0
        cost_one = unit / close[t]
        market = pos * math.log(close[t + 1] / close[t]) if t < n - 1 else 0.0
        owner_closed = None
        if prev != 0 and pos != prev:
            open_trade[1] -= cost_one
            trades.append(tuple(open_trade))
            owner_closed = open_trade[0]
            open_trade = None
        if pos != 0 and pos != prev:
            open_trade = [regimes[t], -cost_one]
        if pos != 0:
            open_trade[1] += market
        bar = market - abs(pos - prev) * cost_one
        returns.append(bar)
        positions.append(pos)
        if pos != 0:
            owner = open_trade[0]
        elif owner_closed is not None:
            owner = owner_closed
        else:
            owner = regimes[t]
        if owner_closed is not None and pos != 0 and owner_closed != owner:
            parts.append((t, owner_closed, -cost_one, 0))
            parts.append((t, owner, bar + cost_one, 1))
        else:
            parts.append((t, owner, bar, int(pos != 0)))
    returns = np.array(returns)
    positions = np.array(positions)
    stats = np.zeros((n_regimes + 1, sim.N_STATS))
    block_of = (np.arange(n) * sim.CSCV_BLOCKS) // n
    for g in range(n_regimes + 1):
        if g == n_regimes:
            mine_parts = [(t, returns[t], int(positions[t] != 0)) for t in range(n)]
        else:
            mine_parts = [(t, v, e) for t, o, v, e in parts if o == g]
        r = np.array([v for _, v, _ in mine_parts])
        ts = np.array([t for t, _, _ in mine_parts], dtype=int)
        stats[g, sim.SUM_RET] = r.sum()
        stats[g, sim.SUM_SQ] = (r ** 2).sum()
        stats[g, sim.SUM_CUBE] = (r ** 3).sum()
        stats[g, sim.SUM_QUAD] = (r ** 4).sum()
        stats[g, sim.SUM_DOWN_SQ] = (np.minimum(r, 0) ** 2).sum()
        stats[g, sim.N_BARS] = len(r)
        stats[g, sim.N_EXPOSED] = sum(e for _, _, e in mine_parts)
        equity = np.concatenate([[0.0], np.cumsum(r)])
        stats[g, sim.MAX_DD_LOG] = (np.maximum.accumulate(equity) - equity).max()
        mine = [p for e, p in trades if g == n_regimes or e == g]
        stats[g, sim.TRADES] = len(mine)
        stats[g, sim.WINS] = sum(p > 0 for p in mine)
        stats[g, sim.GROSS_PROFIT] = sum(p for p in mine if p > 0)
        stats[g, sim.GROSS_LOSS] = -sum(p for p in mine if p <= 0)
        for b in range(sim.CSCV_BLOCKS):
            in_block = block_of[ts] == b if len(ts) else np.zeros(0, bool)
            stats[g, sim.BLOCK_RET + b] = r[in_block].sum()
            stats[g, sim.BLOCK_SQ + b] = (r[in_block] ** 2).sum()
            stats[g, sim.BLOCK_N + b] = in_block.sum()
    return stats, returns, positions, parts


def random_case(seed: int, n: int = 600, n_series: int = 4, n_regimes: int = 3):
    rng = np.random.default_rng(seed)
    close = 1.2 * np.exp(np.cumsum(rng.normal(0, 2e-3, n)))
    forecasts = rng.normal(size=(n_series, n))
    forecasts[:, rng.random(n) < 0.05] = 0.0
    confidences = rng.random((n_series, n))
    regimes = np.repeat(rng.integers(0, n_regimes, n // 7 + 1), 7)[:n]
    regimes[rng.random(n) < 0.1] = rng.integers(0, n_regimes)
    return close, forecasts, confidences, regimes


@pytest.mark.parametrize("horizon", [1, 3, 17])
@pytest.mark.parametrize("costs", [COSTS, FREE])
def test_kernel_matches_reference(horizon: int, costs: SymbolCosts) -> None:
    close, forecasts, confidences, regimes = random_case(horizon)
    thresholds = np.array([0.0, 0.4, 0.8, 1.0])
    stats = simulate_grid(forecasts, confidences, thresholds, close, horizon, costs, regimes, 3)
    assert stats.shape == (4, 4, 4, sim.N_STATS)
    for s in range(4):
        for k, threshold in enumerate(thresholds):
            expected, _, _, _ = reference(forecasts[s], confidences[s], threshold, close, horizon, costs, regimes, 3)
            np.testing.assert_allclose(stats[s, k], expected, rtol=1e-9, atol=1e-12)


def test_equity_curve_matches_reference() -> None:
    close, forecasts, confidences, regimes = random_case(5)
    positions, returns = equity_curve(forecasts[0], confidences[0], 0.3, close, 4, COSTS)
    _, ref_returns, ref_positions, _ = reference(forecasts[0], confidences[0], 0.3, close, 4, COSTS, regimes, 3)
    np.testing.assert_array_equal(positions, ref_positions)
    np.testing.assert_allclose(returns, ref_returns, rtol=1e-12, atol=1e-15)


def test_flip_costs_twice_a_close_and_horizon_expires() -> None:
    close = np.array([1.0, 1.01, 1.02, 1.01, 1.0, 1.0, 1.0])
    forecast = np.array([1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0])
    conf = np.ones(7)
    costs = SymbolCosts(pip_size=0.0001, spread_pips=2.0, commission_pips=0.0)  # 1 pip per unit
    positions, returns = equity_curve(forecast, conf, 0.5, close, 2, costs)
    assert positions.tolist() == [1, 1, -1, -1, 0, 0, 0]
    assert returns[0] == pytest.approx(math.log(1.01) - 1e-4 / 1.0)
    assert returns[2] == pytest.approx(-math.log(1.01 / 1.02) - 2 * 1e-4 / 1.02)
    assert returns[4] == pytest.approx(-1e-4 / 1.0)
    assert returns[5] == 0.0


def test_open_position_is_closed_on_the_last_row() -> None:
    close = np.array([1.0, 1.1, 1.2])
    positions, returns = equity_curve(np.ones(3), np.ones(3), 0.0, close, 10, FREE)
    assert positions.tolist() == [1, 1, 0]
    assert returns.sum() == pytest.approx(math.log(1.2))


def test_chunked_equals_unchunked() -> None:
    close, forecasts, confidences, regimes = random_case(9)
    thresholds = np.array([0.0, 0.5])
    whole = simulate_grid(forecasts, confidences, thresholds, close, 3, COSTS, regimes, 3)
    tiny_budget = 2 * 8 * len(close)   # one series per kernel call
    chunked = simulate_grid(forecasts, confidences, thresholds, close, 3, COSTS, regimes, 3, max_matrix_bytes=tiny_budget)
    np.testing.assert_array_equal(whole, chunked)


def test_bad_inputs_are_named() -> None:
    close, forecasts, confidences, regimes = random_case(1, n=50)
    with pytest.raises(ValueError, match="regime_codes"):
        simulate_grid(forecasts, confidences, np.array([0.0]), close, 3, COSTS, regimes + 5, 3)
    with pytest.raises(ValueError, match="horizon"):
        simulate_grid(forecasts, confidences, np.array([0.0]), close, 0, COSTS, regimes, 3)
    with pytest.raises(ValueError, match="finite"):
        bad = forecasts.copy()
        bad[0, 3] = np.nan
        simulate_grid(bad, confidences, np.array([0.0]), close, 3, COSTS, regimes, 3)
    with pytest.raises(ValueError, match="close"):
        simulate_grid(forecasts, confidences, np.array([0.0]), -close, 3, COSTS, regimes, 3)


@pytest.mark.slow
@pytest.mark.parametrize("horizon", [1, 4])
def test_agrees_with_vectorbt_where_semantics_coincide(horizon: int) -> None:
    """vectorbt Portfolio.from_signals on the configurations where both models coincide.

    Coinciding configurations: long-only signals (non-negative forecasts), zero costs, no regime
    split, any threshold and horizon. Then our position is 0 or 1 unit of equity, entered and left
    at closes, and our per-bar log-return position_t * log(close[t+1] / close[t]) is exactly the log
    of vectorbt's per-bar simple return of an all-in long position. They differ elsewhere by design:
    our shorts are log-symmetric (-log(close[t+1]/close[t])) while a vectorbt short holds a fixed
    number of units, and our costs are subtracted as log-returns while vectorbt's fees are a
    fraction of traded value compounded into equity. vectorbt comes from the `bench` extra, which
    the test suite needs: install `.[dev,bench]`.
    """
    import pandas as pd
    import vectorbt as vbt

    close, forecasts, confidences, _ = random_case(20 + horizon, n=400)
    forecast = np.maximum(forecasts[0], 0.0)
    positions, returns = equity_curve(forecast, confidences[0], 0.5, close, horizon, FREE)
    previous = np.concatenate([[0], positions[:-1]])
    portfolio = vbt.Portfolio.from_signals(
        pd.Series(close),
        entries=pd.Series((positions == 1) & (previous == 0)),
        exits=pd.Series((positions == 0) & (previous == 1)),
        fees=0.0,
        init_cash=1.0,
        freq="1h",
    )
    assert positions.any() and (positions == 0).any()
    vbt_returns = portfolio.returns().to_numpy()
    # our bar t covers close t -> close t + 1; vectorbt books that value change at bar t + 1
    np.testing.assert_allclose(returns[:-1], np.log1p(vbt_returns[1:]), rtol=0, atol=1e-9)
    assert math.expm1(returns.sum()) == pytest.approx(portfolio.total_return(), abs=1e-9)
    assert portfolio.trades.count() == int(((positions == 1) & (previous == 0)).sum())
