"""The vectorised simulator: every inference configuration of one model in one parallel numba call.

Semantics (DESIGN.md section 5, decided here in detail):
- Signal at row t (known at the close of bar t): sign(forecast_t) if confidence_t >= threshold,
  else none; a zero forecast is never a signal.
- A signal opens, flips or extends a one-unit long/short position entered at close t. The position is
  held for `horizon` bars since the last signal (bars t .. t + horizon - 1), then closed at close
  t + horizon unless a new signal came first. Every position is closed at the close of the last row.
- Bar t's strategy log-return covers close t -> close t + 1: position_t * log(close[t+1] / close[t])
  minus the cost of the position change made at close t: |dpos| * (spread_pips / 2 +
  commission_pips) * pip_size / close[t], so a flip costs twice a close. The last row carries only
  its closing cost.
- A trade runs from an opening or flip to the next close or flip; its P&L is the sum of its bars'
  log-returns including its entry and exit cost (a flip's cost is split between the two trades).

Attribution, the one rule behind every per-regime figure (Sharpe, Sortino, skewness, kurtosis,
drawdown, total return, exposure, trades, win rate, profit factor, the `min_trades` gate, the CSCV
blocks): a trade belongs to the regime of the bar it was entered on, and so does every bar's return
it earns, its entry and exit costs included; a bar with no trade open or closing belongs to its own
label (its return is 0). A flip from a trade of regime a into one of regime b != a is the one bar
owned twice: its closing cost is a bar of a, its new position's return and opening cost a bar of b.
Hence a regime's return series sums exactly to the P&L of its trades (win rate and profit factor
count those very trades), and the regimes' bars add up to the segment's bars plus the cross-regime
flips. Why this rule rather than "a bar belongs to its label": under the bar rule a regime's Sharpe
mixed in the tails of trades entered elsewhere (33-56% of a real best's return) while its trade
count and `min_trades` counted trades entered in it, so score and gate measured different things;
and a regime's decisions are taken when the trade is entered, so its P&L is what that decision earned.

Why hand-written (measured need, benchmarks/bench_inference.py, one year of EUR/USD M1 = 372k bars,
135 configurations, 2 shared cores): vectorbt's Portfolio.from_signals plus its metrics took 26-51 s
and has no per-regime accumulation; a numpy version would materialise several configurations x
bars matrices (135 x 372k x 8 bytes = 400 MB each). This kernel keeps only per-(configuration,
regime) accumulators, runs configurations in parallel with prange and took 0.37-1.2 s with metrics
(0.57 s on one thread), depending on the load of the shared machine.
"""

from __future__ import annotations

import numba
import numpy as np

from forex_pipeline.settings import SymbolCosts

# Layout of the last axis of the statistics array, per (series, threshold, regime): scalar sums first,
# then the CSCV blocks (sum of returns, of squared returns and bar count in each of CSCV_BLOCKS equal
# consecutive blocks of the simulated segment, Bailey, Borwein, Lopez de Prado & Zhu 2015).
(
    SUM_RET, SUM_SQ, SUM_DOWN_SQ, N_BARS, N_EXPOSED, TRADES, WINS, GROSS_PROFIT, GROSS_LOSS, MAX_DD_LOG,
    SUM_CUBE, SUM_QUAD,
) = range(12)
N_SCALAR_STATS = 12
CSCV_BLOCKS = 16
BLOCK_RET = N_SCALAR_STATS
BLOCK_SQ = BLOCK_RET + CSCV_BLOCKS
BLOCK_N = BLOCK_SQ + CSCV_BLOCKS
N_STATS = BLOCK_N + CSCV_BLOCKS


@numba.njit(inline="always")
def _next_position(prev: int, held: int, signal: int, horizon: int, last: bool) -> tuple[int, int]:
    """Position at bar t and bars held since the last signal, from the previous state and the signal."""
    keep = prev != 0 and held < horizon and not last
    fresh = signal != 0 and not last
    position = signal if fresh else (prev if keep else 0)
    bars_held = 1 if fresh else (held + 1 if keep else 0)
    return position, bars_held


@numba.njit(inline="always")
def _sign(value: float) -> int:
    if value > 0.0:
        return 1
    if value < 0.0:
        return -1
    return 0


@numba.njit(inline="always")
def _block_start(block: int, n: int) -> int:
    """First row of CSCV block `block` of n rows: row t is in block (t * CSCV_BLOCKS) // n."""
    return (block * n + CSCV_BLOCKS - 1) // CSCV_BLOCKS


@numba.njit(cache=True, nogil=True, inline="always")
def _flush(
    acc: np.ndarray, regime: int, block: int, run_sum: float, run_sq: float, run_cube: float, run_quad: float,
    run_down: float, run_bars: float, run_exposed: float, run_trades: float, max_dd: float,
) -> None:
    """Add one run of bars owned by `regime` in one block (kept in registers while it lasted) to `acc`."""
    acc[regime, SUM_RET] += run_sum
    acc[regime, SUM_SQ] += run_sq
    acc[regime, SUM_CUBE] += run_cube
    acc[regime, SUM_QUAD] += run_quad
    acc[regime, SUM_DOWN_SQ] += run_down
    acc[regime, N_BARS] += run_bars
    acc[regime, N_EXPOSED] += run_exposed
    acc[regime, TRADES] += run_trades
    acc[regime, MAX_DD_LOG] = max_dd
    acc[regime, BLOCK_RET + block] += run_sum
    acc[regime, BLOCK_SQ + block] += run_sq
    acc[regime, BLOCK_N + block] += run_bars


@numba.njit(cache=True, nogil=True)
def _simulate_one(
    forecast: np.ndarray, conf: np.ndarray, threshold: float, log_returns: np.ndarray,
    unit_costs: np.ndarray, regimes: np.ndarray, horizon: int, out: np.ndarray,
) -> None:
    """Accumulate one configuration's statistics into out (G + 1, N_STATS); row G is 'all'.

    Attribution (the one rule for every per-regime figure, see the module docstring): bar t's return
    is owned by the regime in which the trade holding it (or closed at its close) was entered; a bar
    with no trade by its own label. A flip from a trade of regime a to one of regime b != a splits
    the bar: the closing cost is a bar of a, the rest a bar of b ('all' counts the bar once: `fix`).

    The owner's sums live in local scalars and are flushed to `acc` when the owner or the CSCV block
    changes: accumulating straight into memory chains every bar through store-to-load latency and
    made this loop about three times slower.
    """
    n = forecast.shape[0]
    n_regimes = out.shape[0] - 1
    acc = np.zeros((n_regimes, N_STATS))
    fix = np.zeros(N_STATS)
    equity = np.zeros(n_regimes)
    peak = np.zeros(n_regimes)
    equity_all = 0.0
    peak_all = 0.0
    dd_all = 0.0
    pos = 0
    held = 0
    trade_pnl = 0.0
    trade_regime = 0
    cur = regimes[0] if n > 0 else 0
    block = 0
    next_block = _block_start(1, n)
    run_sum = 0.0
    run_sq = 0.0
    run_cube = 0.0
    run_quad = 0.0
    run_down = 0.0
    run_bars = 0       # counters in integer registers: fewer spills of the float accumulators
    run_exposed = 0
    run_trades = 0
    eq_g = 0.0
    peak_g = 0.0
    dd_g = 0.0
    for t in range(n):
        while t == next_block:
            _flush(acc, cur, block, run_sum, run_sq, run_cube, run_quad, run_down, run_bars, run_exposed, run_trades, dd_g)
            run_sum = run_sq = run_cube = run_quad = run_down = 0.0
            run_bars = run_exposed = run_trades = 0
            block += 1
            next_block = _block_start(block + 1, n)
        g = regimes[t]
        f = forecast[t]
        signal = (np.int64(f > 0.0) - np.int64(f < 0.0)) * np.int64(conf[t] >= threshold)
        prev = pos
        pos, held = _next_position(prev, held, signal, horizon, t == n - 1)
        lr = log_returns[t]
        cost = unit_costs[t]
        gain = pos * lr
        split = False
        if pos != prev:
            if prev != 0:
                pnl = trade_pnl - cost
                if pnl > 0.0:
                    acc[trade_regime, WINS] += 1.0
                    acc[trade_regime, GROSS_PROFIT] += pnl
                else:
                    acc[trade_regime, GROSS_LOSS] -= pnl
                split = pos != 0 and trade_regime != g
            if split:
                # the closing cost of the old trade: a bar of its own regime
                a = -cost
                if trade_regime != cur:
                    _flush(acc, cur, block, run_sum, run_sq, run_cube, run_quad, run_down, run_bars, run_exposed, run_trades, dd_g)
                    equity[cur] = eq_g
                    peak[cur] = peak_g
                    run_sum = run_sq = run_cube = run_quad = run_down = 0.0
                    run_bars = run_exposed = run_trades = 0
                    cur = trade_regime
                    eq_g = equity[cur]
                    peak_g = peak[cur]
                    dd_g = acc[cur, MAX_DD_LOG]
                a2 = a * a
                run_sum += a
                run_sq += a2
                run_cube += a2 * a
                run_quad += a2 * a2
                run_down += a2
                run_bars += 1
                eq_g += a
                dd_g = max(dd_g, peak_g - eq_g)
                b = gain - cost
                whole = a + b
                fix[SUM_SQ] += whole * whole - a2 - b * b
                fix[SUM_CUBE] += whole ** 3 - a2 * a - b ** 3
                fix[SUM_QUAD] += whole ** 4 - a2 * a2 - b ** 4
                fix[SUM_DOWN_SQ] += min(whole, 0.0) ** 2 - a2 - min(b, 0.0) ** 2
                fix[N_BARS] -= 1.0
                fix[BLOCK_SQ + block] += whole * whole - a2 - b * b
                fix[BLOCK_N + block] -= 1.0
            if pos != 0:
                trade_pnl = -cost
                trade_regime = g
        owner = trade_regime if (pos != 0 or prev != 0) else g
        if owner != cur:
            _flush(acc, cur, block, run_sum, run_sq, run_cube, run_quad, run_down, run_bars, run_exposed, run_trades, dd_g)
            equity[cur] = eq_g
            peak[cur] = peak_g
            run_sum = run_sq = run_cube = run_quad = run_down = 0.0
            run_bars = run_exposed = run_trades = 0
            cur = owner
            eq_g = equity[cur]
            peak_g = peak[cur]
            dd_g = acc[cur, MAX_DD_LOG]
        r = gain - (1.0 if split else abs(pos - prev)) * cost
        if pos != prev and pos != 0:
            run_trades += 1
        trade_pnl += gain
        run_exposed += abs(pos)
        r2 = r * r
        run_sum += r
        run_sq += r2
        run_cube += r2 * r
        run_quad += r2 * r2
        down = min(r, 0.0)
        run_down += down * down
        run_bars += 1
        eq_g += r
        peak_g = max(peak_g, eq_g)
        dd_g = max(dd_g, peak_g - eq_g)
        whole_r = r - cost if split else r
        equity_all += whole_r
        peak_all = max(peak_all, equity_all)
        dd_all = max(dd_all, peak_all - equity_all)
    if n > 0:
        _flush(acc, cur, block, run_sum, run_sq, run_cube, run_quad, run_down, run_bars, run_exposed, run_trades, dd_g)
    for j in range(N_STATS):
        total = fix[j]
        for g in range(n_regimes):
            out[g, j] = acc[g, j]
            total += acc[g, j]
        out[n_regimes, j] = total
    out[n_regimes, MAX_DD_LOG] = dd_all


@numba.njit(cache=True, parallel=True)
def _simulate_grid(
    forecasts: np.ndarray,     # (S, n)
    confidences: np.ndarray,   # (S, n)
    thresholds: np.ndarray,    # (T,)
    log_returns: np.ndarray,   # (n,) log(close[t+1]/close[t]), 0 on the last row
    unit_costs: np.ndarray,    # (n,) cost of one unit of position change at close t, as a return
    regimes: np.ndarray,       # (n,) int64 codes in [0, G)
    n_regimes: int,
    horizon: int,
) -> np.ndarray:
    n_series = forecasts.shape[0]
    n_thr = thresholds.shape[0]
    stats = np.zeros((n_series, n_thr, n_regimes + 1, N_STATS))
    for job in numba.prange(n_series * n_thr):
        s = job // n_thr
        k = job % n_thr
        _simulate_one(forecasts[s], confidences[s], thresholds[k], log_returns, unit_costs, regimes, horizon, stats[s, k])
    return stats


@numba.njit(cache=True)
def _path(
    forecast: np.ndarray, conf: np.ndarray, threshold: float, log_returns: np.ndarray,
    unit_costs: np.ndarray, horizon: int,
) -> tuple[np.ndarray, np.ndarray]:
    n = forecast.shape[0]
    positions = np.zeros(n, dtype=np.int64)
    returns = np.zeros(n)
    prev = 0
    held = 0
    for t in range(n):
        signal = _sign(forecast[t]) if conf[t] >= threshold else 0
        new, held = _next_position(prev, held, signal, horizon, t == n - 1)
        positions[t] = new
        returns[t] = new * log_returns[t] - abs(new - prev) * unit_costs[t]
        prev = new
    return positions, returns


def unit_costs(close: np.ndarray, costs: SymbolCosts) -> np.ndarray:
    """Cost of changing the position by one unit at each close, as a fraction of price."""
    close = np.asarray(close, dtype=np.float64)
    return (costs.spread_pips / 2.0 + costs.commission_pips) * costs.pip_size / close


def bar_log_returns(close: np.ndarray) -> np.ndarray:
    """log(close[t+1] / close[t]) for every row but the last, which gets 0 (nothing after it)."""
    close = _check_close(close)
    out = np.zeros(close.shape[0])
    out[:-1] = np.diff(np.log(close))
    return out


def _check_close(close: np.ndarray) -> np.ndarray:
    close = np.asarray(close, dtype=np.float64)
    if close.ndim != 1 or close.shape[0] < 2:
        raise ValueError(f"close must be a 1-d array of at least 2 prices, got shape {close.shape}")
    if not (np.isfinite(close).all() and (close > 0).all()):
        raise ValueError("close prices must be finite and positive")
    return close


def simulate_grid(
    forecasts: np.ndarray,
    confidences: np.ndarray,
    thresholds: np.ndarray,
    close: np.ndarray,
    horizon: int,
    costs: SymbolCosts,
    regime_codes: np.ndarray,
    n_regimes: int,
    max_matrix_bytes: int | None = None,
) -> np.ndarray:
    """Statistics (S, T, n_regimes + 1, N_STATS) of every series x threshold; index n_regimes = 'all'.

    Series are processed in chunks so that the (series x bars) inputs handed to the kernel at once
    stay under `max_matrix_bytes` (settings.performance.backtest_max_matrix_bytes).
    """
    forecasts = np.asarray(forecasts, dtype=np.float64)
    confidences = np.asarray(confidences, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    regime_codes = np.asarray(regime_codes)
    close = _check_close(close)
    n = close.shape[0]
    if forecasts.ndim != 2 or forecasts.shape[1] != n or confidences.shape != forecasts.shape:
        raise ValueError(
            f"forecasts {forecasts.shape} and confidences {confidences.shape} must both be (S, {n}) for {n} closes"
        )
    if not (np.isfinite(forecasts).all() and np.isfinite(confidences).all()):
        raise ValueError("forecasts and confidences must be finite")
    if thresholds.ndim != 1 or thresholds.size == 0:
        raise ValueError(f"thresholds must be a non-empty 1-d array, got shape {thresholds.shape}")
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1, got {horizon}")
    if regime_codes.shape != (n,) or not np.issubdtype(regime_codes.dtype, np.integer):
        raise ValueError(f"regime_codes must be {n} integers, got shape {regime_codes.shape} dtype {regime_codes.dtype}")
    if n and (regime_codes.min() < 0 or regime_codes.max() >= n_regimes):
        raise ValueError(f"regime_codes must lie in [0, {n_regimes})")
    log_returns = bar_log_returns(close)
    costs_arr = unit_costs(close, costs)
    codes = regime_codes.astype(np.int64)
    per_series_bytes = 2 * n * 8
    chunk = len(forecasts) if max_matrix_bytes is None else max(1, int(max_matrix_bytes // per_series_bytes))
    parts = [
        _simulate_grid(
            np.ascontiguousarray(forecasts[i : i + chunk]),
            np.ascontiguousarray(confidences[i : i + chunk]),
            thresholds, log_returns, costs_arr, codes, int(n_regimes), int(horizon),
        )
        for i in range(0, len(forecasts), chunk)
    ]
    return np.concatenate(parts, axis=0)


def equity_curve(
    forecast: np.ndarray, confidence: np.ndarray, threshold: float, close: np.ndarray, horizon: int, costs: SymbolCosts
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and per-bar strategy log-returns of one configuration (cumsum -> equity, for charts)."""
    close = _check_close(close)
    forecast = np.asarray(forecast, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    if forecast.shape != close.shape or confidence.shape != close.shape:
        raise ValueError(f"forecast {forecast.shape} and confidence {confidence.shape} must match close {close.shape}")
    return _path(forecast, confidence, float(threshold), bar_log_returns(close), unit_costs(close, costs), int(horizon))
