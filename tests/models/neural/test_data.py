"""Return paths and windows of the neural families agree with features.targets and never look ahead."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.features.targets import (
    direct_multi_intervals,
    forward_log_return,
    interval_log_return,
)
from forex_pipeline.models.neural.data import (
    InputPipeline,
    chunk_bounds,
    chunk_returns,
    one_bar_returns,
    sub_interval_groups,
)


@pytest.mark.parametrize(("horizon", "points"), [(1, 24), (5, 24), (24, 24), (37, 8), (500, 16)])
def test_path_chunks_add_up_to_the_horizon_target(neural_matrix: FeatureMatrix, horizon: int, points: int) -> None:
    bounds = chunk_bounds(horizon, points)
    assert bounds[0] == 0 and bounds[-1] == horizon and len(bounds) - 1 == min(horizon, points)
    assert np.all(np.diff(bounds) >= 1)
    rows = np.arange(0, neural_matrix.n_rows - horizon, 7)
    chunks = chunk_returns(np.log(neural_matrix.close), rows, bounds)
    np.testing.assert_allclose(chunks.sum(axis=1), forward_log_return(neural_matrix.close, horizon)[rows],
                               rtol=1e-9, atol=1e-13)
    first = interval_log_return(neural_matrix.close, 0, int(bounds[1]))[rows]
    np.testing.assert_allclose(chunks[:, 0], first, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("horizon", [1, 2, 3, 7, 10, 24])
def test_sub_intervals_match_direct_multi_intervals_for_short_horizons(horizon: int) -> None:
    bounds = chunk_bounds(horizon, 24)
    groups = sub_interval_groups(bounds, 4)
    in_bars = [(int(bounds[a]), int(bounds[b])) for a, b in itertools.pairwise(groups)]
    assert in_bars == direct_multi_intervals(horizon, 4)


def test_chunks_past_the_end_are_refused() -> None:
    with pytest.raises(ValueError, match="beyond the matrix"):
        chunk_returns(np.zeros(10), np.array([8]), chunk_bounds(5, 5))


def test_windows_use_rows_up_to_t_only(neural_matrix: FeatureMatrix) -> None:
    n_features = neural_matrix.X.shape[1]
    pipeline = InputPipeline(context_length=6, mean=np.zeros(n_features), scale=np.ones(n_features), sigma=1.0)
    rows = np.array([0, 3, 100])
    padded, offset = pipeline.padded(neural_matrix, rows)
    returns = one_bar_returns(neural_matrix.close)
    for t in rows:
        window = padded[t - offset: t - offset + 6]
        known = np.arange(t - 5, t + 1)
        np.testing.assert_allclose(window[known >= 0, :n_features], neural_matrix.X[known[known >= 0]], rtol=1e-6)
        np.testing.assert_allclose(window[known >= 0, -1], returns[known[known >= 0]], rtol=1e-5, atol=1e-9)
        assert not window[known < 0].any()
