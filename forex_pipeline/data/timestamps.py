"""Timestamp parsers: raw timestamp columns -> UTC DatetimeIndex, NaT where a value is not a valid time.

Zoned values (`Z`, `+02:00`, tz-aware datetimes) are converted to UTC; naive ones are read as
wall-clock time in an explicit `source_tz`. Local times that are ambiguous or do not exist in
`source_tz` (daylight-saving changes) become NaT, so validation reports them under the `timestamp` rule.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

TimestampParser = Callable[[pd.Series], pd.DatetimeIndex]
HISTDATA_TZ = "Etc/GMT+5"
_ZONED = r"(?:Z|[+-]\d{2}:?\d{2})$"


def check_time_zone(name: str) -> str:
    """Return `name` if it is a known time zone (IANA name, e.g. America/New_York), else a clear error."""
    try:
        pd.Timestamp("2020-01-01").tz_localize(name)
    except (LookupError, ValueError, TypeError) as exc:
        raise ValueError(f"source_tz {name!r} is not a known time zone (use an IANA name like 'America/New_York')") from exc
    return name


def _localize(naive: pd.DatetimeIndex, source_tz: str) -> pd.DatetimeIndex:
    """Read naive wall-clock times in `source_tz`; ambiguous or non-existent local times become NaT."""
    if source_tz.upper() == "UTC":
        return naive.tz_localize("UTC")
    return naive.tz_localize(source_tz, ambiguous="NaT", nonexistent="NaT").tz_convert("UTC")


def _to_ns(parsed: pd.Series) -> pd.Series:
    """Nanosecond precision; a time outside what nanoseconds can hold (years before 1677 or after
    2262) becomes NaT, so validation reports it on its row instead of pandas raising for the file."""
    target = "datetime64[ns, UTC]" if isinstance(parsed.dtype, pd.DatetimeTZDtype) else "datetime64[ns]"
    try:
        return parsed.astype(target)
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        lo, hi = pd.Timestamp.min.as_unit("s"), pd.Timestamp.max.as_unit("s")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            lo, hi = lo.tz_localize("UTC"), hi.tz_localize("UTC")
        return parsed.where((parsed > lo) & (parsed < hi)).astype(target)


def _parse_strings(text: pd.Series, source_tz: str) -> pd.DatetimeIndex:
    """ISO 8601 first, any other pandas-readable form as a fallback; unparseable -> NaT."""
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    present = text.notna()
    zoned = present & text.str.contains(_ZONED, regex=True).fillna(False).astype(bool)
    for mask, aware in ((zoned, True), (present & ~zoned, False)):
        if not mask.any():
            continue
        part = text[mask]
        parsed = _to_ns(pd.to_datetime(part, format="ISO8601", utc=aware, errors="coerce"))
        failed = parsed.isna()
        if failed.any():
            parsed[failed] = _to_ns(pd.to_datetime(part[failed], format="mixed", utc=aware, errors="coerce"))
        index = pd.DatetimeIndex(parsed)
        if not aware:
            index = _localize(index, source_tz)
        result[mask] = index.as_unit("ns")
    return pd.DatetimeIndex(result)


def timestamp_parser(source_tz: str) -> TimestampParser:
    """A parser for generic timestamps: zoned -> UTC, naive -> read in `source_tz` then UTC."""

    def parse(column: pd.Series) -> pd.DatetimeIndex:
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            return pd.DatetimeIndex(column).tz_convert("UTC")
        if pd.api.types.is_datetime64_dtype(column.dtype):
            return _localize(pd.DatetimeIndex(column), source_tz)
        return _parse_strings(column.astype("str").where(column.notna()), source_tz)

    return parse


def histdata_parser(source_tz: str = HISTDATA_TZ) -> TimestampParser:
    """A parser for HistData stamps `YYYYMMDD HHMMSS`, read in `source_tz` (default fixed UTC-5)."""

    def parse(column: pd.Series) -> pd.DatetimeIndex:
        naive = pd.DatetimeIndex(pd.to_datetime(column.astype("str"), format="%Y%m%d %H%M%S", errors="coerce"))
        return _localize(naive, source_tz)

    return parse
