"""Synthetic M1 FX bars with known, regime-switching behaviour and ground-truth regime labels.

The regime path is a chain of persistent segments over the four regimes of the settings
(bull_trending, bear_trending, volatile_ranging, calm_ranging). Segment lengths are drawn uniformly
between `min_regime_days` and `max_regime_days` trading days (default 3 to 7, so a regime lasts
about 70 to 170 hourly bars and is visible to 50-bar trend and 20-bar volatility rules on 1h bars).
The order is drawn in tours: each tour visits every regime once in a random order and never repeats
the regime that ended the previous tour, so every regime gets a fair share even over 60 days.

Within a segment the log price follows:
- bull/bear_trending: a random walk with drift +/- `trend_drift_sigmas` hourly standard deviations
  per hour;
- volatile_ranging / calm_ranging: an Ornstein-Uhlenbeck process pulled back to the segment's
  starting level (half-life `range_half_life_minutes`), with high vs low volatility.
Bars exist Sunday 22:00 to Friday 21:59 UTC (no weekend bars); open = previous close, high/low
extend beyond open/close by a non-negative wick, volume is positive and larger when volatile.
The same seed always gives the same bars; another seed gives other bars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forex_pipeline.data.schema import BAR_COLUMNS, INDEX_NAME

REGIMES: tuple[str, ...] = ("bull_trending", "bear_trending", "volatile_ranging", "calm_ranging")
MINUTES_PER_DAY = 1440
# Per-minute log-return volatility by regime (calm ~0.4 pip, volatile ~2 pips a minute at 1.1).
REGIME_SIGMA: dict[str, float] = {
    "bull_trending": 1.0e-4,
    "bear_trending": 1.0e-4,
    "volatile_ranging": 1.8e-4,
    "calm_ranging": 0.4e-4,
}


@dataclass(frozen=True)
class SyntheticBars:
    """M1 bars and the regime that generated each bar."""

    bars: pd.DataFrame
    regimes: pd.Series
    symbol: str
    seed: int

    @property
    def regime_proportions(self) -> dict[str, float]:
        """Share of bars per regime (every regime listed, zero if absent)."""
        shares = self.regimes.value_counts(normalize=True)
        return {name: float(shares.get(name, 0.0)) for name in REGIMES}


def trading_minutes(start: pd.Timestamp, days: int) -> pd.DatetimeIndex:
    """Minute open times in [start, start + days) outside the FX weekend (Fri 22:00 to Sun 22:00 UTC)."""
    grid = pd.date_range(start, periods=days * MINUTES_PER_DAY, freq="min", tz="UTC", name=INDEX_NAME)
    weekday = np.asarray(grid.day_of_week)
    hour = np.asarray(grid.hour)
    weekend = (weekday == 5) | ((weekday == 4) & (hour >= 22)) | ((weekday == 6) & (hour < 22))
    return pd.DatetimeIndex(grid[~weekend], freq=None).as_unit("ns")


def regime_path(n_bars: int, rng: np.random.Generator, min_days: float, max_days: float) -> np.ndarray:
    """Regime code per bar: segments of uniform random length, regimes ordered in balanced tours."""
    codes = np.empty(n_bars, dtype=np.int8)
    position = 0
    previous = -1
    while position < n_bars:
        tour = rng.permutation(len(REGIMES))
        if tour[0] == previous:
            tour = np.roll(tour, -1)
        for code in tour:
            length = int(rng.uniform(min_days, max_days) * MINUTES_PER_DAY)
            codes[position : position + length] = code
            position += length
            previous = int(code)
            if position >= n_bars:
                break
    return codes


def _log_prices(
    codes: np.ndarray,
    rng: np.random.Generator,
    start_price: float,
    trend_drift_sigmas: float,
    half_life: float,
) -> np.ndarray:
    """Log close per bar: drifting random walks in trends, AR(1) walks around the segment's start in ranges."""
    from scipy.signal import lfilter

    sigma = np.array([REGIME_SIGMA[name] for name in REGIMES])[codes]
    shocks = rng.standard_normal(len(codes)) * sigma
    phi = 0.5 ** (1.0 / half_life)
    bounds = np.concatenate([np.flatnonzero(np.diff(codes)) + 1, [len(codes)]])
    out = np.empty(len(codes))
    anchor = np.log(start_price)
    first = 0
    for last in bounds:
        code = int(codes[first])
        segment = shocks[first:last]
        if REGIMES[code].endswith("_trending"):
            direction = 1.0 if code == 0 else -1.0
            drift = direction * trend_drift_sigmas * REGIME_SIGMA[REGIMES[code]] * np.sqrt(60.0) / 60.0
            path = np.cumsum(segment + drift)
        else:
            path = lfilter([1.0], [1.0, -phi], segment)
        out[first:last] = anchor + path
        anchor = out[last - 1]
        first = last
    return out


def generate_synthetic_bars(
    days: int,
    seed: int,
    *,
    start: str | pd.Timestamp = "2020-01-06",
    symbol: str = "SYNTH",
    start_price: float = 1.10,
    min_regime_days: float = 3.0,
    max_regime_days: float = 7.0,
    trend_drift_sigmas: float = 0.5,
    range_half_life_minutes: float = 240.0,
) -> SyntheticBars:
    """M1 bars over `days` calendar days from `start` with regime switching; deterministic per seed."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if not 0 < min_regime_days <= max_regime_days:
        raise ValueError(f"need 0 < min_regime_days <= max_regime_days, got {min_regime_days}, {max_regime_days}")
    if start_price <= 0:
        raise ValueError(f"start_price must be > 0, got {start_price}")
    rng = np.random.default_rng(seed)
    index = trading_minutes(pd.Timestamp(start), days)
    codes = regime_path(len(index), rng, min_regime_days, max_regime_days)
    log_close = _log_prices(codes, rng, start_price, trend_drift_sigmas, range_half_life_minutes)
    close = np.exp(log_close)
    open_ = np.concatenate([[start_price], close[:-1]])
    sigma = np.array([REGIME_SIGMA[name] for name in REGIMES])[codes]
    wick_up = np.abs(rng.standard_normal(len(index))) * 0.5 * sigma * close
    wick_down = np.abs(rng.standard_normal(len(index))) * 0.5 * sigma * close
    high = np.maximum(open_, close) + wick_up
    low = np.minimum(open_, close) - wick_down
    volume = np.round(rng.lognormal(mean=3.0, sigma=0.5, size=len(index)) * sigma / REGIME_SIGMA["calm_ranging"], 2) + 1.0
    bars = pd.DataFrame(
        dict(zip(BAR_COLUMNS, (open_, high, low, close, volume), strict=True)), index=index
    )
    labels = pd.Series(np.asarray(REGIMES, dtype=object)[codes], index=index, name="regime", dtype="str")
    return SyntheticBars(bars=bars, regimes=labels, symbol=symbol, seed=seed)
