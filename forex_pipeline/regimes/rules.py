"""The rules detector: causal features over spans of time, and rules on them (first match wins).

Every window is a span of trading time in hours, turned into bars for the base timeframe
(`span_bars`), so `trend_hours: 48` means two trading days on 5m bars and on 4h bars alike.
Bars, not wall-clock time: weekends and gaps do not count.

Features of bar t (from closes up to and including t; NaN while a window is incomplete):
- trend_strength: the mean of two Kaufman efficiency ratios (Kaufman 1995, "Smarter Trading"),
  over `trend_hours` and over its last half: |net move| / path length, in [0, 1], 1 for a straight
  line. The path is measured in steps of `trend_step_hours` (at least one bar), not bar by bar:
  a path summed over 1-bar moves grows as the square root of the bar count, so a bar-by-bar ratio
  over the same span is about half as large on 15m bars as on 1h bars and one threshold could not
  mean the same at every timeframe; on a fixed step grid the ratio is the same statistic at any
  base timeframe up to the step. The half span reacts to a trend's start and end, the full span
  keeps noise out.
- returns: log return over the last trend_hours / 2 (the recent direction).
- volatility: realised volatility per square-root hour, sqrt(sum r^2 / hours), over
  `volatility_hours`.
- volatility_percentile: rank of volatility (pandas pct rank, ties averaged) among its own values
  over the last `percentile_hours`, t included (`rolling_percentile`); the same number a rule
  `volatility: "> 75th percentile"` compares.
- return_sign: sign of `returns`: -1, 0 or 1.
With `deseasonalize` and timestamps, trend_strength and volatility use returns divided by their
causal intraday profile (seasonality.py), so sessions do not pass for regimes.

Rules are data: a regime matches when every rule holds (a value inside its bound, or with
`percentile` the feature's rank over `percentile_hours` inside it; NaN never matches); the first
matching regime in definition order wins; bars matching none are `unclassified`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from forex_pipeline.keys import REGIME_UNCLASSIFIED
from forex_pipeline.data.timeframes import timeframe_minutes
from forex_pipeline.regimes.seasonality import deseasonalized_returns
from forex_pipeline.settings import REGIME_FEATURES, Bound, RegimeDefinition, RegimeSettings



def span_bars(hours: float, timeframe: str) -> int:
    """Bars of `timeframe` in a span of `hours` (rounded, at least 1)."""
    return max(1, int(round(hours * 60.0 / timeframe_minutes(timeframe))))


def checked_close(close: np.ndarray) -> np.ndarray:
    """close as a 1-d float64 array of finite positive prices, else ValueError."""
    close = np.asarray(close, dtype=np.float64)
    if close.ndim != 1:
        raise ValueError(f"close must be 1-d, got shape {close.shape}")
    if not (np.isfinite(close).all() and (close > 0).all()):
        raise ValueError("close prices must be finite and positive")
    return close


def window_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum of values[t - window + 1 .. t]; NaN for t < window - 1 (NaN values count as 0)."""
    csum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(values))])
    out = np.full(values.shape, np.nan)
    out[window - 1 :] = csum[window:] - csum[:-window]
    return out


def efficiency_ratio(log_path: np.ndarray, step: int, steps: int) -> np.ndarray:
    """|log_path[t] - log_path[t - steps*step]| / sum over k < steps of |log_path[t - k*step] - log_path[t - (k+1)*step]|.

    In [0, 1]; NaN before steps*step bars of history; 0 on a flat path.
    """
    n = log_path.size
    span = steps * step
    out = np.full(n, np.nan)
    if n <= span:
        return out
    step_moves = np.full(n, np.nan)
    step_moves[step:] = np.abs(log_path[step:] - log_path[:-step])
    # cumulative sums along each residue class modulo `step`: csum[t] = sum of step_moves[t], [t-step], ...
    csum = np.zeros(n)
    for residue in range(step):
        csum[residue::step] = np.cumsum(np.nan_to_num(step_moves[residue::step]))
    path = csum[span:] - csum[:-span]
    move = np.abs(log_path[span:] - log_path[:-span])
    out[span:] = np.divide(move, path, out=np.zeros_like(move), where=path > 0)
    return np.clip(out, 0.0, 1.0)


def rule_features(
    close: np.ndarray,
    settings: RegimeSettings,
    *,
    timeframe: str,
    timestamps: pd.DatetimeIndex | None = None,
) -> pd.DataFrame:
    """The rule features per bar (columns REGIME_FEATURES); see the module docstring."""
    close = checked_close(close)
    log_close = np.log(close)
    n = close.size
    returns = deseasonalized_returns(close, timestamps if settings.deseasonalize else None)
    log_path = np.concatenate([[0.0], np.cumsum(np.nan_to_num(returns[1:]))])
    step = span_bars(settings.trend_step_hours, timeframe)
    steps = max(1, int(round(span_bars(settings.trend_hours, timeframe) / step)))
    long_ratio = efficiency_ratio(log_path, step, steps)
    short_ratio = efficiency_ratio(log_path, step, max(1, steps // 2))
    trend = 0.5 * (long_ratio + short_ratio)
    half = max(1, steps // 2) * step
    recent = np.full(n, np.nan)
    recent[half:] = log_close[half:] - log_close[:-half]
    recent[np.isnan(trend)] = np.nan
    vol_bars = span_bars(settings.volatility_hours, timeframe)
    squares = np.where(np.isfinite(returns), returns * returns, 0.0)
    volatility = np.full(n, np.nan)
    volatility[vol_bars:] = np.sqrt(window_sum(squares, vol_bars)[vol_bars:] / settings.volatility_hours)
    percentile = rolling_percentile(volatility, span_bars(settings.percentile_hours, timeframe))
    return pd.DataFrame(
        {
            "trend_strength": trend,
            "returns": recent,
            "volatility": volatility,
            "volatility_percentile": percentile,
            "return_sign": np.sign(recent),
        },
        columns=list(REGIME_FEATURES),
    )


def rolling_percentile(values: np.ndarray, window: int) -> np.ndarray:
    """Rank of values[t] among the non-NaN values[t - window + 1 .. t] as a fraction in (0, 1] (ties
    averaged); NaN until there are min(window, max(20, window // 20)) values to rank against."""
    window = max(int(window), 1)
    min_periods = min(window, max(20, window // 20))
    series = pd.Series(np.asarray(values, dtype=np.float64))
    return series.rolling(window, min_periods=min_periods).rank(pct=True).to_numpy()


def bound_holds(values: np.ndarray, bound: Bound) -> np.ndarray:
    """Boolean per bar: the value lies inside `bound` (inclusive or strict per side); NaN never does."""
    ok = ~np.isnan(values)
    if bound.min is not None:
        ok &= values >= bound.min if bound.min_inclusive else values > bound.min
    if bound.max is not None:
        ok &= values <= bound.max if bound.max_inclusive else values < bound.max
    return ok


def apply_rules(
    features: pd.DataFrame, definitions: Mapping[str, RegimeDefinition], percentile_bars: int = 1000
) -> np.ndarray:
    """Regime name per row: the first definition whose every rule holds, else 'unclassified'.

    Percentile rules rank the feature among its own last `percentile_bars` values (cached per feature).
    """
    labels = np.full(len(features), REGIME_UNCLASSIFIED, dtype=object)
    unassigned = np.ones(len(features), dtype=bool)
    ranks: dict[str, np.ndarray] = {}
    for name, definition in definitions.items():
        match = unassigned.copy()
        for feature, bound in definition.rules.items():
            if feature not in features.columns:
                raise ValueError(f"regime {name!r} has a rule on {feature!r}, which is not a regime feature")
            values = features[feature].to_numpy(dtype=np.float64)
            if bound.percentile:
                if feature not in ranks:
                    ranks[feature] = rolling_percentile(values, percentile_bars)
                values = ranks[feature]
            match &= bound_holds(values, bound)
        labels[match] = name
        unassigned &= ~match
    return labels


def rule_labels(
    close: np.ndarray,
    settings: RegimeSettings,
    definitions: Mapping[str, RegimeDefinition],
    *,
    timeframe: str,
    timestamps: pd.DatetimeIndex | None = None,
) -> np.ndarray:
    """Labels of `definitions` on `close` by the rules alone."""
    features = rule_features(close, settings, timeframe=timeframe, timestamps=timestamps)
    return apply_rules(features, definitions, span_bars(settings.percentile_hours, timeframe))
