"""Load bar files into validated bar frames: generic OHLCV CSV (.csv, .csv.gz) or Parquet, and HistData M1.

Generic OHLCV: one timestamp column (timestamp, time, datetime or date; any case), open, high, low,
close and an optional volume (missing -> 0.0). Timestamps that carry a zone (`Z`, `+02:00`) are
converted to UTC; naive ones are read as wall-clock time in `source_tz`, which the caller states.

HistData.com "Generic ASCII" M1 export: semicolon-separated, no header,
`YYYYMMDD HHMMSS;open;high;low;close;volume`. HistData documents its stamps as EST without daylight
saving, i.e. a fixed UTC-5, so they are converted with +5 h. (SOURCES.md of our sample data found
that real HistData files drift from that documentation by 1 h in some weeks; for those files pass
`source_tz`, e.g. "America/New_York", to read the stamps as that zone's wall-clock time instead.)
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from forex_pipeline.data.timeframes import TIMEFRAME_MINUTES
from forex_pipeline.data.timestamps import (
    HISTDATA_TZ,
    check_time_zone,
    histdata_parser,
    timestamp_parser,
)
from forex_pipeline.data.validation import ValidationReport, validate_bars
from forex_pipeline.errors import InputError
from forex_pipeline.settings import ValidationSettings

FileFormat = Literal["auto", "ohlcv", "histdata"]
HISTDATA_COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")
_HISTDATA_LINE = re.compile(r"^\d{8} \d{6};")


@dataclass(frozen=True)
class LoadResult:
    """A validated bar frame and the validation report of the file it came from."""

    bars: pd.DataFrame
    report: ValidationReport


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    with path.open("rb") as handle:
        return handle.read(4) == b"PAR1"


def _first_line(path: Path) -> str:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        return handle.readline().strip()


def sniff_format(path: Path) -> Literal["ohlcv", "histdata"]:
    """'histdata' when the first line looks like `YYYYMMDD HHMMSS;...`, else 'ohlcv'."""
    if _is_parquet(path):
        return "ohlcv"
    return "histdata" if _HISTDATA_LINE.match(_first_line(path)) else "ohlcv"


def _sniff_separator(header: str) -> str:
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    return max(counts, key=counts.__getitem__) if max(counts.values()) else ","


def _read_csv(path: Path) -> pd.DataFrame:
    sep = _sniff_separator(_first_line(path))
    return pd.read_csv(path, sep=sep, skipinitialspace=True)


def _read_histdata(path: Path) -> pd.DataFrame:
    return pd.read_csv(
        path,
        sep=";",
        header=None,
        names=list(HISTDATA_COLUMNS),
        dtype={"timestamp": "str"},
        index_col=False,
    )


def read_raw_table(path: Path, kind: Literal["ohlcv", "histdata"]) -> pd.DataFrame:
    """The file's rows as read, one row per data row, timestamps still as in the file."""
    if kind == "histdata":
        return _read_histdata(path)
    raw = pd.read_parquet(path) if _is_parquet(path) else _read_csv(path)
    if isinstance(raw.index, pd.DatetimeIndex):
        raw = raw.rename_axis(raw.index.name or "timestamp").reset_index()
    return raw


class BarFileError(InputError, FileNotFoundError):
    """A bar file is missing, not a regular file, or cannot be read; the message names it."""


def load_bars(
    path: Path | str,
    *,
    format: FileFormat = "auto",
    source_tz: str | None = None,
    validation: ValidationSettings | None = None,
) -> LoadResult:
    """Read, validate and convert one bar file to a UTC bar frame (see the module doc for formats)."""
    path = Path(path)
    if path.is_dir():
        raise BarFileError(f"bar file {path} is a directory, not a file")
    if not path.exists():
        raise BarFileError(f"bar file {path} does not exist")
    if not path.is_file():
        raise BarFileError(f"bar file {path} is not a regular file (a device, pipe or socket)")
    if format not in ("auto", "ohlcv", "histdata"):
        raise ValueError(f"format {format!r} is not one of auto, ohlcv, histdata")
    if source_tz is not None:
        check_time_zone(source_tz)
    kind: str = format
    try:
        kind = sniff_format(path) if format == "auto" else format
        raw = read_raw_table(path, kind)
    except (EOFError, zlib.error) as exc:  # a truncated or corrupt gzip (click would print only "Aborted.")
        raise BarFileError(f"{path}: the compressed file is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, pa.ArrowException, OSError, ValueError) as exc:
        raise BarFileError(f"{path}: cannot be read as a bar file (format {kind}): {' '.join(str(exc).split())[:300]}") from None
    parser = histdata_parser(source_tz or HISTDATA_TZ) if kind == "histdata" else timestamp_parser(source_tz or "UTC")
    bars, report = validate_bars(raw, source=str(path), parse_timestamps=parser, validation=validation)
    return LoadResult(bars=bars, report=report)


TAIL_BYTES = 64 * 1024
GZIP_CHUNK_BYTES = 1 << 20


def _edge_lines(path: Path) -> tuple[str, str, str]:
    """The first, second and last non-empty lines of a text file (gzip read through once, in chunks;
    a plain file is read at its two ends only)."""
    if path.suffix.lower() == ".gz":
        head, tail = b"", b""
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read(GZIP_CHUNK_BYTES):
                if len(head) < TAIL_BYTES:
                    head += chunk[:TAIL_BYTES]
                tail = (tail + chunk)[-TAIL_BYTES:]
    else:
        with path.open("rb") as handle:
            head = handle.read(TAIL_BYTES)
            handle.seek(max(0, path.stat().st_size - TAIL_BYTES))
            tail = handle.read()
    first = [line for line in head.decode("utf-8", errors="replace").splitlines() if line.strip()]
    last = [line for line in tail.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if len(first) < 2 or not last:
        raise BarFileError(f"bar file {path} holds no data rows")
    return first[0], first[1], last[-1]


def bar_file_span(path: Path | str, *, source_tz: str | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """UTC open times of the first and last bars of a bar file, without loading its bars: Parquet
    statistics, or the first and last rows of a CSV / HistData file parsed as load_bars parses them.

    Rows are assumed in time order (load_bars' `order` rule); the two edge rows are returned sorted.
    """
    from io import StringIO

    from forex_pipeline.data.bar_store import parquet_time_span
    from forex_pipeline.data.validation import canonical_columns

    path = Path(path)
    if not path.is_file():
        raise BarFileError(f"bar file {path} does not exist or is not a regular file")
    try:
        if _is_parquet(path):
            return parquet_time_span(path)
        header, first, last = _edge_lines(path)
        if _HISTDATA_LINE.match(header):
            rows = pd.read_csv(StringIO(f"{header}\n{last}\n"), sep=";", header=None, names=list(HISTDATA_COLUMNS), dtype={"timestamp": "str"}, index_col=False)
            stamps = histdata_parser(source_tz or HISTDATA_TZ)(rows["timestamp"])
        else:
            rows = pd.read_csv(StringIO(f"{header}\n{first}\n{last}\n"), sep=_sniff_separator(header), skipinitialspace=True)
            stamps = timestamp_parser(source_tz or "UTC")(canonical_columns(rows, str(path))["timestamp"])
    except (EOFError, zlib.error, OSError, ValueError, pa.ArrowException, pd.errors.ParserError) as exc:
        raise BarFileError(f"{path}: cannot read the first and last bars ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})") from None
    if stamps.isna().any():
        raise BarFileError(f"{path}: the first or last row's timestamp is not a valid time")
    return stamps.min(), stamps.max()


def infer_timeframe(bars: pd.DataFrame) -> str:
    """The timeframe whose length is the most common spacing between consecutive bars."""
    if len(bars) < 2:
        raise ValueError(f"cannot infer a timeframe from {len(bars)} bar(s); need at least 2")
    steps = np.diff(bars.index.as_unit("ns").asi8)
    modal_minutes = pd.Series(steps).value_counts(sort=True).index[0] / 60e9
    for name, minutes in TIMEFRAME_MINUTES.items():
        if minutes == modal_minutes:
            return name
    raise ValueError(
        f"the most common bar spacing is {modal_minutes:g} minutes, which is no timeframe "
        f"({', '.join(f'{k}={v}' for k, v in TIMEFRAME_MINUTES.items())} minutes)"
    )
