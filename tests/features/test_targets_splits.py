"""Targets over horizons and sub-intervals; chronological splits with embargo."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_pipeline.features.splits import split_rows
from forex_pipeline.features.targets import direct_multi_intervals, forward_log_return, interval_log_return


def test_forward_log_return_by_hand() -> None:
    close = np.array([1.0, 2.0, 4.0, 2.0])
    got = forward_log_return(close, 2)
    np.testing.assert_allclose(got[:2], [np.log(4.0), np.log(1.0)])
    assert np.isnan(got[2:]).all()
    assert np.isnan(forward_log_return(close, 10)).all()


def test_interval_log_return_by_hand() -> None:
    close = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    got = interval_log_return(close, 1, 3)
    np.testing.assert_allclose(got[:2], [np.log(8.0 / 2.0), np.log(16.0 / 4.0)])
    assert np.isnan(got[2:]).all()


def test_target_errors() -> None:
    with pytest.raises(ValueError, match="horizon"):
        forward_log_return(np.ones(5), 0)
    with pytest.raises(ValueError, match="start=3, end=2"):
        interval_log_return(np.ones(5), 3, 2)
    with pytest.raises(ValueError, match="positive"):
        forward_log_return(np.array([1.0, 0.0, 1.0]), 1)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 500), st.integers(1, 20))
def test_direct_multi_intervals_tile_the_horizon(horizon: int, max_steps: int) -> None:
    intervals = direct_multi_intervals(horizon, max_steps)
    assert len(intervals) == min(horizon, max_steps)
    assert intervals[0][0] == 0 and intervals[-1][1] == horizon
    assert all(a < b for a, b in intervals)
    assert all(intervals[i][1] == intervals[i + 1][0] for i in range(len(intervals) - 1))


def test_sub_interval_returns_sum_to_the_horizon_return() -> None:
    close = np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.01, 200)))
    parts = sum(interval_log_return(close, a, b) for a, b in direct_multi_intervals(10, 4))
    np.testing.assert_allclose(parts[:190], forward_log_return(close, 10)[:190], rtol=1e-9)


def test_split_rows_by_hand() -> None:
    splits = split_rows(100, 5, 0.6, 0.2)
    np.testing.assert_array_equal(splits.train, np.arange(0, 55))
    np.testing.assert_array_equal(splits.validation, np.arange(60, 75))
    np.testing.assert_array_equal(splits.test, np.arange(80, 100))


def test_split_rows_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"n_rows=20 with horizon=15.*train"):
        split_rows(20, 15, 0.6, 0.2)
    with pytest.raises(ValueError, match="below min_rows=30"):
        split_rows(100, 5, 0.6, 0.2, min_rows=30)
    with pytest.raises(ValueError, match="sum below 1"):
        split_rows(100, 5, 0.7, 0.3)
    with pytest.raises(ValueError, match="horizon"):
        split_rows(100, 0, 0.6, 0.2)
