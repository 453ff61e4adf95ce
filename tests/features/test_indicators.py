"""Indicator values against independent calculations, and when higher-timeframe values become visible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.features.indicators import (
    INDICATOR_FUNCTIONS,
    align_to_base,
    bar_close_times,
    compute_indicators,
    indicators_on,
)
from forex_pipeline.features.spec import INDICATORS
from tests.features.helpers import random_bars


def wilder_rsi(close: np.ndarray, period: int) -> np.ndarray:
    """RSI by Wilder's smoothing, written out by hand."""
    out = np.full(len(close), np.nan)
    change = np.diff(close)
    gains, losses = np.clip(change, 0, None), np.clip(-change, 0, None)
    avg_gain, avg_loss = gains[:period].mean(), losses[:period].mean()
    out[period] = 100 - 100 / (1 + avg_gain / avg_loss)
    for i in range(period, len(change)):
        avg_gain = (avg_gain * (period - 1) + gains[i]) / period
        avg_loss = (avg_loss * (period - 1) + losses[i]) / period
        out[i + 1] = 100 - 100 / (1 + avg_gain / avg_loss)
    return out


def pandas_resample(bars: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Left-labelled OHLCV resampling with pandas, empty buckets dropped."""
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    return bars.resample(rule, label="left", closed="left").agg(agg).dropna(subset=["close"])


def test_every_spec_indicator_has_a_function() -> None:
    assert tuple(INDICATOR_FUNCTIONS) == INDICATORS


def test_rsi_matches_wilder_by_hand() -> None:
    bars = random_bars(300, seed=3)
    got = indicators_on(bars, ["rsi"], "1h")["rsi_14_1h"].to_numpy()
    expected = wilder_rsi(bars["close"].to_numpy(), 14)
    assert np.isnan(got[:14]).all()
    np.testing.assert_allclose(got[14:], expected[14:], rtol=1e-9)


def test_sma_dist_matches_pandas_rolling_mean() -> None:
    bars = random_bars(200, seed=4)
    got = indicators_on(bars, ["sma_dist"], "1h")
    close = bars["close"]
    for period in (20, 50):
        expected = close / close.rolling(period).mean() - 1
        np.testing.assert_allclose(got[f"sma_dist_{period}_1h"], expected, rtol=1e-9, equal_nan=True)


def test_bollinger_percent_b_and_width_match_pandas() -> None:
    bars = random_bars(200, seed=5)
    got = indicators_on(bars, ["bbands"], "1h")
    close = bars["close"]
    middle = close.rolling(20).mean()
    std = close.rolling(20).std(ddof=0)
    upper, lower = middle + 2 * std, middle - 2 * std
    np.testing.assert_allclose(got["bbands_pctb_20_1h"], (close - lower) / (upper - lower), rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(got["bbands_width_20_1h"], (upper - lower) / middle, rtol=1e-6, equal_nan=True)


def test_atr_is_relative_to_close_and_macd_scaled_by_price() -> None:
    bars = random_bars(400, seed=6)
    doubled = bars.copy()
    doubled[["open", "high", "low", "close"]] *= 2.0
    a = indicators_on(bars, ["atr", "macd"], "1h")
    b = indicators_on(doubled, ["atr", "macd"], "1h")
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-7, atol=1e-12, equal_nan=True)
    true_range = np.maximum(bars["high"], bars["close"].shift()) - np.minimum(bars["low"], bars["close"].shift())
    ratio = a["atr_14_1h"].iloc[-1] / (true_range.iloc[-100:].mean() / bars["close"].iloc[-1])
    assert 0.5 < ratio < 2.0


def test_four_hour_value_appears_only_after_its_bar_closed() -> None:
    bars = random_bars(300, seed=8, start="2024-06-03 00:00")
    got = compute_indicators(bars, "1h", {"rsi": ("4h",)})["rsi_14_4h"]
    four_hour = pandas_resample(bars, "4h")
    rsi_4h = pd.Series(wilder_rsi(four_hour["close"].to_numpy(), 14), index=four_hour.index)
    day = pd.Timestamp("2024-06-10", tz="UTC")
    assert got[day + pd.Timedelta(hours=3)] == pytest.approx(rsi_4h[day], rel=1e-9)
    assert got[day + pd.Timedelta(hours=2)] == pytest.approx(rsi_4h[day - pd.Timedelta(hours=4)], rel=1e-9)
    for t in got.index[150:]:
        latest_closed = rsi_4h.index[rsi_4h.index + pd.Timedelta(hours=4) <= t + pd.Timedelta(hours=1)][-1]
        assert got[t] == pytest.approx(rsi_4h[latest_closed], rel=1e-9)


@pytest.mark.parametrize(
    ("day", "close_hour_utc"),
    [("2024-07-10", 21), ("2024-01-10", 22)],
)
def test_daily_bars_close_at_five_pm_new_york_with_dst(day: str, close_hour_utc: int) -> None:
    bars = random_bars(24 * 60, seed=9, start=str(pd.Timestamp(day) - pd.Timedelta(days=45)), skip_saturdays=False)
    got = compute_indicators(bars, "1h", {"sma_dist": ("1d",)})["sma_dist_20_1d"]
    closing_row = pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=close_hour_utc - 1)
    before_close = closing_row - pd.Timedelta(hours=1)
    assert got[closing_row] != got[before_close]
    assert got[before_close] == got[before_close - pd.Timedelta(hours=5)]
    assert got[closing_row] == got[closing_row + pd.Timedelta(hours=5)]


def test_new_york_day_across_dst_change_closes_after_25_hours() -> None:
    opens = pd.DatetimeIndex(["2024-11-02 21:00"], tz="UTC")
    assert bar_close_times(opens, "1d", "1h")[0] == pd.Timestamp("2024-11-03 22:00", tz="UTC")
    assert bar_close_times(opens, "1d", "4h")[0] == pd.Timestamp("2024-11-03 21:00", tz="UTC")


def test_align_to_base_uses_close_time_inclusive() -> None:
    higher = pd.DataFrame({"x": [1.0, 2.0]}, index=pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 04:00"], tz="UTC"))
    base = pd.date_range("2024-01-01 02:00", periods=8, freq="1h", tz="UTC")
    got = align_to_base(higher, "4h", base, "1h")["x"].to_numpy()
    np.testing.assert_array_equal(got, [np.nan, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0])


def test_timeframe_finer_than_base_is_refused() -> None:
    with pytest.raises(ValueError, match="finer than base_timeframe"):
        compute_indicators(random_bars(100), "1h", {"rsi": ("15m",)})
