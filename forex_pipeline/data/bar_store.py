"""Bar files on disk: Parquet under the artifacts directory, written atomically.

Layout (symbols normalised, so `EUR/USD` is stored as EURUSD and never becomes a path):
  artifacts/imports/SYMBOL.parquet            bars imported by `forex-pipeline data import` / `synth`
  artifacts/imports/SYMBOL.regimes.parquet    ground-truth regime labels of synthetic imports
  artifacts/bars/raw/SYMBOL.parquet           validated raw bars of a symbol (the raw_bars asset)
  artifacts/bars/SYMBOL/<timeframe>.parquet   resampled bars (the bars asset)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forex_pipeline.data.schema import BAR_COLUMNS, INDEX_NAME, assert_bar_frame
from forex_pipeline.data.timeframes import validate_timeframe
from forex_pipeline.io import atomic_write
from forex_pipeline.settings import normalize_symbol

REGIME_COLUMN = "regime"


def imports_dir(artifacts_dir: Path | str) -> Path:
    return Path(artifacts_dir) / "imports"


def import_path(artifacts_dir: Path | str, symbol: str) -> Path:
    """artifacts/imports/SYMBOL.parquet: where `data import` and `data synth` put a symbol's bars."""
    return imports_dir(artifacts_dir) / f"{normalize_symbol(symbol)}.parquet"


def regimes_path(artifacts_dir: Path | str, symbol: str) -> Path:
    """artifacts/imports/SYMBOL.regimes.parquet: ground-truth regime labels of a synthetic import."""
    return imports_dir(artifacts_dir) / f"{normalize_symbol(symbol)}.regimes.parquet"


def raw_bars_path(artifacts_dir: Path | str, symbol: str) -> Path:
    """artifacts/bars/raw/SYMBOL.parquet."""
    return Path(artifacts_dir) / "bars" / "raw" / f"{normalize_symbol(symbol)}.parquet"


def bars_path(artifacts_dir: Path | str, symbol: str, timeframe: str) -> Path:
    """artifacts/bars/SYMBOL/<timeframe>.parquet."""
    return Path(artifacts_dir) / "bars" / normalize_symbol(symbol) / f"{validate_timeframe(timeframe)}.parquet"


def write_frame_atomic(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write `frame` as Parquet to a temporary name beside `path`, then rename it into place."""
    return atomic_write(path, lambda temp: frame.to_parquet(temp, engine="pyarrow", index=True))


def write_bars(bars: pd.DataFrame, path: Path | str) -> Path:
    """Check the bar-frame contract and write `bars` atomically; readers never see a partial file."""
    assert_bar_frame(bars, name=str(path))
    return write_frame_atomic(bars, path)


def read_bars(path: Path | str) -> pd.DataFrame:
    """Read a bar file written by write_bars and check it is still a bar frame."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"bar file {path} does not exist")
    bars = pd.read_parquet(path, engine="pyarrow")
    bars.index = pd.DatetimeIndex(bars.index).as_unit("ns")
    bars = bars[list(BAR_COLUMNS)] if set(BAR_COLUMNS) <= set(bars.columns) else bars
    assert_bar_frame(bars, name=str(path))
    return bars.astype("float64")


def parquet_time_span(path: Path | str, column: str = INDEX_NAME) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last UTC time of `column` in a Parquet file, from its row-group statistics (no
    bar is read; the column alone is read when a writer left no statistics)."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    if column not in names:
        raise ValueError(f"{path}: no {column!r} column in the Parquet file, found {names}")
    position = parquet.metadata.schema.names.index(column) if column in parquet.metadata.schema.names else None
    lows, highs = [], []
    for group in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(group).column(position).statistics if position is not None else None
        if stats is None or not stats.has_min_max:
            lows, highs = [], []
            break
        lows.append(stats.min)
        highs.append(stats.max)
    if not lows:
        stamps = pd.DatetimeIndex(parquet.read(columns=[column]).column(column).to_pandas())
        if stamps.empty:
            raise ValueError(f"{path}: the Parquet file holds no rows")
        lows, highs = [stamps.min()], [stamps.max()]
    return _utc(min(lows)), _utc(max(highs))


def _utc(value: object) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def write_regimes(labels: pd.Series, path: Path | str) -> Path:
    """Write per-bar regime labels (a Series indexed like the bars) atomically."""
    frame = labels.rename(REGIME_COLUMN).to_frame()
    frame.index = pd.DatetimeIndex(frame.index).rename(INDEX_NAME)
    return write_frame_atomic(frame, path)


def read_regimes(path: Path | str) -> pd.Series:
    """Read regime labels written by write_regimes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"regime label file {path} does not exist")
    frame = pd.read_parquet(path, engine="pyarrow")
    if REGIME_COLUMN not in frame.columns:
        raise ValueError(f"{path}: no {REGIME_COLUMN!r} column, found {list(frame.columns)}")
    labels = frame[REGIME_COLUMN].astype("str")
    labels.index = pd.DatetimeIndex(labels.index).as_unit("ns")
    return labels
