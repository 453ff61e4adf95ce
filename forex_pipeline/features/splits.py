"""Chronological train / validation / test rows with an embargo of `horizon` rows between segments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Splits:
    """Row indices (int64, increasing) of each segment."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def split_rows(
    n_rows: int, horizon: int, train_fraction: float, validation_fraction: float, min_rows: int = 1
) -> Splits:
    """Split rows 0..n_rows-1 chronologically so that no train (validation) row's target reaches the next segment.

    Validation starts at floor(n * train_fraction) and test at floor(n * (train_fraction + validation_fraction));
    the last `horizon` rows before each boundary are left out (embargo), so for every training row t,
    t + horizon < first validation row, and likewise validation -> test. Test rows run to the end.
    """
    bounds = split_bounds(n_rows, horizon, train_fraction, validation_fraction, min_rows)
    return Splits(**{name: np.arange(start, stop, dtype=np.int64) for name, (start, stop) in bounds.items()})


def split_bounds(
    n_rows: int, horizon: int, train_fraction: float, validation_fraction: float, min_rows: int = 1
) -> dict[str, tuple[int, int]]:
    """The (start, stop) rows of split_rows' train, validation and test segments, with its checks and errors,
    without building the row indices (a plan checks thousands of windows of millions of rows)."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if not 0 < train_fraction < 1 or not 0 < validation_fraction < 1 or train_fraction + validation_fraction >= 1:
        raise ValueError(
            f"train_fraction={train_fraction} and validation_fraction={validation_fraction} must be in (0, 1) "
            "with a sum below 1"
        )
    if min_rows < 1:
        raise ValueError(f"min_rows must be >= 1, got {min_rows}")
    validation_start = int(np.floor(n_rows * train_fraction))
    test_start = int(np.floor(n_rows * (train_fraction + validation_fraction)))
    bounds = {
        "train": (0, max(validation_start - horizon, 0)),
        "validation": (validation_start, max(test_start - horizon, validation_start)),
        "test": (test_start, max(n_rows, test_start)),
    }
    small = {name: stop - start for name, (start, stop) in bounds.items() if stop - start < min_rows}
    if small:
        raise ValueError(
            f"split of n_rows={n_rows} with horizon={horizon} (embargo {horizon} rows), train_fraction={train_fraction}, "
            f"validation_fraction={validation_fraction} leaves segment(s) {small} below min_rows={min_rows}"
        )
    return bounds
