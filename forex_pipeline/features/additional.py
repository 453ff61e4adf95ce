"""Additional feature families on base bars: returns and volatility, trading sessions, candlestick
patterns, volume profile, volume spread analysis, and the autoregressive return lags.

Row t uses bars up to and including t only (known at the close of bar t). Volume features are NaN
where the trailing window carries no volume (the M1 files have volume 0), never inf.
"""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import talib
from numpy.lib.stride_tricks import sliding_window_view

from forex_pipeline.data.timeframes import timeframe_delta
from forex_pipeline.features.matrix import AR_LAG_PREFIX
from forex_pipeline.features.spec import ADDITIONAL_FEATURES, Preprocessing

RETURN_WINDOWS: tuple[int, ...] = (5, 10, 20, 60)
LONG_VOL_MULTIPLE = 5
VOLUME_WINDOW = 50
PROFILE_WINDOW = 100
PROFILE_BINS = 24
PROFILE_CHUNK_ROWS = 20_000
VOLUME_FAMILIES: tuple[str, ...] = ("volume_profile", "vsa_analysis")

# name -> (IANA zone, local opening hour, local closing hour); a session is open on local weekdays.
SESSIONS: dict[str, tuple[str, int, int]] = {
    "sydney": ("Australia/Sydney", 7, 16),
    "tokyo": ("Asia/Tokyo", 9, 18),
    "london": ("Europe/London", 8, 17),
    "new_york": ("America/New_York", 8, 17),
}
OVERLAPS: tuple[tuple[str, str], ...] = (("sydney", "tokyo"), ("tokyo", "london"), ("london", "new_york"))

CANDLESTICK_PATTERNS: dict[str, str] = {
    "engulfing": "CDLENGULFING",
    "doji": "CDLDOJI",
    "hammer": "CDLHAMMER",
    "hanging_man": "CDLHANGINGMAN",
    "inverted_hammer": "CDLINVERTEDHAMMER",
    "shooting_star": "CDLSHOOTINGSTAR",
    "morning_star": "CDLMORNINGSTAR",
    "evening_star": "CDLEVENINGSTAR",
    "harami": "CDLHARAMI",
    "three_white_soldiers": "CDL3WHITESOLDIERS",
    "three_black_crows": "CDL3BLACKCROWS",
    "piercing": "CDLPIERCING",
    "dark_cloud_cover": "CDLDARKCLOUDCOVER",
    "marubozu": "CDLMARUBOZU",
    "spinning_top": "CDLSPINNINGTOP",
}


def _column(bars: pd.DataFrame, name: str) -> np.ndarray:
    return np.ascontiguousarray(bars[name].to_numpy(dtype=np.float64))


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator with NaN (never inf) where the denominator is zero or not finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(numerator, dtype=np.float64) / np.asarray(denominator, dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out


def log_returns(close: np.ndarray) -> np.ndarray:
    """1-bar log returns, NaN at row 0."""
    out = np.full(len(close), np.nan)
    out[1:] = np.log(close[1:] / close[:-1])
    return out


def ar_lag_features(close: np.ndarray, lags: int) -> pd.DataFrame:
    """ret_lag_k at row t = log(close[t-k+1] / close[t-k]); ret_lag_1 is the latest known return."""
    if lags < 1:
        raise ValueError(f"ar_lags must be >= 1, got {lags}")
    returns = log_returns(close)
    columns = {}
    for k in range(1, lags + 1):
        lagged = np.full(len(close), np.nan)
        lagged[k - 1:] = returns[: len(close) - k + 1]
        columns[f"{AR_LAG_PREFIX}{k}"] = lagged
    return pd.DataFrame(columns)


def returns_volatility(bars: pd.DataFrame, rv_window: int) -> pd.DataFrame:
    """Multi-window log returns, realised and range volatility, and the short/long volatility ratio.

    The 1-bar return is `ret_lag_1`, always present, so it is not repeated here.
    """
    close = _column(bars, "close")
    log_close = pd.Series(np.log(close))
    returns = pd.Series(log_returns(close))
    long_window = rv_window * LONG_VOL_MULTIPLE
    columns = {f"logret_{w}": log_close.diff(w).to_numpy() for w in RETURN_WINDOWS}
    rv_short = returns.rolling(rv_window, min_periods=rv_window).std().to_numpy()
    rv_long = returns.rolling(long_window, min_periods=long_window).std().to_numpy()
    log_range_sq = pd.Series(np.log(_column(bars, "high") / _column(bars, "low")) ** 2)
    parkinson = np.sqrt(log_range_sq.rolling(rv_window, min_periods=rv_window).mean() / (4 * np.log(2)))
    columns[f"rv_{rv_window}"] = rv_short
    columns[f"rv_{long_window}"] = rv_long
    columns[f"vol_ratio_{rv_window}_{long_window}"] = _safe_divide(rv_short, rv_long)
    columns[f"parkinson_vol_{rv_window}"] = parkinson.to_numpy()
    return pd.DataFrame(columns, index=bars.index)


def session_flags(moments: pd.DatetimeIndex) -> pd.DataFrame:
    """1.0 where each trading centre's session is open at `moments` (local time, DST via zoneinfo)."""
    columns: dict[str, np.ndarray] = {}
    for name, (zone, opens, closes) in SESSIONS.items():
        local = moments.tz_convert(ZoneInfo(zone))
        hour = local.hour.to_numpy() + local.minute.to_numpy() / 60.0
        weekday = local.day_of_week.to_numpy() < 5
        columns[f"session_{name}"] = ((hour >= opens) & (hour < closes) & weekday).astype(np.float64)
    for first, second in OVERLAPS:
        columns[f"overlap_{first}_{second}"] = columns[f"session_{first}"] * columns[f"session_{second}"]
    columns["sessions_open"] = sum(columns[f"session_{name}"] for name in SESSIONS)
    return pd.DataFrame(columns)


def calendar_cycles(moments: pd.DatetimeIndex) -> pd.DataFrame:
    """Hour-of-day and day-of-week as sine/cosine pairs (UTC), continuous across midnight and weekends."""
    hour = moments.hour.to_numpy() + moments.minute.to_numpy() / 60.0
    week = moments.day_of_week.to_numpy() + hour / 24.0
    return pd.DataFrame({
        "hour_sin": np.sin(2 * np.pi * hour / 24.0),
        "hour_cos": np.cos(2 * np.pi * hour / 24.0),
        "dow_sin": np.sin(2 * np.pi * week / 7.0),
        "dow_cos": np.cos(2 * np.pi * week / 7.0),
    })


def trading_sessions(bars: pd.DataFrame, base_timeframe: str) -> pd.DataFrame:
    """Session flags, overlaps and calendar cycles at each bar's CLOSE time, when its features are known."""
    moments = bars.index + timeframe_delta(base_timeframe)
    frame = pd.concat([session_flags(moments), calendar_cycles(moments)], axis=1)
    frame.index = bars.index
    return frame


def candlestick_patterns(bars: pd.DataFrame) -> pd.DataFrame:
    """TA-Lib candlestick patterns scaled to -1 (bearish), 0 (none), +1 (bullish)."""
    ohlc = [_column(bars, c) for c in ("open", "high", "low", "close")]
    return pd.DataFrame({
        f"cdl_{name}": np.sign(getattr(talib, function)(*ohlc)).astype(np.float64)
        for name, function in CANDLESTICK_PATTERNS.items()
    }, index=bars.index)


def _has_volume(volume: pd.Series, window: int) -> np.ndarray:
    """True where the trailing `window` bars carry some volume (otherwise volume features are undefined)."""
    return (volume.rolling(window, min_periods=window).sum() > 0).to_numpy()


def _profile_statistics(
    close: np.ndarray, typical: np.ndarray, volume: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, over the trailing `window` bars: volume-weighted price, point of control, and the
    share of volume traded at or below the current close."""
    n = len(close)
    vwap, poc, below = (np.full(n, np.nan) for _ in range(3))
    if n < window:
        return vwap, poc, below
    prices = sliding_window_view(typical, window)
    volumes = sliding_window_view(volume, window)
    for start in range(0, len(prices), PROFILE_CHUNK_ROWS):
        p = prices[start:start + PROFILE_CHUNK_ROWS]
        v = volumes[start:start + PROFILE_CHUNK_ROWS]
        rows = slice(window - 1 + start, window - 1 + start + len(p))
        total = v.sum(axis=1)
        vwap[rows] = _safe_divide((p * v).sum(axis=1), total)
        below[rows] = _safe_divide((v * (p <= close[rows, None])).sum(axis=1), total)
        low, high = p.min(axis=1), p.max(axis=1)
        width = np.where(high > low, (high - low) / PROFILE_BINS, 1.0)
        bins = np.clip(((p - low[:, None]) / width[:, None]).astype(np.int64), 0, PROFILE_BINS - 1)
        cells = (np.arange(len(p))[:, None] * PROFILE_BINS + bins).ravel()
        histogram = np.bincount(cells, weights=v.ravel(), minlength=len(p) * PROFILE_BINS).reshape(len(p), PROFILE_BINS)
        poc_price = np.where(high > low, low + (histogram.argmax(axis=1) + 0.5) * width, low)
        poc[rows] = np.where(total > 0, poc_price, np.nan)
    return vwap, poc, below


def volume_profile(bars: pd.DataFrame) -> pd.DataFrame:
    """Volume against its rolling distribution, and where close sits in the rolling volume profile."""
    volume = bars["volume"].astype(np.float64).reset_index(drop=True)
    close = _column(bars, "close")
    typical = (_column(bars, "high") + _column(bars, "low") + close) / 3.0
    rolling = volume.rolling(VOLUME_WINDOW, min_periods=VOLUME_WINDOW)
    has_volume = _has_volume(volume, VOLUME_WINDOW)
    zscore = _safe_divide(volume.to_numpy() - rolling.mean().to_numpy(), rolling.std().to_numpy())
    percentile = np.where(has_volume, rolling.rank(pct=True).to_numpy(), np.nan)
    vwap, poc, below = _profile_statistics(close, typical, np.ascontiguousarray(volume.to_numpy()), PROFILE_WINDOW)
    return pd.DataFrame({
        f"volume_z_{VOLUME_WINDOW}": np.where(has_volume, zscore, np.nan),
        f"volume_pct_{VOLUME_WINDOW}": percentile,
        f"vp_vwap_dist_{PROFILE_WINDOW}": _safe_divide(close, vwap) - 1.0,
        f"vp_poc_dist_{PROFILE_WINDOW}": _safe_divide(close, poc) - 1.0,
        f"vp_volume_below_close_{PROFILE_WINDOW}": below,
    }, index=bars.index)


def vsa_analysis(bars: pd.DataFrame) -> pd.DataFrame:
    """Volume spread analysis: spread, volume and close location against their recent norms.

    Signals (1.0 when present): up-thrust, no demand, no supply, stopping volume, buying and selling
    climax; effort vs result = log(relative volume / relative spread).
    """
    high, low, close = _column(bars, "high"), _column(bars, "low"), _column(bars, "close")
    volume = bars["volume"].astype(np.float64).reset_index(drop=True)
    spread = pd.Series(high - low)
    spread_rel = _safe_divide(spread.to_numpy(), spread.rolling(VOLUME_WINDOW, min_periods=VOLUME_WINDOW).mean().to_numpy())
    volume_mean = volume.rolling(VOLUME_WINDOW, min_periods=VOLUME_WINDOW).mean().to_numpy()
    volume_rel = _safe_divide(volume.to_numpy(), volume_mean)
    location = np.where(high > low, _safe_divide(close - low, high - low), 0.5)
    previous_close = np.concatenate([[np.nan], close[:-1]])
    previous_high = np.concatenate([[np.nan], high[:-1]])
    previous_low = np.concatenate([[np.nan], low[:-1]])
    lower_than_two = ((volume < volume.shift(1)) & (volume < volume.shift(2))).to_numpy()
    up_bar, down_bar = close > previous_close, close < previous_close
    valid = np.isfinite(volume_rel) & np.isfinite(spread_rel) & np.isfinite(previous_close)

    def signal(condition: np.ndarray) -> np.ndarray:
        return np.where(valid, condition.astype(np.float64), np.nan)

    with np.errstate(divide="ignore", invalid="ignore"):
        effort = np.log(volume_rel / spread_rel)
    effort[~np.isfinite(effort)] = np.nan
    return pd.DataFrame({
        "vsa_spread_rel": spread_rel,
        "vsa_close_location": location,
        "vsa_volume_rel": volume_rel,
        "vsa_effort_vs_result": effort,
        "vsa_up_thrust": signal((high > previous_high) & (location < 1 / 3) & (volume_rel > 1.5) & (spread_rel > 1.0)),
        "vsa_no_demand": signal(up_bar & (spread_rel < 0.7) & lower_than_two),
        "vsa_no_supply": signal(down_bar & (spread_rel < 0.7) & lower_than_two),
        "vsa_stopping_volume": signal(down_bar & (volume_rel > 2.0) & (location > 0.5)),
        "vsa_buying_climax": signal(up_bar & (volume_rel > 2.0) & (spread_rel > 1.5) & (location > 2 / 3) & (high > previous_high)),
        "vsa_selling_climax": signal(down_bar & (volume_rel > 2.0) & (spread_rel > 1.5) & (location < 1 / 3) & (low < previous_low)),
    }, index=bars.index)


ADDITIONAL_FUNCTIONS: dict[str, Callable[[pd.DataFrame, str, Preprocessing], pd.DataFrame]] = {
    "returns_volatility": lambda bars, _tf, pre: returns_volatility(bars, pre.rv_window),
    "trading_sessions": lambda bars, tf, _pre: trading_sessions(bars, tf),
    "candlestick_patterns": lambda bars, _tf, _pre: candlestick_patterns(bars),
    "volume_profile": lambda bars, _tf, _pre: volume_profile(bars),
    "vsa_analysis": lambda bars, _tf, _pre: vsa_analysis(bars),
}


def compute_additional(
    bars: pd.DataFrame, base_timeframe: str, names: tuple[str, ...], preprocessing: Preprocessing
) -> dict[str, pd.DataFrame]:
    """Each requested family's features (family name -> frame indexed like `bars`)."""
    out: dict[str, pd.DataFrame] = {}
    for name in names:
        if name not in ADDITIONAL_FUNCTIONS:
            raise ValueError(f"additional feature {name!r} is unknown; known: {list(ADDITIONAL_FEATURES)}")
        out[name] = ADDITIONAL_FUNCTIONS[name](bars, base_timeframe, preprocessing).astype(np.float64)
    return out
