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
    is_fold,
    scored_segments,
    walk_forward_split,
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
@given(st.integers(10, 20000), st.floats(0.1, 0.9), st.integers(1, 8), st.integers(0, 200))
def test_walk_forward_folds_tile_the_selection_part_and_the_holdout_stays_later(
    n: int, fraction: float, folds: int, embargo: int
) -> None:
    try:
        segments = walk_forward_split(n, fraction, folds, embargo)
    except ValueError:
        return
    *fold_segments, holdout = segments
    selection, same_holdout = holdout_split(n, fraction, embargo)
    assert holdout == same_holdout and len(fold_segments) == folds
    assert [s.name for s in fold_segments] == [f"fold_{k}" for k in range(1, folds + 1)]
    assert fold_segments[0].start == selection.start and fold_segments[-1].stop == selection.stop
    assert all(a.stop == b.start for a, b in zip(fold_segments, fold_segments[1:]))   # consecutive, no gap
    assert max(s.size for s in fold_segments) - min(s.size for s in fold_segments) <= 1
    assert scored_segments(segments) == (("selection", tuple(range(folds))), ("holdout", (folds,)))


def test_settings_choose_the_segments() -> None:
    assert [s.name for s in evaluation_segments(1000, EvaluationSettings(), 5)] == ["selection", "holdout"]
    wf = evaluation_segments(1000, EvaluationSettings(mode="walk_forward", folds=2), 5)
    assert [s.name for s in wf] == ["fold_1", "fold_2", "holdout"]
    assert [is_fold(s) for s in wf] == [True, True, False] and not is_fold("folder_1")
    assert whole_test(50) == (Segment("test", 0, 50),)
    assert fold_of("holdout") == ("holdout", 1) and fold_of("fold_3") == ("fold", 3) and fold_of("selection") == ("selection", 1)
    with pytest.raises(ValueError):
        fold_of("fold")


def test_bad_splits_are_refused() -> None:
    with pytest.raises(ValueError, match="embargo"):
        holdout_split(20, 0.5, 30)
    with pytest.raises(ValueError, match="selection_fraction"):
        holdout_split(100, 1.0, 3)
    with pytest.raises(ValueError, match="fold"):
        walk_forward_split(30, 0.6, 8, 5)
    with pytest.raises(ValueError):
        Segment("x", 5, 5)
