"""Where in the out-of-sample period configurations are chosen and where they are confirmed.

The specification runs one backtest over the test segment and reports the best configuration's
score on it: the score of a maximum over hundreds of trials on the very data that chose it, which
is biased upwards (selection bias, Bailey & Lopez de Prado 2014). Here the test segment (already
after the validation embargo) is cut into parts, each simulated on its own (positions are closed at
the end of every part), and every part is named:

- holdout mode: `selection` = the first `selection_fraction` of the test rows, then an embargo of
  `horizon` rows (the target of a selection row never reaches into the holdout), then `holdout` =
  the rest. Bests are ranked on selection only and report their holdout figures.
- walk_forward mode: the same holdout; the selection part is cut into `folds` consecutive slices
  `fold_1` .. `fold_k`. Fold i is backtested by a model trained on every row before its first row
  (anchored: the training window always starts at the first row and grows; pipeline/walk_forward.py),
  and the folds' statistics are pooled into `selection`: the figures of the concatenated
  out-of-sample returns (sums, counts, trades and CSCV blocks add up; the drawdown is the largest
  within a fold). The holdout is backtested by the last fold's model. So both modes rank on
  `selection` and confirm on `holdout`; walk-forward's selection figures just come from K models,
  each scored only on data after its training. The specification's single backtest is the union of
  selection, embargo and holdout (segment `test`), still recorded by `run_inference_backtests`.

Positions are relative to the test rows (0 = first test row); every segment is contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

from forex_pipeline.settings import EvaluationSettings

SELECTION = "selection"
HOLDOUT = "holdout"
WHOLE_TEST = "test"
FOLD = "fold"


@dataclass(frozen=True)
class Segment:
    """Test-row positions [start, stop) simulated as one backtest, under `name`."""

    name: str
    start: int
    stop: int

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a segment needs a name")
        if not 0 <= self.start < self.stop:
            raise ValueError(f"segment {self.name!r} [{self.start}, {self.stop}) must be a non-empty range from 0")

    @property
    def size(self) -> int:
        return self.stop - self.start


def whole_test(n_test: int) -> tuple[Segment, ...]:
    """The specification's single backtest: one segment `test` over all test rows."""
    return (Segment(WHOLE_TEST, 0, n_test),)


def _check(n_test: int, embargo: int, min_rows: int) -> None:
    if embargo < 0:
        raise ValueError(f"embargo must be >= 0 rows, got {embargo}")
    if min_rows < 2:
        raise ValueError(f"min_rows must be >= 2, got {min_rows}")
    if n_test < 2 * min_rows + embargo:
        raise ValueError(
            f"{n_test} test rows cannot hold two segments of >= {min_rows} rows with an embargo of {embargo} rows"
        )


def holdout_split(n_test: int, selection_fraction: float, embargo: int, min_rows: int = 2) -> tuple[Segment, Segment]:
    """`selection` = [0, floor(n * f) - embargo), `holdout` = [floor(n * f), n).

    The embargo is taken from the end of the selection part, as between train, validation and test
    (features/splits.py): for every selection row t, t + embargo < first holdout row.
    """
    if not 0 < selection_fraction < 1:
        raise ValueError(f"selection_fraction must lie in (0, 1), got {selection_fraction}")
    _check(n_test, embargo, min_rows)
    boundary = int(n_test * selection_fraction)
    selection = (0, boundary - embargo)
    holdout = (boundary, n_test)
    if selection[1] - selection[0] < min_rows or holdout[1] - holdout[0] < min_rows:
        raise ValueError(
            f"selection_fraction={selection_fraction} of {n_test} test rows with an embargo of {embargo} leaves "
            f"selection {selection} or holdout {holdout} below {min_rows} rows"
        )
    return Segment(SELECTION, *selection), Segment(HOLDOUT, *holdout)


def walk_forward_split(
    n_test: int, selection_fraction: float, folds: int, embargo: int, min_rows: int = 2
) -> tuple[Segment, ...]:
    """(fold_1, ..., fold_k, holdout): `holdout_split`'s selection part cut into `folds` consecutive
    slices [floor(j s / k), floor((j + 1) s / k)) of its s rows; the holdout as in holdout mode.

    The folds tile the selection part, so pooled they are exactly the rows holdout mode selects on.
    """
    if folds < 1:
        raise ValueError(f"folds must be >= 1, got {folds}")
    selection, holdout = holdout_split(n_test, selection_fraction, embargo, min_rows)
    edges = [selection.start + (j * selection.size) // folds for j in range(folds + 1)]
    if any(b - a < min_rows for a, b in zip(edges, edges[1:])):
        raise ValueError(
            f"{folds} walk-forward folds over the {selection.size} selection rows of {n_test} test rows leave a fold "
            f"with fewer than {min_rows} rows"
        )
    return (*(Segment(f"{FOLD}_{k}", edges[k - 1], edges[k]) for k in range(1, folds + 1)), holdout)


def evaluation_segments(n_test: int, evaluation: EvaluationSettings, horizon: int) -> tuple[Segment, ...]:
    """The segments settings.evaluation asks for, with an embargo of `horizon` rows."""
    if evaluation.mode == "holdout":
        return holdout_split(n_test, evaluation.selection_fraction, horizon)
    return walk_forward_split(n_test, evaluation.selection_fraction, evaluation.folds, horizon)


def is_fold(segment: Segment | str) -> bool:
    """True for a walk-forward fold (`fold_k`), whose figures are pooled into `selection`."""
    name = segment.name if isinstance(segment, Segment) else segment
    base, _, number = name.partition("_")
    return base == FOLD and number.isdigit()


def folds_of(segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
    return tuple(s for s in segments if is_fold(s))


def scored_segments(segments: tuple[Segment, ...]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The segments figures are reported on, in order, each with the positions in `segments` it
    pools: the walk-forward folds pool into one `selection` (where the first fold stands); every
    other segment is its own."""
    out: list[tuple[str, tuple[int, ...]]] = []
    folds = tuple(i for i, s in enumerate(segments) if is_fold(s))
    for i, segment in enumerate(segments):
        if not is_fold(segment):
            out.append((segment.name, (i,)))
        elif i == folds[0]:
            out.append((SELECTION, folds))
    names = [name for name, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"segments {[s.name for s in segments]} report under duplicate names {names}")
    return tuple(out)


def fold_of(segment_name: str) -> tuple[str, int]:
    """('selection' | 'holdout' | 'test' | 'fold', number) of a segment name; holdout mode is fold 1."""
    base, _, number = segment_name.partition("_")
    if base not in (SELECTION, HOLDOUT, WHOLE_TEST, FOLD) or (number and not number.isdigit()) or (base == FOLD and not number):
        raise ValueError(f"{segment_name!r} is not a segment name")
    return base, int(number) if number else 1
