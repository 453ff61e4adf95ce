"""Resample bar frames to a coarser timeframe, and list the gaps in a bar frame.

Buckets are left-closed and labelled by their open time: a 1h bar labelled 10:00 aggregates the
source bars opened in [10:00, 11:00). open=first, high=max, low=min, close=last, volume=sum. A
bucket without source bars yields no bar: weekends and gaps stay gaps.

Intraday buckets (5m to 4h) are aligned to 00:00 UTC (4h bars open at 00, 04, 08, ... UTC).
Daily bars follow the FX convention by default (`day_boundary="new_york_close"`): a trading day
runs from 17:00 New York to 17:00 New York the next day (21:00 or 22:00 UTC, DST-aware) and is
labelled with its 17:00 New York open, so the Sunday-evening open belongs to Monday's bar and a
week has five daily bars. `day_boundary="utc_midnight"` gives calendar days in UTC instead.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from forex_pipeline.data.loaders import infer_timeframe
from forex_pipeline.data.schema import BAR_COLUMNS, INDEX_NAME, assert_bar_frame
from forex_pipeline.data.timeframes import timeframe_delta, timeframe_minutes

DayBoundary = Literal["new_york_close", "utc_midnight"]
NEW_YORK = "America/New_York"
NEW_YORK_CLOSE_HOUR = 17


def bucket_starts(index: pd.DatetimeIndex, timeframe: str, day_boundary: DayBoundary = "new_york_close") -> np.ndarray:
    """The open time (int64 ns, UTC) of the `timeframe` bucket holding each timestamp of `index`."""
    if day_boundary not in ("new_york_close", "utc_midnight"):
        raise ValueError(f"day_boundary {day_boundary!r} is not one of new_york_close, utc_midnight")
    if timeframe == "1d" and day_boundary == "new_york_close":
        return _new_york_day_starts(index)
    ns = index.as_unit("ns").asi8
    step = timeframe_delta(timeframe).value
    return ns - np.mod(ns, step)


def _new_york_day_starts(index: pd.DatetimeIndex) -> np.ndarray:
    """Start of the FX trading day (17:00 New York, in UTC) holding each timestamp."""
    shift = pd.Timedelta(hours=24 - NEW_YORK_CLOSE_HOUR)
    local = index.tz_convert(NEW_YORK).tz_localize(None) + shift
    days, inverse = np.unique(local.floor("D").as_unit("ns").asi8, return_inverse=True)
    opens_local = pd.DatetimeIndex(days).as_unit("ns") - shift
    opens_utc = opens_local.tz_localize(NEW_YORK).tz_convert("UTC").as_unit("ns").asi8
    return opens_utc[inverse]


def resample_bars(
    bars: pd.DataFrame,
    timeframe: str,
    *,
    day_boundary: DayBoundary = "new_york_close",
    source_timeframe: str | None = None,
) -> pd.DataFrame:
    """Aggregate `bars` into `timeframe` bars (no bar for an empty bucket); refuse a finer target."""
    assert_bar_frame(bars)
    target_minutes = timeframe_minutes(timeframe)
    if bars.empty:
        return bars.copy()
    source = source_timeframe or (infer_timeframe(bars) if len(bars) > 1 else timeframe)
    source_minutes = timeframe_minutes(source)
    if target_minutes < source_minutes:
        raise ValueError(f"cannot resample {source} bars to the finer timeframe {timeframe}; only to coarser ones")
    starts = bucket_starts(bars.index, timeframe, day_boundary)
    _check_alignment(bars.index, starts, source, timeframe, day_boundary)
    if source_minutes == target_minutes:
        return bars.copy()
    return aggregate_buckets(bars, starts)


def _check_alignment(
    index: pd.DatetimeIndex, starts: np.ndarray, source: str, timeframe: str, day_boundary: DayBoundary
) -> None:
    """Every source bar must lie inside one target bucket (e.g. 4h bars cannot make New York days)."""
    last_instant = index + (timeframe_delta(source) - pd.Timedelta(1, "ns"))
    straddling = np.flatnonzero(bucket_starts(last_instant, timeframe, day_boundary) != starts)
    if len(straddling):
        first = index[straddling[0]]
        raise ValueError(
            f"{source} bar at {first} straddles a {timeframe} bucket boundary ({day_boundary}); "
            f"{len(straddling)} source bars do not fit inside one {timeframe} bar"
        )


def aggregate_buckets(bars: pd.DataFrame, starts: np.ndarray) -> pd.DataFrame:
    """OHLCV of consecutive runs of equal bucket starts (bars sorted, so each bucket is one run)."""
    boundaries = np.flatnonzero(np.diff(starts)) + 1
    first = np.concatenate([[0], boundaries])
    last = np.concatenate([boundaries - 1, [len(starts) - 1]])
    columns = {name: bars[name].to_numpy(dtype="float64") for name in BAR_COLUMNS}
    data = {
        "open": columns["open"][first],
        "high": np.maximum.reduceat(columns["high"], first),
        "low": np.minimum.reduceat(columns["low"], first),
        "close": columns["close"][last],
        "volume": np.add.reduceat(columns["volume"], first),
    }
    index = pd.DatetimeIndex(starts[first], tz="UTC", name=INDEX_NAME).as_unit("ns")
    return pd.DataFrame(data, index=index)


def find_gaps(bars: pd.DataFrame, max_gap: pd.Timedelta, timeframe: str | None = None) -> pd.DataFrame:
    """Spans with no bar longer than `max_gap`: start = end of the bar before, end = open of the bar after."""
    columns = {"start": pd.Series(dtype="datetime64[ns, UTC]"), "end": pd.Series(dtype="datetime64[ns, UTC]"),
               "duration": pd.Series(dtype="timedelta64[ns]")}
    if len(bars) < 2:
        return pd.DataFrame(columns)
    bar_length = timeframe_delta(timeframe or infer_timeframe(bars))
    index = bars.index.as_unit("ns")
    ends = index[:-1] + bar_length
    opens = index[1:]
    durations = opens - ends
    long = np.asarray(durations > pd.Timedelta(max_gap))
    return pd.DataFrame(
        {"start": ends[long], "end": opens[long], "duration": durations[long]}
    ).reset_index(drop=True)
