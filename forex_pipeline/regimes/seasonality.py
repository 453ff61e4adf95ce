"""Causal intraday volatility profile: FX volatility follows the trading sessions.

FX returns are two to three times as volatile in the London/New York overlap as in the late
Asian session (Andersen & Bollerslev 1997, "Intraday periodicity and volatility persistence in
financial markets", J. Empirical Finance 4). Measured without care, a calm afternoon looks as
volatile as a turbulent night, and a regime detector flips with the clock. The standard remedy
(ibid.; Taylor & Xu 1997) divides each return by the periodic component of volatility for its
time of day. The component is the mean absolute return of the bars opened in a UTC hour over
that of all bars (absolute rather than squared returns: FX returns are fat-tailed, and one jump
should not make an hour look busy). Two estimates:

- `intraday_scale` (rules detector): causal, from *earlier* bars only, so the scale of bar t never
  depends on bar t or later and no training segment is needed;
- `fitted_intraday_scale` (HMM detector): one profile fitted on the training segment, like the
  HMM's other parameters, and applied to every bar (measured better for the HMM: an expanding
  estimate is noisy in the first weeks of the segment the model is fitted on).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# An hour's profile is used once it has this many earlier returns (about four weeks of a given hour).
MIN_HOUR_COUNT = 20


def intraday_scale(returns: np.ndarray, timestamps: pd.DatetimeIndex, min_count: int = MIN_HOUR_COUNT) -> np.ndarray:
    """Volatility multiplier per bar (1 = an average hour), from earlier bars only.

    `returns` are 1-bar log returns (NaN where unknown, e.g. the first bar); `timestamps` the bars'
    open times. scale_t = mean |r| of earlier bars in t's UTC hour / mean |r| of all earlier bars;
    1 until the hour has `min_count` earlier returns or when there is no movement yet.
    Daily bars open at one or two UTC hours, so their scale stays near 1.
    """
    returns = np.asarray(returns, dtype=np.float64)
    if len(timestamps) != returns.size:
        raise ValueError(f"{len(timestamps)} timestamps for {returns.size} returns")
    known = np.isfinite(returns)
    sizes = np.where(known, np.abs(returns), 0.0)
    hours = pd.Series(np.asarray(timestamps.hour))
    hour_sum = pd.Series(sizes).groupby(hours).cumsum().to_numpy() - sizes
    hour_count = pd.Series(known.astype(np.float64)).groupby(hours).cumsum().to_numpy() - known
    total_sum = np.cumsum(sizes) - sizes
    total_count = np.cumsum(known) - known
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (hour_sum / hour_count) / (total_sum / total_count)
    usable = (hour_count >= min_count) & np.isfinite(ratio) & (ratio > 0)
    return np.where(usable, ratio, 1.0)


def fitted_intraday_scale(
    returns: np.ndarray, timestamps: pd.DatetimeIndex, fit_end: int, min_count: int = MIN_HOUR_COUNT
) -> np.ndarray:
    """Volatility multiplier per bar from one profile fitted on bars [0, fit_end): mean |r| of the
    segment's bars in each UTC hour over mean |r| of all its bars (1 for hours with fewer than
    `min_count` returns in the segment)."""
    returns = np.asarray(returns, dtype=np.float64)
    if len(timestamps) != returns.size:
        raise ValueError(f"{len(timestamps)} timestamps for {returns.size} returns")
    hours = np.asarray(timestamps.hour)
    fit = np.isfinite(returns) & (np.arange(returns.size) < fit_end)
    overall = np.abs(returns[fit]).mean() if fit.any() else 0.0
    profile = np.ones(24)
    if overall > 0:
        for hour in range(24):
            in_hour = fit & (hours == hour)
            if in_hour.sum() >= min_count:
                profile[hour] = np.abs(returns[in_hour]).mean() / overall
    profile[~(profile > 0)] = 1.0
    return profile[hours]


def log_returns(close: np.ndarray) -> np.ndarray:
    """1-bar log returns, NaN at bar 0."""
    return np.concatenate([[np.nan], np.diff(np.log(np.asarray(close, dtype=np.float64)))])


def deseasonalized_returns(
    close: np.ndarray, timestamps: pd.DatetimeIndex | None, fit_end: int | None = None
) -> np.ndarray:
    """1-bar log returns (NaN at bar 0) divided by the intraday scale: causal (`intraday_scale`)
    when fit_end is None, else the profile fitted on bars before fit_end; unscaled without timestamps."""
    returns = log_returns(close)
    if timestamps is None:
        return returns
    timestamps = pd.DatetimeIndex(timestamps)
    if fit_end is None:
        return returns / intraday_scale(returns, timestamps)
    return returns / fitted_intraday_scale(returns, timestamps, fit_end)
