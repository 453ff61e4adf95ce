"""Warmup, coverage selection, NaN rows and the training-only scaler."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.features.preprocessing import (
    CoverageError,
    fit_scaler,
    preprocess,
    select_by_coverage,
)
from forex_pipeline.features.spec import Preprocessing


def _frame() -> pd.DataFrame:
    n = 100
    sparse = np.full(n, np.nan)
    sparse[::2] = 1.0
    early_nan = np.arange(n, dtype=float)
    early_nan[:30] = np.nan
    return pd.DataFrame({
        "full": np.linspace(0, 1, n),
        "sparse": sparse,
        "early": early_nan,
        "ret_lag_1": np.where(np.arange(n) < 1, np.nan, 0.1),
    })


def test_preprocess_warmup_coverage_and_nan_rows() -> None:
    got = preprocess(_frame(), Preprocessing(warmup_bars=10, min_coverage=0.6), "FS-1", {"sparse": "why it is sparse"})
    assert list(got.frame.columns) == ["full", "early", "ret_lag_1"]
    assert got.coverage["sparse"] == pytest.approx(0.5)
    assert got.coverage["early"] == pytest.approx(70 / 90)
    assert got.dropped_features == {"sparse": "coverage 0.500 < min_coverage 0.6 (why it is sparse)"}
    assert got.dropped_rows == {"warmup": 10, "nan_leading": 20, "nan_interior": 0}
    assert len(got.frame) == 70 and got.frame.index[0] == 30


def test_infinities_count_as_missing_and_interior_rows_are_reported() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, np.inf, 4.0, 5.0], "b": [1.0, np.nan, 3.0, 4.0, 5.0]})
    got = preprocess(frame, Preprocessing(warmup_bars=0, min_coverage=0.5), "FS-2")
    assert got.dropped_rows == {"warmup": 0, "nan_leading": 0, "nan_interior": 2}
    assert np.isfinite(got.frame.to_numpy()).all() and list(got.frame.index) == [0, 3, 4]


def test_coverage_failure_names_the_feature_set() -> None:
    frame = pd.DataFrame({"a": [np.nan] * 9 + [1.0], "ret_lag_1": [0.1] * 10})
    with pytest.raises(CoverageError, match="feature set EURUSD-1h-d30-abc.*min_coverage"):
        select_by_coverage(frame, 0.9, "EURUSD-1h-d30-abc")


def test_ret_lags_are_never_dropped_for_coverage() -> None:
    frame = pd.DataFrame({"a": np.ones(10), "ret_lag_1": [np.nan] * 8 + [0.1, 0.2]})
    kept, _, dropped = select_by_coverage(frame, 0.9, "FS")
    assert list(kept.columns) == ["a", "ret_lag_1"] and not dropped


def test_warmup_longer_than_data_is_an_error() -> None:
    with pytest.raises(CoverageError, match="warmup_bars=200"):
        preprocess(_frame(), Preprocessing(warmup_bars=200), "FS-3")


def test_standard_scaler_uses_training_rows_only() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(5.0, 2.0, (500, 3))
    later = rng.normal(50.0, 9.0, (100, 3))
    scaler = fit_scaler(train, "standard")
    scaled = scaler.transform(train)
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(scaled.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(scaler.transform(later), (later - train.mean(0)) / train.std(0), rtol=1e-12)


def test_robust_scaler_and_none_and_constant_columns() -> None:
    train = np.column_stack([np.arange(1.0, 101.0), np.full(100, 3.0)])
    robust = fit_scaler(train, "robust").transform(train)
    assert robust[:, 0][np.argsort(train[:, 0])][49] == pytest.approx((50.0 - 50.5) / 49.5)
    np.testing.assert_array_equal(robust[:, 1], 0.0)
    np.testing.assert_array_equal(fit_scaler(train, "none").transform(train), train)


def test_scaler_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="scaling 'minmax'"):
        fit_scaler(np.ones((3, 2)), "minmax")
    with pytest.raises(ValueError, match="NaN"):
        fit_scaler(np.array([[1.0], [np.nan]]), "standard")
    with pytest.raises(ValueError, match="fitted on 2 columns"):
        fit_scaler(np.ones((3, 2)), "standard").transform(np.ones((3, 3)))


def test_no_complete_row_is_an_error() -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan, 1.0, np.nan], "b": [np.nan, 1.0, np.nan, 1.0]})
    with pytest.raises(CoverageError, match="feature set FS-4: every row has a missing feature value"):
        preprocess(frame, Preprocessing(warmup_bars=0, min_coverage=0.5), "FS-4")
