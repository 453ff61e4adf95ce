"""Backtest metrics, from a per-bar strategy log-return series or from the simulator's sums.

Definitions (r_t = per-bar strategy log-return, costs included; n = bars; undefined -> NaN):
- sharpe        mean(r) / std(r, ddof=1) * sqrt(bars_per_year); NaN if n < 2 or r is constant
                (so zero trades -> NaN). Annualised by data.timeframes.bars_per_year(base_timeframe).
- sortino       mean(r) / sqrt(sum(min(r, 0)^2) / n) * sqrt(bars_per_year); NaN without a losing bar.
- max_drawdown  equity E_t = sum of r up to t, starting at 0; the largest fall from a running peak,
                in simple-return terms: max_t 1 - exp(E_t - max_{s<=t} E_s), a positive fraction of
                the peak (0 when equity never falls).
- total_return  exp(sum r) - 1.
- win_rate      winning trades (P&L > 0) / trades; NaN without trades.
- profit_factor gross profit / gross loss of trade P&Ls; NaN without trades and NaN when no trade
                lost (undefined, not infinite: it keeps the column finite-or-NaN for storage and
                sorting; win_rate = 1 tells that case).
- exposure      share of bars with an open position.
- sharpe_per_bar  mean(r) / std(r, ddof=1), not annualised: the SR of the deflated Sharpe.
- skewness      m3 / m2^1.5 and kurtosis m4 / m2^2 (non-excess: 3 for a normal), with m_k the central
                moments (1/n) sum (r - mean)^k, from the sums of r, r^2, r^3 and r^4: the moments
                Bailey & Lopez de Prado (2014) put into the deflated Sharpe. NaN when n < 2 or r is
                constant.
Per regime, r is the regime's return series under the simulator's attribution rule (simulator.py).
"""

from __future__ import annotations

import numpy as np


from forex_pipeline.backtest.simulator import (
    BLOCK_N,
    BLOCK_RET,
    BLOCK_SQ,
    CSCV_BLOCKS,
    SUM_CUBE,
    SUM_QUAD,
    GROSS_LOSS,
    GROSS_PROFIT,
    MAX_DD_LOG,
    N_BARS,
    N_EXPOSED,
    SUM_DOWN_SQ,
    SUM_RET,
    SUM_SQ,
    TRADES,
    WINS,
)

# A variance this small relative to the mean square is rounding noise of a constant series.
_RELATIVE_VARIANCE_FLOOR = 1e-12



def _divide(num: np.ndarray, den: np.ndarray, valid: np.ndarray) -> np.ndarray:
    num, den, valid = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float), np.asarray(valid, bool))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=valid)
    return out


def sharpe_from_sums(total: np.ndarray, total_sq: np.ndarray, n: np.ndarray, bars_per_year: float) -> np.ndarray:
    """Annualised Sharpe from sum, sum of squares and count of per-bar returns."""
    total, total_sq, n = (np.asarray(a, dtype=np.float64) for a in (total, total_sq, n))
    safe_n = np.maximum(n, 1.0)
    mean = total / safe_n
    var = (total_sq - total * mean) / np.maximum(n - 1.0, 1.0)
    valid = (n >= 2) & (var > _RELATIVE_VARIANCE_FLOOR * total_sq / safe_n)
    return _divide(mean * np.sqrt(bars_per_year), np.sqrt(np.where(valid, var, 1.0)), valid)


def moments_from_sums(
    total: np.ndarray, total_sq: np.ndarray, total_cube: np.ndarray, total_quad: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(skewness, non-excess kurtosis) from the sums of r, r^2, r^3, r^4 and the count n.

    Central moments by the binomial expansion: m2 = S2/n - mu^2, m3 = S3/n - 3 mu S2/n + 2 mu^3,
    m4 = S4/n - 4 mu S3/n + 6 mu^2 S2/n - 3 mu^4, mu = S1/n; skewness = m3 / m2^1.5, kurtosis =
    m4 / m2^2. Per-bar FX returns have |mu| << sd, so the expansion loses no meaningful precision.
    """
    s1, s2, s3, s4, n = (np.asarray(a, dtype=np.float64) for a in (total, total_sq, total_cube, total_quad, n))
    safe_n = np.maximum(n, 1.0)
    mu = s1 / safe_n
    e2, e3, e4 = s2 / safe_n, s3 / safe_n, s4 / safe_n
    m2 = e2 - mu * mu
    m3 = e3 - 3.0 * mu * e2 + 2.0 * mu**3
    m4 = e4 - 4.0 * mu * e3 + 6.0 * mu * mu * e2 - 3.0 * mu**4
    valid = (n >= 2) & (m2 > _RELATIVE_VARIANCE_FLOOR * e2)
    safe_m2 = np.where(valid, m2, 1.0)
    return _divide(m3, safe_m2**1.5, valid), _divide(m4, safe_m2 * safe_m2, valid)


def sortino_from_sums(total: np.ndarray, down_sq: np.ndarray, n: np.ndarray, bars_per_year: float) -> np.ndarray:
    """Annualised Sortino from sum, sum of squared negative returns and count."""
    total, down_sq, n = (np.asarray(a, dtype=np.float64) for a in (total, down_sq, n))
    safe_n = np.maximum(n, 1.0)
    valid = (n >= 1) & (down_sq > 0)
    return _divide(total / safe_n * np.sqrt(bars_per_year), np.sqrt(down_sq / safe_n), valid)


def _returns(returns: np.ndarray) -> np.ndarray:
    returns = np.asarray(returns, dtype=np.float64)
    if returns.ndim != 1:
        raise ValueError(f"returns must be 1-d, got shape {returns.shape}")
    if not np.isfinite(returns).all():
        raise ValueError("returns contain NaN or infinite values")
    return returns


def sharpe(returns: np.ndarray, bars_per_year: float) -> float:
    r = _returns(returns)
    return float(sharpe_from_sums(r.sum(), (r * r).sum(), r.size, bars_per_year))


def sortino(returns: np.ndarray, bars_per_year: float) -> float:
    r = _returns(returns)
    down = np.minimum(r, 0.0)
    return float(sortino_from_sums(r.sum(), (down * down).sum(), r.size, bars_per_year))


def max_drawdown(returns: np.ndarray) -> float:
    r = _returns(returns)
    if r.size == 0:
        return float("nan")
    equity = np.concatenate([[0.0], np.cumsum(r)])
    return float(-np.expm1(-(np.maximum.accumulate(equity) - equity).max()))


def total_return(returns: np.ndarray) -> float:
    r = _returns(returns)
    return float(np.expm1(r.sum())) if r.size else float("nan")


def win_rate(trade_pnls: np.ndarray) -> float:
    pnls = _returns(trade_pnls)
    return float((pnls > 0).mean()) if pnls.size else float("nan")


def profit_factor(trade_pnls: np.ndarray) -> float:
    pnls = _returns(trade_pnls)
    loss = -pnls[pnls <= 0].sum()
    return float(pnls[pnls > 0].sum() / loss) if pnls.size and loss > 0 else float("nan")


def exposure(positions: np.ndarray) -> float:
    positions = np.asarray(positions)
    return float((positions != 0).mean()) if positions.size else float("nan")


def skewness(returns: np.ndarray) -> float:
    r = _returns(returns)
    return float(moments_from_sums(r.sum(), (r**2).sum(), (r**3).sum(), (r**4).sum(), r.size)[0])


def kurtosis(returns: np.ndarray) -> float:
    """Non-excess kurtosis (3 for a normal distribution)."""
    r = _returns(returns)
    return float(moments_from_sums(r.sum(), (r**2).sum(), (r**3).sum(), (r**4).sum(), r.size)[1])


def trust_from_stats(stats: np.ndarray) -> dict[str, np.ndarray]:
    """The inputs of the trust figures (regimes/significance.py) from simulator statistics (..., N_STATS):
    per-bar Sharpe, skewness, kurtosis, the raw sums (so segments and folds can be pooled exactly) and
    the CSCV block sums (..., CSCV_BLOCKS)."""
    n = stats[..., N_BARS]
    skew, kurt = moments_from_sums(stats[..., SUM_RET], stats[..., SUM_SQ], stats[..., SUM_CUBE], stats[..., SUM_QUAD], n)
    return {
        "sharpe_per_bar": sharpe_from_sums(stats[..., SUM_RET], stats[..., SUM_SQ], n, 1.0),
        "skewness": skew,
        "kurtosis": kurt,
        "sum_ret": stats[..., SUM_RET].copy(),
        "sum_sq": stats[..., SUM_SQ].copy(),
        "sum_cube": stats[..., SUM_CUBE].copy(),
        "sum_quad": stats[..., SUM_QUAD].copy(),
        "block_sum_ret": stats[..., BLOCK_RET : BLOCK_RET + CSCV_BLOCKS].copy(),
        "block_sum_sq": stats[..., BLOCK_SQ : BLOCK_SQ + CSCV_BLOCKS].copy(),
        "block_n_bars": stats[..., BLOCK_N : BLOCK_N + CSCV_BLOCKS].copy(),
    }


def metrics_from_stats(stats: np.ndarray, bars_per_year: float) -> dict[str, np.ndarray]:
    """Every metric column from simulator statistics (..., N_STATS), same leading shape."""
    n = stats[..., N_BARS]
    trades = stats[..., TRADES]
    has_bars = n > 0
    return {
        "sharpe": sharpe_from_sums(stats[..., SUM_RET], stats[..., SUM_SQ], n, bars_per_year),
        "sortino": sortino_from_sums(stats[..., SUM_RET], stats[..., SUM_DOWN_SQ], n, bars_per_year),
        "max_drawdown": np.where(has_bars, -np.expm1(-stats[..., MAX_DD_LOG]), np.nan),
        "total_return": np.where(has_bars, np.expm1(stats[..., SUM_RET]), np.nan),
        "win_rate": _divide(stats[..., WINS], trades, trades > 0),
        "profit_factor": _divide(stats[..., GROSS_PROFIT], stats[..., GROSS_LOSS], (trades > 0) & (stats[..., GROSS_LOSS] > 0)),
        "trade_count": trades.astype(np.int64),
        "exposure": _divide(stats[..., N_EXPOSED], n, has_bars),
        "n_bars": n.astype(np.int64),
    }
