"""Bars and feature matrices: built in one place, with the same checks, whoever asks for them.

The `raw_bars` and `bars` assets and the pipeline's own path to a feature matrix all go through
these functions, so a bar file is always validated and gap-checked the same way. A bar file that
breaks a validation rule stops the work that needs it (`BarsInvalidError`, naming the file and the
rule); gaps longer than `data.max_gap_minutes` are reported, never filled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forex_pipeline.data.bar_store import bars_path, raw_bars_path, read_bars, write_bars
from forex_pipeline.data.resample import find_gaps, resample_bars
from forex_pipeline.data.sources import load_raw_bars
from forex_pipeline.data.timeframes import timeframe_minutes
from forex_pipeline.data.validation import validate_bars
from forex_pipeline.errors import InputError
from forex_pipeline.features.build import (
    build_feature_matrix,
    columns_decided_with,
    feature_matrix_path,
    load_feature_matrix,
    save_feature_matrix,
    select_window,
)
from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.settings import Settings


class BarsInvalidError(InputError):
    """A stored bar file breaks a validation rule; the message names the file and the rule."""


@dataclass(frozen=True)
class BarsArtifact:
    """A bar file as written, with what its checks found."""

    bars: pd.DataFrame
    path: Path
    timeframe: str
    source: str
    source_rows: int
    validation_error: str | None
    gaps: pd.DataFrame
    gap_limit_minutes: int


def check_bars(bars: pd.DataFrame, path: Path, timeframe: str, gap_limit_minutes: int) -> tuple[str | None, pd.DataFrame]:
    """(the first validation rule the stored frame breaks under the strict policy or None, gaps over the limit)."""
    try:
        validate_bars(bars.reset_index(), source=str(path))
        error = None
    except ValueError as exc:
        error = str(exc)
    return error, find_gaps(bars, pd.Timedelta(minutes=gap_limit_minutes), timeframe=timeframe)


def build_raw_bars(symbol: str, settings: Settings, artifacts_dir: Path, sample_dir: Path | None) -> BarsArtifact:
    """Load the symbol's source (import, sample file or synthetic), write `raw_bars`, check it."""
    loaded = load_raw_bars(symbol, settings, sample_dir, artifacts_dir)
    path = raw_bars_path(artifacts_dir, symbol)
    write_bars(loaded.bars, path)
    limit = settings.data.max_gap_minutes
    error, gaps = check_bars(loaded.bars, path, loaded.timeframe, limit)
    return BarsArtifact(loaded.bars, path, loaded.timeframe, loaded.source, len(loaded.bars), error, gaps, limit)


def build_bars(symbol: str, timeframe: str, settings: Settings, artifacts_dir: Path, sample_dir: Path | None) -> BarsArtifact:
    """Resample the symbol's raw bars (built first when missing) to `timeframe`, write `bars`, check it."""
    raw_path = raw_bars_path(artifacts_dir, symbol)
    if raw_path.exists():
        raw, raw_timeframe, source = read_bars(raw_path), None, str(raw_path)
    else:
        artifact = build_raw_bars(symbol, settings, artifacts_dir, sample_dir)
        raw, raw_timeframe, source = artifact.bars, artifact.timeframe, artifact.source
    resampled = raw if raw_timeframe == timeframe else resample_bars(raw, timeframe)
    path = bars_path(artifacts_dir, symbol, timeframe)
    write_bars(resampled, path)
    limit = max(settings.data.max_gap_minutes, timeframe_minutes(timeframe))
    error, gaps = check_bars(resampled, path, timeframe, limit)
    return BarsArtifact(resampled, path, timeframe, source, len(raw), error, gaps, limit)


def ensure_bars(symbol: str, timeframe: str, settings: Settings, artifacts_dir: Path, sample_dir: Path | None) -> pd.DataFrame:
    """The `bars` frame for symbol x timeframe, built and checked when missing; invalid bars raise."""
    path = bars_path(artifacts_dir, symbol, timeframe)
    if path.exists():
        return read_bars(path)
    artifact = build_bars(symbol, timeframe, settings, artifacts_dir, sample_dir)
    if artifact.validation_error is not None:
        raise BarsInvalidError(artifact.validation_error)
    return artifact.bars


def ensure_feature_matrix(
    feature_set: FeatureSetSpec, settings: Settings, artifacts_dir: Path, sample_dir: Path | None
) -> tuple[FeatureMatrix, bool]:
    """The feature matrix of `feature_set`, computed once and reused by every model spec; (matrix, built now).

    Its columns are decided on the training period (`training.train_fraction`, features/build.py); a
    cached matrix whose columns were decided otherwise (built before that rule, or under another
    train_fraction) is rebuilt, so no column choice ever saw the test period.
    """
    path = feature_matrix_path(artifacts_dir, feature_set)
    train_fraction = settings.training.train_fraction
    if path.exists():
        cached = load_feature_matrix(path)
        if decided_on_training_period(cached, train_fraction):
            return cached, False
    base = ensure_bars(feature_set.symbol, feature_set.base_timeframe, settings, artifacts_dir, sample_dir)
    matrix = build_feature_matrix(
        feature_set, select_window(base, feature_set), ar_lags=settings.training.ar_lags, train_fraction=train_fraction
    )
    save_feature_matrix(matrix, path)
    return matrix, True


def decided_on_training_period(matrix: FeatureMatrix, train_fraction: float) -> bool:
    """True when the matrix's columns were decided on the training period of `train_fraction`."""
    return columns_decided_with(matrix.metadata, train_fraction)
