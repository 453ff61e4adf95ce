"""Row and column hygiene after feature computation, and the scaler fitted on a training segment only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forex_pipeline.features.matrix import AR_LAG_PREFIX
from forex_pipeline.features.spec import Preprocessing

SCALER_KINDS: tuple[str, ...] = ("standard", "robust", "none")


class CoverageError(ValueError):
    """No feature of a feature set reaches min_coverage, or no row is left to build a matrix from."""


@dataclass(frozen=True)
class Preprocessed:
    """The clean feature frame and what was removed from it, and why."""

    frame: pd.DataFrame
    coverage: dict[str, float]
    dropped_features: dict[str, str]
    dropped_rows: dict[str, int] = field(default_factory=dict)


def _check_warmup(n_rows: int, warmup_bars: int, feature_set: str) -> None:
    """Refuse a warmup that would leave no rows."""
    if warmup_bars >= n_rows:
        raise CoverageError(
            f"feature set {feature_set}: preprocessing.warmup_bars={warmup_bars} leaves no rows of {n_rows}"
        )


def _finite_shares(values: np.ndarray) -> np.ndarray:
    """Share of finite values in each column of a (rows, features) array."""
    return np.isfinite(values).mean(axis=0) if len(values) else np.zeros(values.shape[1])


def feature_coverage(frame: pd.DataFrame) -> dict[str, float]:
    """Share of finite values per column."""
    shares = _finite_shares(frame.to_numpy(dtype=np.float64))
    return {str(name): float(share) for name, share in zip(frame.columns, shares)}


def coverage_drops(
    coverage: Mapping[str, float], min_coverage: float, feature_set: str, notes: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Features whose finite share is below `min_coverage` (ret_lag_* always stay), with the reason; an
    error if every requested (non ret_lag) feature would go.

    `notes` (feature -> why it may be missing, e.g. no volume data) is appended to drop reasons.
    """
    notes = notes or {}
    dropped: dict[str, str] = {}
    for name, share in coverage.items():
        if share < min_coverage and not name.startswith(AR_LAG_PREFIX):
            reason = f"coverage {share:.3f} < min_coverage {min_coverage}"
            dropped[name] = f"{reason} ({notes[name]})" if name in notes else reason
    requested = [name for name in coverage if not name.startswith(AR_LAG_PREFIX)]
    if len(dropped) == len(coverage) or (requested and all(name in dropped for name in requested)):
        raise CoverageError(
            f"feature set {feature_set}: no feature reaches preprocessing.min_coverage {min_coverage}: {dropped}"
        )
    return dropped


def select_by_coverage(
    frame: pd.DataFrame, min_coverage: float, feature_set: str, notes: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, dict[str, float], dict[str, str]]:
    """`frame` without the features coverage_drops names; returns (frame, coverage, dropped)."""
    coverage = feature_coverage(frame)
    dropped = coverage_drops(coverage, min_coverage, feature_set, notes)
    return frame[[c for c in frame.columns if c not in dropped]], coverage, dropped


def _complete_rows(values: np.ndarray, feature_set: str) -> tuple[np.ndarray, int, int]:
    """Mask of rows with every value finite, and how many leading and interior rows fail it."""
    complete = np.isfinite(values).all(axis=1)
    if not complete.any():
        raise CoverageError(f"feature set {feature_set}: every row has a missing feature value")
    leading = int(np.argmax(complete))
    return complete, leading, int((~complete[leading:]).sum())


def preprocess(
    frame: pd.DataFrame,
    preprocessing: Preprocessing,
    feature_set: str,
    notes: Mapping[str, str] | None = None,
    judged_rows: int | None = None,
) -> Preprocessed:
    """warmup_bars, then min_coverage, then drop rows still holding NaN or inf.

    The column set and the first row are decided on the first `judged_rows` rows only (the training
    period; None = every row): coverage is the finite share over rows [warmup_bars, judged_rows) and
    the first row is the first complete one among them, so data after the training period never
    changes which columns exist or where the matrix starts (issue 10, item 8). Later rows with a
    missing value in a kept column are dropped and counted in `nan_interior`.
    """
    warmup = preprocessing.warmup_bars
    _check_warmup(len(frame), warmup, feature_set)
    judged = len(frame) if judged_rows is None else int(judged_rows)
    if not warmup < judged <= len(frame):
        raise CoverageError(
            f"feature set {feature_set}: the training period holds {judged} rows, not more than "
            f"preprocessing.warmup_bars={warmup} (of {len(frame)} rows)"
        )
    names = [str(c) for c in frame.columns]
    columns = np.empty((len(names), len(frame) - warmup))
    for i in range(len(names)):
        columns[i] = frame.iloc[warmup:, i].to_numpy(dtype=np.float64)
    judged_part = columns[:, : judged - warmup]
    coverage = {name: float(share) for name, share in zip(names, _finite_shares(judged_part.T))}
    dropped = coverage_drops(coverage, preprocessing.min_coverage, feature_set, notes)
    kept = [i for i, name in enumerate(names) if name not in dropped]
    columns = columns[kept]
    _, leading, _ = _complete_rows(columns[:, : judged - warmup].T, feature_set)
    complete = np.isfinite(columns).all(axis=0)
    complete[:leading] = False
    interior = int((~complete[leading:]).sum())
    clean = pd.DataFrame(
        columns[:, complete].T, index=frame.index[warmup:][complete], columns=[names[i] for i in kept], copy=False
    )
    rows = {"warmup": warmup, "nan_leading": leading, "nan_interior": interior}
    return Preprocessed(frame=clean, coverage=coverage, dropped_features=dropped, dropped_rows=rows)


@dataclass(frozen=True)
class Scaler:
    """Column-wise (X - center) / scale with statistics from the training rows only."""

    kind: str
    center: np.ndarray
    scale: np.ndarray

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scale `X` (rows x the same columns the scaler was fitted on)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.center):
            raise ValueError(f"scaler ({self.kind}) was fitted on {len(self.center)} columns, got shape {X.shape}")
        return (X - self.center) / self.scale


def fit_scaler(X_train: np.ndarray, kind: str) -> Scaler:
    """A scaler of `kind` (standard, robust, none) fitted on the training rows; constant columns get scale 1."""
    if kind not in SCALER_KINDS:
        raise ValueError(f"preprocessing.scaling {kind!r} is not one of {', '.join(SCALER_KINDS)}")
    X_train = np.asarray(X_train, dtype=np.float64)
    if X_train.ndim != 2 or len(X_train) == 0:
        raise ValueError(f"fit_scaler needs a non-empty 2-D training matrix, got shape {X_train.shape}")
    if not np.isfinite(X_train).all():
        raise ValueError("fit_scaler: the training matrix holds NaN or inf")
    n_columns = X_train.shape[1]
    if kind == "standard":
        center, scale = X_train.mean(axis=0), X_train.std(axis=0)
    elif kind == "robust":
        q25, center, q75 = np.percentile(X_train, [25, 50, 75], axis=0)
        scale = q75 - q25
    else:
        center, scale = np.zeros(n_columns), np.ones(n_columns)
    scale = np.where(scale > 1e-12 * np.maximum(np.abs(center), 1.0), scale, 1.0)
    return Scaler(kind=kind, center=center, scale=scale)
