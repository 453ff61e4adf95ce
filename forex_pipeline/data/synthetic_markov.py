"""A second synthetic M1 generator with known regimes, built independently of `synthetic.py`.

Why a second one: regime detectors and their settings were tuned on `synthetic.py`; a detector
that only works there has learnt that generator, not markets. This one differs in every choice
a detector could latch on to:

- **Regime path**: a semi-Markov chain with any-to-any transitions. At each switch the next regime
  is drawn from a transition matrix with a zero diagonal whose off-diagonal rows are drawn per seed
  from a Dirichlet(2, 2, 2): every transition is possible, some are more frequent than others,
  a regime can come back right after another (no balanced tours), and regime shares differ from
  one seed and one half-year to the next. Durations are log-uniform between `min_regime_days`
  and `max_regime_days` trading days (default 1.5 to 9: shorter and longer than 3 to 7).
- **Returns**: per-minute log returns are `drift + sigma_segment * season(hour) * e`, with `e` a
  Student-t with `tail_df` degrees of freedom scaled to unit variance (fat tails: kurtosis 9
  for 5 degrees of freedom).
- **Intraday seasonality**: the volatility multiplier `season(hour)` follows the FX sessions
  (quiet Asian night, busy London morning, busiest London/New York overlap), normalised so that
  its mean square over the day is 1; see `INTRADAY_PROFILE`.
- **Regime behaviour**: each segment draws its own parameters.
  * bull/bear_trending: drift of `trend_strength_range` (uniform) hourly standard deviations per
    hour, volatility `TREND_SIGMA` times a per-segment lognormal jitter;
  * volatile/calm_ranging: no drift; an AR(1) pull towards the segment's opening level with a
    half-life drawn uniformly from `range_half_life_hours`, volatility `VOLATILE_SIGMA` or
    `CALM_SIGMA` times the jitter.

Bars exist Sunday 22:00 to Friday 21:59 UTC like the first generator (trading minutes shared with
it). The same seed always gives the same bars. Ground truth is the regime of each M1 bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from forex_pipeline.data.schema import BAR_COLUMNS
from forex_pipeline.data.synthetic import MINUTES_PER_DAY, REGIMES, SyntheticBars, trading_minutes

# Per-minute volatility levels (log-return units) before seasonality and jitter.
CALM_SIGMA = 0.5e-4
TREND_SIGMA = 1.1e-4
VOLATILE_SIGMA = 2.2e-4
SIGMA_JITTER = 0.15          # lognormal sd of a segment's volatility scale
# Relative volatility per UTC hour 0..23: Asia quiet, London open up, London/NY overlap highest.
INTRADAY_PROFILE: tuple[float, ...] = (
    0.55, 0.55, 0.6, 0.6, 0.6, 0.65, 0.8, 1.2, 1.4, 1.35, 1.25, 1.2,
    1.45, 1.6, 1.6, 1.45, 1.2, 1.0, 0.85, 0.75, 0.7, 0.65, 0.6, 0.55,
)


def transition_matrix(rng: np.random.Generator, n: int = len(REGIMES), concentration: float = 2.0) -> np.ndarray:
    """Row-stochastic n x n matrix with a zero diagonal; off-diagonal rows drawn from a symmetric
    Dirichlet(`concentration`) (any-to-any; 1 would allow near-zero transition probabilities)."""
    matrix = np.zeros((n, n))
    for i in range(n):
        others = [j for j in range(n) if j != i]
        matrix[i, others] = rng.dirichlet(np.full(n - 1, concentration))
    return matrix


def markov_regime_path(
    n_bars: int, rng: np.random.Generator, min_days: float, max_days: float, transitions: np.ndarray
) -> np.ndarray:
    """Regime code per minute: log-uniform segment lengths, next regime drawn from `transitions`."""
    codes = np.empty(n_bars, dtype=np.int8)
    code = int(rng.integers(len(REGIMES)))
    position = 0
    while position < n_bars:
        length = max(1, int(np.exp(rng.uniform(np.log(min_days), np.log(max_days))) * MINUTES_PER_DAY))
        codes[position : position + length] = code
        position += length
        code = int(rng.choice(len(REGIMES), p=transitions[code]))
    return codes


def seasonal_scale(index: pd.DatetimeIndex) -> np.ndarray:
    """Volatility multiplier per minute from INTRADAY_PROFILE, linearly interpolated within the hour
    and normalised to a mean square of 1 over the day (so the profile moves volatility, not its level)."""
    profile = np.asarray(INTRADAY_PROFILE, dtype=np.float64)
    profile = profile / np.sqrt(np.mean(profile**2))
    hours = np.asarray(index.hour) + np.asarray(index.minute) / 60.0
    return np.interp(hours, np.arange(25), np.append(profile, profile[0]))


def student_t_unit(rng: np.random.Generator, size: int, df: float) -> np.ndarray:
    """Student-t draws scaled to unit variance (needs df > 2)."""
    return rng.standard_t(df, size) * np.sqrt((df - 2.0) / df)


def _segment_log_prices(
    codes: np.ndarray,
    noise: np.ndarray,
    season: np.ndarray,
    rng: np.random.Generator,
    start_price: float,
    trend_strength_range: tuple[float, float],
    range_half_life_hours: tuple[float, float],
) -> np.ndarray:
    """Log close per minute, segment by segment, each with its own drawn parameters."""
    base = {"bull_trending": TREND_SIGMA, "bear_trending": TREND_SIGMA,
            "volatile_ranging": VOLATILE_SIGMA, "calm_ranging": CALM_SIGMA}
    bounds = np.concatenate([np.flatnonzero(np.diff(codes)) + 1, [len(codes)]])
    out = np.empty(len(codes))
    anchor = np.log(start_price)
    first = 0
    for last in bounds:
        name = REGIMES[int(codes[first])]
        sigma = base[name] * float(np.exp(SIGMA_JITTER * rng.standard_normal()))
        shocks = sigma * season[first:last] * noise[first:last]
        if name.endswith("_trending"):
            strength = rng.uniform(*trend_strength_range)
            drift = (1.0 if name == "bull_trending" else -1.0) * strength * sigma * np.sqrt(60.0) / 60.0
            path = np.cumsum(shocks + drift)
        else:
            half_life = rng.uniform(*range_half_life_hours) * 60.0
            path = lfilter([1.0], [1.0, -(0.5 ** (1.0 / half_life))], shocks)
        out[first:last] = anchor + path
        anchor = out[last - 1]
        first = last
    return out


def generate_markov_bars(
    days: int,
    seed: int,
    *,
    start: str | pd.Timestamp = "2021-03-01",
    symbol: str = "MARKOV",
    start_price: float = 1.30,
    min_regime_days: float = 1.5,
    max_regime_days: float = 9.0,
    tail_df: float = 5.0,
    trend_strength_range: tuple[float, float] = (0.35, 0.75),
    range_half_life_hours: tuple[float, float] = (1.0, 8.0),
) -> SyntheticBars:
    """M1 bars over `days` calendar days from `start`, Markov-switching regimes; deterministic per seed."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if not 0 < min_regime_days <= max_regime_days:
        raise ValueError(f"need 0 < min_regime_days <= max_regime_days, got {min_regime_days}, {max_regime_days}")
    if tail_df <= 2:
        raise ValueError(f"tail_df must be > 2 (finite variance), got {tail_df}")
    if start_price <= 0:
        raise ValueError(f"start_price must be > 0, got {start_price}")
    if not 0 <= trend_strength_range[0] <= trend_strength_range[1]:
        raise ValueError(f"trend_strength_range must be ordered and >= 0, got {trend_strength_range}")
    if not 0 < range_half_life_hours[0] <= range_half_life_hours[1]:
        raise ValueError(f"range_half_life_hours must be ordered and > 0, got {range_half_life_hours}")
    rng = np.random.default_rng(seed)
    index = trading_minutes(pd.Timestamp(start), days)
    codes = markov_regime_path(len(index), rng, min_regime_days, max_regime_days, transition_matrix(rng))
    season = seasonal_scale(index)
    noise = student_t_unit(rng, len(index), tail_df)
    log_close = _segment_log_prices(codes, noise, season, rng, start_price, trend_strength_range, range_half_life_hours)
    close = np.exp(log_close)
    open_ = np.concatenate([[start_price], close[:-1]])
    spread = np.abs(np.diff(np.concatenate([[np.log(start_price)], log_close]))) + 1e-6
    high = np.maximum(open_, close) * np.exp(np.abs(rng.standard_normal(len(index))) * 0.3 * spread)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.standard_normal(len(index))) * 0.3 * spread)
    volume = np.round(50.0 * season * rng.gamma(4.0, 0.25, len(index)), 2) + 1.0
    bars = pd.DataFrame(dict(zip(BAR_COLUMNS, (open_, high, low, close, volume), strict=True)), index=index)
    labels = pd.Series(np.asarray(REGIMES, dtype=object)[codes], index=index, name="regime", dtype="str")
    return SyntheticBars(bars=bars, regimes=labels, symbol=symbol, seed=seed)
