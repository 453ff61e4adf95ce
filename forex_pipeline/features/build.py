"""Feature set spec + base bars -> FeatureMatrix, and its Parquet file (written atomically)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from forex_pipeline.data.schema import INDEX_NAME, assert_bar_frame
from forex_pipeline.data.timeframes import TIMEFRAME_MINUTES, timeframe_delta
from forex_pipeline.features.additional import VOLUME_FAMILIES, ar_lag_features, compute_additional
from forex_pipeline.features.indicators import compute_indicators, day_boundary_for
from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.features.preprocessing import preprocess
from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.io import atomic_write

MIN_SPAN_SHARE = 0.5
MIN_ROWS_AFTER_WARMUP = 50
PARQUET_METADATA_KEY = b"forex_pipeline.feature_matrix"
FORMAT_VERSION = 1
RESERVED_COLUMNS = ("timestamp", "close")


class WindowError(ValueError):
    """The bars do not cover a feature set's window well enough to build it."""


@dataclass(frozen=True)
class RawFeatures:
    """Every computed feature before any row or column is dropped, with notes on why some may be missing."""

    frame: pd.DataFrame
    notes: dict[str, str]
    zero_volume_share: float


def in_window(bars: pd.DataFrame, spec: FeatureSetSpec) -> pd.DataFrame:
    """The bars opened at or after as_of - days_history that have closed by as_of (no coverage checks)."""
    assert_bar_frame(bars)
    as_of = pd.Timestamp(spec.as_of)
    start = as_of - pd.Timedelta(days=spec.days_history)
    return bars.loc[(bars.index >= start) & (bars.index + timeframe_delta(spec.base_timeframe) <= as_of)]


def select_window(bars: pd.DataFrame, spec: FeatureSetSpec) -> pd.DataFrame:
    """The bars of the `days_history` days ending at `as_of` that have closed by `as_of`.

    Refuses a window whose bars span less than half the requested days, or with fewer than
    warmup_bars + MIN_ROWS_AFTER_WARMUP rows.
    """
    window = in_window(bars, spec)
    as_of = pd.Timestamp(spec.as_of)
    requested = pd.Timedelta(days=spec.days_history)
    bar_length = timeframe_delta(spec.base_timeframe)
    available = f"bars cover {bars.index[0]} to {bars.index[-1]}" if len(bars) else "no bars"
    where = f"feature set {spec.partition_key}: days_history={spec.days_history} ending at as_of={as_of}"
    if window.empty:
        raise WindowError(f"{where} holds no {spec.base_timeframe} bars ({available})")
    span = window.index[-1] + bar_length - window.index[0]
    if span < MIN_SPAN_SHARE * requested:
        raise WindowError(
            f"{where}: its bars span only {span} of the requested {requested} (< {MIN_SPAN_SHARE:.0%}; {available})"
        )
    needed = spec.preprocessing.warmup_bars + MIN_ROWS_AFTER_WARMUP
    if len(window) < needed:
        raise WindowError(
            f"{where} holds {len(window)} {spec.base_timeframe} bars, fewer than "
            f"preprocessing.warmup_bars={spec.preprocessing.warmup_bars} + {MIN_ROWS_AFTER_WARMUP}"
        )
    return window


def _check_base_bars(bars: pd.DataFrame, spec: FeatureSetSpec) -> None:
    """base_bars must be a bar frame at the spec's base timeframe with finite positive prices."""
    assert_bar_frame(bars, "base_bars")
    if len(bars) < 2:
        raise ValueError(f"feature set {spec.partition_key}: base_bars needs at least 2 bars, got {len(bars)}")
    prices = bars[["open", "high", "low", "close"]].to_numpy()
    if not (np.isfinite(prices) & (prices > 0)).all():
        raise ValueError(f"feature set {spec.partition_key}: base_bars prices must be finite and positive")
    if not np.isfinite(bars["volume"].to_numpy()).all():
        raise ValueError(f"feature set {spec.partition_key}: base_bars volume must be finite")
    bar_length = timeframe_delta(spec.base_timeframe)
    shortest = bars.index.to_series().diff().min()
    tolerance = pd.Timedelta(hours=1) if spec.base_timeframe == "1d" else pd.Timedelta(0)
    if shortest < bar_length - tolerance:
        raise ValueError(
            f"feature set {spec.partition_key}: base_bars has bars {shortest} apart, finer than "
            f"base_timeframe {spec.base_timeframe}"
        )


def compute_raw_features(spec: FeatureSetSpec, base_bars: pd.DataFrame, ar_lags: int = 5) -> RawFeatures:
    """Indicators, additional families and ret_lag_1..ar_lags on every base row, before preprocessing."""
    _check_base_bars(base_bars, spec)
    frames = [compute_indicators(base_bars, spec.base_timeframe, spec.indicator_timeframes)]
    families = compute_additional(base_bars, spec.base_timeframe, spec.additional_features, spec.preprocessing)
    frames.extend(families.values())
    lags = ar_lag_features(base_bars["close"].to_numpy(dtype=np.float64), ar_lags)
    lags.index = base_bars.index
    frames.append(lags)
    frame = pd.concat(frames, axis=1)
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise ValueError(f"feature set {spec.partition_key}: duplicate feature names {duplicated}")
    zero_share = float((base_bars["volume"].to_numpy() <= 0).mean())
    notes: dict[str, str] = {}
    if zero_share > 0:
        note = f"volume is zero in {zero_share:.1%} of bars; volume features are undefined without volume"
        for family in VOLUME_FAMILIES:
            for column in families.get(family, pd.DataFrame()).columns:
                notes[column] = note
    return RawFeatures(frame=frame, notes=notes, zero_volume_share=zero_share)


STAND_IN_MIN_BARS = 300
STAND_IN_COARSE_BARS = 3


def stand_in_bars(spec: FeatureSetSpec) -> pd.DataFrame:
    """A small deterministic random walk at the spec's base timeframe, long enough for 3 bars of its
    coarsest indicator timeframe: what `spec_feature_names` runs the feature code on."""
    step = timeframe_delta(spec.base_timeframe)
    timeframes = [tf for tfs in spec.indicator_timeframes.values() for tf in tfs] + [spec.base_timeframe]
    coarsest = timeframe_delta(max(timeframes, key=TIMEFRAME_MINUTES.__getitem__))
    n = max(STAND_IN_MIN_BARS, int(STAND_IN_COARSE_BARS * coarsest / step) + 1)
    index = pd.date_range("2020-01-06", periods=n, freq=step, tz="UTC", name=INDEX_NAME)
    close = 1.1 * np.exp(np.cumsum(np.random.default_rng(0).normal(0.0, 1e-4, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    return pd.DataFrame(
        {"open": open_, "high": np.maximum(open_, close) * 1.0001, "low": np.minimum(open_, close) * 0.9999,
         "close": close, "volume": np.full(n, 10.0)},
        index=index,
    )


def spec_feature_names(spec: FeatureSetSpec, ar_lags: int) -> tuple[str, ...]:
    """Every feature column `spec` computes, before min_coverage drops any: the feature code run on
    stand-in bars, so the names need no real data and cannot drift from what training computes.
    An upper bound of a built matrix's columns (volume features drop out on zero-volume data)."""
    return tuple(str(name) for name in compute_raw_features(spec, stand_in_bars(spec), ar_lags).frame.columns)


DEFAULT_TRAIN_FRACTION = 0.6   # settings.training.train_fraction's default; callers pass the setting


def training_period_end(first_bar: pd.Timestamp, as_of: pd.Timestamp, train_fraction: float) -> pd.Timestamp:
    """End of the period the columns are decided on: first bar + train_fraction x (as_of - first bar).

    Depends on the spec (as_of) and the earliest data only, so data after it never moves it; it
    approximates the training rows of the chronological split (features/splits.py), which are the
    first train_fraction of the rows (the same share when bars are evenly spaced).
    """
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    return first_bar + (as_of - first_bar) * train_fraction


def build_feature_matrix(
    spec: FeatureSetSpec, base_bars: pd.DataFrame, ar_lags: int = 5, train_fraction: float = DEFAULT_TRAIN_FRACTION
) -> FeatureMatrix:
    """Compute and clean the features of `spec` on the part of `base_bars` inside the spec's window.

    Bars outside [as_of - days_history, as_of] are ignored, so a spec hash always means the same data;
    call select_window first to have a too-short window refused with a clear error. Warm-up and
    min_coverage are judged on the training period only (`training_period_end`, recorded in
    metadata["column_decision"]): data after it never changes the column set or the first row.
    """
    base_bars = in_window(base_bars, spec)
    raw = compute_raw_features(spec, base_bars, ar_lags)
    judged_until = training_period_end(base_bars.index[0], pd.Timestamp(spec.as_of), train_fraction) if len(base_bars) else None
    judged_rows = int(base_bars.index.searchsorted(judged_until, side="left")) if judged_until is not None else 0
    clean = preprocess(raw.frame, spec.preprocessing, spec.partition_key, raw.notes, judged_rows=judged_rows)
    frame = clean.frame
    metadata: dict[str, Any] = {
        "feature_set": spec.partition_key,
        "spec": spec.canonical(),
        "rows": len(frame),
        "n_features": frame.shape[1],
        "source_rows": len(base_bars),
        "time_range": {"start": frame.index[0].isoformat(), "end": frame.index[-1].isoformat()},
        "coverage": clean.coverage,
        "dropped_features": clean.dropped_features,
        "dropped_rows": clean.dropped_rows,
        "column_decision": {
            "train_fraction": train_fraction,
            "judged_until": judged_until.isoformat() if judged_until is not None else None,
            "judged_rows": judged_rows,
            "rule": "warm-up and min_coverage judged on rows before judged_until only",
        },
        "ar_lags": ar_lags,
        "zero_volume_share": raw.zero_volume_share,
        "day_boundary": day_boundary_for(spec.base_timeframe),
    }
    return FeatureMatrix(
        feature_set_hash=spec.hash,
        timestamps=pd.DatetimeIndex(frame.index, name=INDEX_NAME),
        X=np.ascontiguousarray(frame.to_numpy(dtype=np.float64)),
        feature_names=tuple(str(c) for c in frame.columns),
        close=base_bars["close"].loc[frame.index].to_numpy(dtype=np.float64).copy(),
        base_timeframe=spec.base_timeframe,
        symbol=spec.symbol,
        metadata=metadata,
    )


def feature_matrix_path(artifacts_dir: Path | str, feature_set: FeatureSetSpec) -> Path:
    """artifacts/features/<feature_set key>.parquet."""
    return Path(artifacts_dir) / "features" / f"{feature_set.partition_key}.parquet"


def columns_decided_with(metadata: dict[str, Any] | None, train_fraction: float) -> bool:
    """True when a matrix's columns were decided on the training period of `train_fraction` (its
    metadata["column_decision"]); a matrix decided otherwise is rebuilt before use."""
    decision = (metadata or {}).get("column_decision") or {}
    recorded = decision.get("train_fraction")
    return recorded is not None and abs(float(recorded) - float(train_fraction)) < 1e-12


def read_feature_header(path: Path | str) -> dict[str, Any] | None:
    """The header (feature names, metadata) of a saved feature matrix, read from the Parquet schema
    alone; None when the file is missing or is not a feature matrix of this format."""
    try:
        raw = (pq.read_schema(path).metadata or {}).get(PARQUET_METADATA_KEY)
    except (OSError, pa.ArrowException):
        return None
    if raw is None:
        return None
    header = json.loads(raw)
    return header if header.get("format_version") == FORMAT_VERSION else None


def _header(fm: FeatureMatrix) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "feature_set_hash": fm.feature_set_hash,
        "base_timeframe": fm.base_timeframe,
        "symbol": fm.symbol,
        "feature_names": list(fm.feature_names),
        "metadata": fm.metadata,
    }


def save_feature_matrix(fm: FeatureMatrix, path: Path | str) -> Path:
    """Write `fm` to a Parquet file (temporary name, then rename); the header JSON is schema metadata."""
    path = Path(path)
    clashes = sorted(set(fm.feature_names) & set(RESERVED_COLUMNS))
    if clashes:
        raise ValueError(f"feature names {clashes} clash with the reserved columns {list(RESERVED_COLUMNS)}")
    columns = {
        "timestamp": pa.array(fm.timestamps.as_unit("ns"), type=pa.timestamp("ns", tz="UTC")),
        "close": pa.array(fm.close, type=pa.float64()),
    }
    for i, name in enumerate(fm.feature_names):
        columns[name] = pa.array(fm.X[:, i], type=pa.float64())
    table = pa.table(columns)
    header = json.dumps(_header(fm), sort_keys=True, allow_nan=True).encode()
    table = table.replace_schema_metadata({PARQUET_METADATA_KEY: header})
    return atomic_write(path, lambda temp: pq.write_table(table, temp))


def load_feature_matrix(path: Path | str) -> FeatureMatrix:
    """Read a feature matrix written by save_feature_matrix; a clear error for a missing or foreign file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"feature matrix file {path} does not exist")
    table = pq.read_table(path)
    raw_header = (table.schema.metadata or {}).get(PARQUET_METADATA_KEY)
    if raw_header is None:
        raise ValueError(f"{path} is not a feature matrix file (no {PARQUET_METADATA_KEY.decode()} metadata)")
    header = json.loads(raw_header)
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: feature matrix format_version {header.get('format_version')} is not {FORMAT_VERSION}")
    names = tuple(header["feature_names"])
    missing = [n for n in (*RESERVED_COLUMNS, *names) if n not in table.column_names]
    if missing:
        raise ValueError(f"{path}: feature matrix file lacks column(s) {missing}")
    timestamps = pd.DatetimeIndex(table.column("timestamp").to_pandas(), name=INDEX_NAME).tz_convert("UTC")
    n = len(timestamps)
    X = np.empty((n, len(names)), dtype=np.float64)
    for i, name in enumerate(names):
        X[:, i] = table.column(name).to_numpy()
    return FeatureMatrix(
        feature_set_hash=header["feature_set_hash"],
        timestamps=timestamps,
        X=X,
        feature_names=names,
        close=table.column("close").to_numpy().astype(np.float64, copy=True),
        base_timeframe=header["base_timeframe"],
        symbol=header["symbol"],
        metadata=header["metadata"],
    )
