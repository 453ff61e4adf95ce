"""Resampling: hand-checked small cases, day boundaries, refusals, and the real EURUSD M1 file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.data.resample import find_gaps, resample_bars
from forex_pipeline.data.schema import assert_bar_frame


def make_bars(rows: list[tuple[str, float, float, float, float, float]]) -> pd.DataFrame:
    """Bar frame from (UTC time, open, high, low, close, volume) tuples."""
    index = pd.DatetimeIndex([r[0] for r in rows], tz="UTC", name="timestamp").as_unit("ns")
    data = np.array([r[1:] for r in rows], dtype="float64")
    return pd.DataFrame(data, index=index, columns=["open", "high", "low", "close", "volume"])


SMALL = make_bars(
    [
        ("2021-03-01 10:00", 1.00, 1.05, 0.99, 1.02, 1),
        ("2021-03-01 10:01", 1.02, 1.08, 1.01, 1.07, 2),
        ("2021-03-01 10:02", 1.07, 1.07, 0.95, 0.96, 3),
        ("2021-03-01 10:06", 0.96, 0.99, 0.96, 0.98, 4),
        ("2021-03-01 11:31", 0.98, 1.10, 0.97, 1.09, 5),
    ]
)


def test_five_minute_bars_by_hand() -> None:
    out = resample_bars(SMALL, "5m")
    assert_bar_frame(out)
    expected = make_bars(
        [
            ("2021-03-01 10:00", 1.00, 1.08, 0.95, 0.96, 6),
            ("2021-03-01 10:05", 0.96, 0.99, 0.96, 0.98, 4),
            ("2021-03-01 11:30", 0.98, 1.10, 0.97, 1.09, 5),
        ]
    )
    pd.testing.assert_frame_equal(out, expected)


def test_hour_bars_by_hand_leave_the_gap_empty() -> None:
    out = resample_bars(SMALL, "1h")
    assert out.index.equals(pd.DatetimeIndex(["2021-03-01 10:00", "2021-03-01 11:00"], tz="UTC"))
    assert out.iloc[0].tolist() == [1.00, 1.08, 0.95, 0.98, 10.0]
    assert resample_bars(SMALL, "1m").equals(SMALL)


def test_fifteen_minute_source_to_hours() -> None:
    bars = make_bars(
        [
            ("2021-03-01 10:00", 1.0, 1.2, 0.9, 1.1, 1),
            ("2021-03-01 10:15", 1.1, 1.3, 1.0, 1.2, 2),
            ("2021-03-01 10:45", 1.2, 1.25, 0.8, 0.85, 3),
            ("2021-03-01 12:15", 0.85, 0.9, 0.8, 0.88, 4),
            ("2021-03-01 12:30", 0.88, 0.95, 0.87, 0.9, 5),
        ]
    )
    out = resample_bars(bars, "1h")
    expected = make_bars([("2021-03-01 10:00", 1.0, 1.3, 0.8, 0.85, 6), ("2021-03-01 12:00", 0.85, 0.95, 0.8, 0.9, 9)])
    pd.testing.assert_frame_equal(out, expected)
    with pytest.raises(ValueError, match="finer timeframe 5m"):
        resample_bars(bars, "5m")


def test_weekend_produces_no_bars() -> None:
    friday = pd.date_range("2021-03-05 20:00", "2021-03-05 21:59", freq="min", tz="UTC")
    sunday = pd.date_range("2021-03-07 22:00", "2021-03-07 23:59", freq="min", tz="UTC")
    index = friday.append(sunday).rename("timestamp")
    price = np.linspace(1.0, 1.1, len(index))
    bars = pd.DataFrame(
        {"open": price, "high": price + 0.001, "low": price - 0.001, "close": price, "volume": 1.0}, index=index
    )
    hourly = resample_bars(bars, "1h")
    assert hourly.index.equals(
        pd.DatetimeIndex(["2021-03-05 20:00", "2021-03-05 21:00", "2021-03-07 22:00", "2021-03-07 23:00"], tz="UTC")
    )
    assert hourly["volume"].tolist() == [60.0] * 4
    four = resample_bars(bars, "4h")
    assert four.index.equals(pd.DatetimeIndex(["2021-03-05 20:00", "2021-03-07 20:00"], tz="UTC"))
    daily = resample_bars(bars, "1d")
    # New York close: Friday 16:00-16:59 NY belongs to the day opened Thursday 17:00 NY (22:00 UTC);
    # Sunday 17:00 NY opens Monday's trading day.
    assert daily.index.equals(pd.DatetimeIndex(["2021-03-04 22:00", "2021-03-07 22:00"], tz="UTC"))


def test_new_york_close_follows_daylight_saving() -> None:
    bars = make_bars(
        [
            ("2021-01-12 21:59", 1, 1, 1, 1, 1),
            ("2021-01-12 22:00", 2, 2, 2, 2, 1),
            ("2021-07-13 20:59", 3, 3, 3, 3, 1),
            ("2021-07-13 21:00", 4, 4, 4, 4, 1),
        ]
    )
    daily = resample_bars(bars, "1d", source_timeframe="1m")
    assert daily.index.equals(
        pd.DatetimeIndex(["2021-01-11 22:00", "2021-01-12 22:00", "2021-07-12 21:00", "2021-07-13 21:00"], tz="UTC")
    )
    utc_days = resample_bars(bars, "1d", day_boundary="utc_midnight", source_timeframe="1m")
    assert utc_days.index.equals(pd.DatetimeIndex(["2021-01-12", "2021-07-13"], tz="UTC"))
    assert utc_days["close"].tolist() == [2.0, 4.0]


def test_finer_target_is_refused() -> None:
    hourly = resample_bars(SMALL, "1h")
    with pytest.raises(ValueError, match="cannot resample 1h bars to the finer timeframe 15m"):
        resample_bars(hourly, "15m", source_timeframe="1h")


def test_straddling_source_bars_are_refused() -> None:
    index = pd.date_range("2021-03-01 00:00", periods=12, freq="4h", tz="UTC", name="timestamp")
    bars = pd.DataFrame({c: 1.0 for c in ("open", "high", "low", "close", "volume")}, index=index)
    with pytest.raises(ValueError, match="straddles a 1d bucket boundary"):
        resample_bars(bars, "1d")
    assert len(resample_bars(bars, "1d", day_boundary="utc_midnight")) == 2


def test_unknown_timeframe_and_boundary() -> None:
    with pytest.raises(ValueError, match="'2h' is not a timeframe"):
        resample_bars(SMALL, "2h")
    with pytest.raises(ValueError, match="day_boundary 'tokyo'"):
        resample_bars(SMALL, "1d", day_boundary="tokyo")  # type: ignore[arg-type]


def test_find_gaps_by_hand() -> None:
    gaps = find_gaps(SMALL, pd.Timedelta(minutes=2), timeframe="1m")
    assert gaps["start"].tolist() == [pd.Timestamp("2021-03-01 10:03", tz="UTC"), pd.Timestamp("2021-03-01 10:07", tz="UTC")]
    assert gaps["end"].tolist() == [pd.Timestamp("2021-03-01 10:06", tz="UTC"), pd.Timestamp("2021-03-01 11:31", tz="UTC")]
    assert gaps["duration"].tolist() == [pd.Timedelta(minutes=3), pd.Timedelta(minutes=84)]
    assert find_gaps(SMALL, pd.Timedelta(hours=2), timeframe="1m").empty
    assert list(find_gaps(SMALL.iloc[:1], pd.Timedelta(minutes=1)).columns) == ["start", "end", "duration"]


def independent_hourly(bars: pd.DataFrame) -> pd.DataFrame:
    """Hourly OHLCV by integer division of epoch nanoseconds and a pandas groupby."""
    hour = bars.index.asi8 // (3600 * 10**9)
    grouped = bars.groupby(hour, sort=True)
    frame = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(),
        }
    )
    frame.index = pd.to_datetime(frame.index.to_numpy() * 3600, unit="s", utc=True)
    return frame


def test_real_eurusd_hourly_matches_groupby(eurusd_m1: pd.DataFrame) -> None:
    hourly = resample_bars(eurusd_m1, "1h")
    expected = independent_hourly(eurusd_m1)
    np.testing.assert_array_equal(hourly.index.asi8, expected.index.as_unit("ns").asi8)
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(hourly[column].to_numpy(), expected[column].to_numpy(), err_msg=column)
    assert pd.Timestamp("2019-03-31 23:00", tz="UTC") not in hourly.index
    assert pd.Timestamp("2019-03-31 22:00", tz="UTC") in hourly.index
    assert not (hourly.index.day_of_week == 5).any()


def test_real_eurusd_volume_sums_with_nonzero_volume(eurusd_m1: pd.DataFrame) -> None:
    bars = eurusd_m1.iloc[:20_000].copy()
    bars["volume"] = np.arange(len(bars), dtype="float64") % 7 + 1
    for timeframe, minutes in (("5m", 5), ("15m", 15), ("30m", 30), ("4h", 240)):
        out = resample_bars(bars, timeframe)
        key = bars.index.asi8 // (minutes * 60 * 10**9)
        expected = bars["volume"].groupby(key).sum().to_numpy()
        np.testing.assert_array_equal(out["volume"].to_numpy(), expected)
        assert out["volume"].sum() == bars["volume"].sum()


def test_real_eurusd_daily_has_five_bars_per_full_week(eurusd_m1: pd.DataFrame) -> None:
    daily = resample_bars(eurusd_m1, "1d")
    ny_open = daily.index.tz_convert("America/New_York")
    assert (ny_open.hour == 17).all() and (ny_open.minute == 0).all()
    assert not (ny_open.day_of_week.isin([4, 5])).any()
    shifted = (daily.index + pd.Timedelta(hours=3)).tz_localize(None)
    per_week = pd.Series(1, index=shifted).groupby(shifted.to_period("W-SAT")).sum()
    assert (per_week <= 5).all() and (per_week == 5).mean() > 0.9
    assert daily["high"].max() == eurusd_m1["high"].max()
    assert daily["open"].iloc[0] == eurusd_m1["open"].iloc[0]
    assert daily["close"].iloc[-1] == eurusd_m1["close"].iloc[-1]


def test_real_eurusd_gaps(eurusd_m1: pd.DataFrame) -> None:
    assert find_gaps(eurusd_m1, pd.Timedelta(days=3)).empty
    hour_gaps = find_gaps(eurusd_m1, pd.Timedelta(minutes=59))
    missing_hour = hour_gaps[hour_gaps["start"] == pd.Timestamp("2019-03-31 23:00", tz="UTC")]
    assert len(missing_hour) == 1
    assert missing_hour["end"].iloc[0] == pd.Timestamp("2019-04-01 00:00", tz="UTC")
    weekends = hour_gaps[hour_gaps["duration"] >= pd.Timedelta(hours=47)]
    assert len(weekends) >= 100
    assert (hour_gaps["end"] > hour_gaps["start"]).all()
