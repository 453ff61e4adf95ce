"""Selection / holdout and walk-forward segments of the test rows (backtest/segments.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_pipeline.backtest.segments import (
    Segment,
    evaluation_segments,
    fold_of,
    holdout_split,
    walk_forward_folds,
    whole_test,
)
from forex_pipeline.settings import EvaluationSettings


@settings(max_examples=200, deadline=None)
@given(st.integers(10, 20000), st.floats(0.1, 0.9), st.integers(0, 300))
def test_holdout_is_later_than_selection_by_the_embargo(n: int, fraction: float, embargo: int) -> None:
    try:
        selection, holdout = holdout_split(n, fraction, embargo)
    except ValueError:
        return
    assert selection.start == 0 and holdout.stop == n
    assert selection.stop - 1 + embargo < holdout.start          # no selection target reaches the holdout
    assert holdout.start == int(n * fraction)
    assert selection.size >= 2 and holdout.size >= 2


@settings(max_examples=200, deadline=None)
@given(st.integers(10, 20000), st.integers(1, 8), st.integers(0, 200))
def test_walk_forward_folds_expand_and_confirm_later(n: int, folds: int, embargo: int) -> None:
    try:
        segments = walk_forward_folds(n, folds, embargo)
    except ValueError:
        return
    assert len(segments) == 2 * folds
    holdouts = segments[1::2]
    for i, (selection, holdout) in enumerate(zip(segments[::2], holdouts), start=1):
        assert selection.name == f"selection_{i}" and holdout.name == f"holdout_{i}"
        assert selection.start == 0 and selection.stop - 1 + embargo < holdout.start
    assert holdouts[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(holdouts, holdouts[1:]))   # holdouts tile the end


def test_settings_choose_the_segments() -> None:
    assert [s.name for s in evaluation_segments(1000, EvaluationSettings(), 5)] == ["selection", "holdout"]
    wf = evaluation_segments(1000, EvaluationSettings(mode="walk_forward", folds=2), 5)
    assert [s.name for s in wf] == ["selection_1", "holdout_1", "selection_2", "holdout_2"]
    assert whole_test(50) == (Segment("test", 0, 50),)
    assert fold_of("holdout_3") == ("holdout", 3) and fold_of("selection") == ("selection", 1)


def test_bad_splits_are_refused() -> None:
    with pytest.raises(ValueError, match="embargo"):
        holdout_split(20, 0.5, 30)
    with pytest.raises(ValueError, match="selection_fraction"):
        holdout_split(100, 1.0, 3)
    with pytest.raises(ValueError, match="fold"):
        walk_forward_folds(30, 8, 5)
    with pytest.raises(ValueError):
        Segment("x", 5, 5)
