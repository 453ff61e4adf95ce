"""Multi-timeframe TA-Lib indicators, joined to base rows only once each higher-timeframe bar has closed.

Every indicator is computed on its own timeframe's bars (resampled from the base bars). Base row t is
known at t + T_base; it receives the value of the latest higher bar that has closed by then
(open + T_high <= t + T_base; daily bars are FX trading days closing at 17:00 New York).
Price-level outputs (MACD, ATR, moving averages) are divided by price so that pairs are comparable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import talib

from forex_pipeline.data.timeframes import TIMEFRAME_MINUTES, timeframe_delta
from forex_pipeline.features.spec import INDICATORS

NEW_YORK = "America/New_York"
RSI_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
ATR_PERIOD = 14
BBANDS_PERIOD, BBANDS_DEV = 20, 2.0
ADX_PERIOD = 14
STOCH_K, STOCH_SLOWK, STOCH_D = 14, 3, 3
MA_PERIODS: tuple[int, ...] = (20, 50)

Columns = dict[str, np.ndarray]


def _prices(bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """open, high, low, close as contiguous float64 arrays (TA-Lib needs them)."""
    return tuple(np.ascontiguousarray(bars[c].to_numpy(dtype=np.float64)) for c in ("open", "high", "low", "close"))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator with NaN where the denominator is zero or not finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = numerator / denominator
    out[~np.isfinite(out)] = np.nan
    return out


def rsi(bars: pd.DataFrame) -> Columns:
    """Relative strength index (0-100)."""
    close = _prices(bars)[3]
    return {f"rsi_{RSI_PERIOD}": talib.RSI(close, timeperiod=RSI_PERIOD)}


def macd(bars: pd.DataFrame) -> Columns:
    """MACD line, signal and histogram divided by close, so they read as fractions of price."""
    close = _prices(bars)[3]
    line, signal, hist = talib.MACD(close, fastperiod=MACD_FAST, slowperiod=MACD_SLOW, signalperiod=MACD_SIGNAL)
    suffix = f"{MACD_FAST}_{MACD_SLOW}_{MACD_SIGNAL}"
    return {
        f"macd_line_{suffix}": _ratio(line, close),
        f"macd_signal_{suffix}": _ratio(signal, close),
        f"macd_hist_{suffix}": _ratio(hist, close),
    }


def atr(bars: pd.DataFrame) -> Columns:
    """Average true range relative to close."""
    _, high, low, close = _prices(bars)
    return {f"atr_{ATR_PERIOD}": _ratio(talib.ATR(high, low, close, timeperiod=ATR_PERIOD), close)}


def bbands(bars: pd.DataFrame) -> Columns:
    """Bollinger %b (close within the bands) and bandwidth (band width over the middle band)."""
    close = _prices(bars)[3]
    upper, middle, lower = talib.BBANDS(close, timeperiod=BBANDS_PERIOD, nbdevup=BBANDS_DEV, nbdevdn=BBANDS_DEV)
    return {
        f"bbands_pctb_{BBANDS_PERIOD}": _ratio(close - lower, upper - lower),
        f"bbands_width_{BBANDS_PERIOD}": _ratio(upper - lower, middle),
    }


def adx(bars: pd.DataFrame) -> Columns:
    """Average directional index with the +DI and -DI lines (0-100)."""
    _, high, low, close = _prices(bars)
    return {
        f"adx_{ADX_PERIOD}": talib.ADX(high, low, close, timeperiod=ADX_PERIOD),
        f"adx_plus_di_{ADX_PERIOD}": talib.PLUS_DI(high, low, close, timeperiod=ADX_PERIOD),
        f"adx_minus_di_{ADX_PERIOD}": talib.MINUS_DI(high, low, close, timeperiod=ADX_PERIOD),
    }


def stoch(bars: pd.DataFrame) -> Columns:
    """Slow stochastic %K and %D (0-100)."""
    _, high, low, close = _prices(bars)
    k, d = talib.STOCH(high, low, close, fastk_period=STOCH_K, slowk_period=STOCH_SLOWK, slowk_matype=0,
                       slowd_period=STOCH_D, slowd_matype=0)
    return {f"stoch_k_{STOCH_K}": k, f"stoch_d_{STOCH_K}": d}


def ema_dist(bars: pd.DataFrame) -> Columns:
    """close / EMA(n) - 1 for each n in MA_PERIODS."""
    close = _prices(bars)[3]
    return {f"ema_dist_{n}": _ratio(close, talib.EMA(close, timeperiod=n)) - 1.0 for n in MA_PERIODS}


def sma_dist(bars: pd.DataFrame) -> Columns:
    """close / SMA(n) - 1 for each n in MA_PERIODS."""
    close = _prices(bars)[3]
    return {f"sma_dist_{n}": _ratio(close, talib.SMA(close, timeperiod=n)) - 1.0 for n in MA_PERIODS}


INDICATOR_FUNCTIONS: dict[str, Callable[[pd.DataFrame], Columns]] = {
    "rsi": rsi,
    "macd": macd,
    "atr": atr,
    "bbands": bbands,
    "adx": adx,
    "stoch": stoch,
    "ema_dist": ema_dist,
    "sma_dist": sma_dist,
}


def day_boundary_for(base_timeframe: str) -> str:
    """FX trading days (17:00 New York) when base bars fit inside them, else UTC calendar days (4h base)."""
    return "new_york_close" if TIMEFRAME_MINUTES[base_timeframe] <= 60 else "utc_midnight"


def resample_to(bars: pd.DataFrame, base_timeframe: str, timeframe: str) -> pd.DataFrame:
    """Bars of `timeframe` built from the base bars by the data layer (left-labelled, no empty bars)."""
    from forex_pipeline.data.resample import resample_bars

    return resample_bars(
        bars, timeframe, day_boundary=day_boundary_for(base_timeframe), source_timeframe=base_timeframe
    )


def bar_close_times(opens: pd.DatetimeIndex, timeframe: str, base_timeframe: str) -> pd.DatetimeIndex:
    """When each `timeframe` bar opened at `opens` is complete: open + T, or for FX trading days the
    next 17:00 New York (23 or 25 hours later across a DST change)."""
    if timeframe == "1d" and day_boundary_for(base_timeframe) == "new_york_close":
        local = opens.tz_convert(NEW_YORK).tz_localize(None) + pd.Timedelta(days=1)
        return local.tz_localize(NEW_YORK, ambiguous="raise", nonexistent="raise").tz_convert("UTC").as_unit("ns")
    return (opens + timeframe_delta(timeframe)).as_unit("ns")


def align_to_base(
    values: pd.DataFrame, timeframe: str, base_index: pd.DatetimeIndex, base_timeframe: str
) -> pd.DataFrame:
    """Attach to each base row the latest `timeframe` row whose bar has closed by the base bar's close."""
    right = values.reset_index(drop=True)
    right.insert(0, "_available_at", bar_close_times(values.index, timeframe, base_timeframe))
    left = pd.DataFrame({"_available_at": (base_index + timeframe_delta(base_timeframe)).as_unit("ns")})
    merged = pd.merge_asof(left, right, on="_available_at", direction="backward", allow_exact_matches=True)
    merged.index = base_index
    return merged.drop(columns="_available_at")


def indicators_on(bars: pd.DataFrame, names: Sequence[str], timeframe: str) -> pd.DataFrame:
    """The named indicators computed on `bars`, columns suffixed with `_{timeframe}`."""
    columns: Columns = {}
    for name in names:
        if name not in INDICATOR_FUNCTIONS:
            raise ValueError(f"indicator {name!r} is unknown; known: {list(INDICATORS)}")
        for column, values in INDICATOR_FUNCTIONS[name](bars).items():
            columns[f"{column}_{timeframe}"] = values
    return pd.DataFrame(columns, index=bars.index, dtype=np.float64)


def compute_indicators(
    base_bars: pd.DataFrame, base_timeframe: str, indicator_timeframes: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """All requested indicators on all their timeframes, one row per base bar, free of look-ahead."""
    by_timeframe: dict[str, list[str]] = {}
    for name, timeframes in indicator_timeframes.items():
        for timeframe in timeframes:
            if TIMEFRAME_MINUTES[timeframe] < TIMEFRAME_MINUTES[base_timeframe]:
                raise ValueError(
                    f"indicator_timeframes.{name}: timeframe {timeframe} is finer than base_timeframe {base_timeframe}"
                )
            by_timeframe.setdefault(timeframe, []).append(name)
    frames = []
    for timeframe in sorted(by_timeframe, key=TIMEFRAME_MINUTES.__getitem__):
        names = sorted(by_timeframe[timeframe], key=INDICATORS.index)
        if timeframe == base_timeframe:
            frames.append(indicators_on(base_bars, names, timeframe))
        else:
            higher = resample_to(base_bars, base_timeframe, timeframe)
            frames.append(align_to_base(indicators_on(higher, names, timeframe), timeframe, base_bars.index, base_timeframe))
    if not frames:
        return pd.DataFrame(index=base_bars.index, dtype=np.float64)
    return pd.concat(frames, axis=1)
