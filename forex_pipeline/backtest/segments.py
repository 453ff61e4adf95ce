"""Where in the out-of-sample period configurations are chosen and where they are confirmed.

The specification runs one backtest over the test segment and reports the best configuration's
score on it: the score of a maximum over hundreds of trials on the very data that chose it, which
is biased upwards (selection bias, Bailey & Lopez de Prado 2014). Here the test segment (already
after the validation embargo) is cut into parts, each simulated on its own (positions are closed at
the end of every part), and every part is named:

- holdout mode: `selection` = the first `selection_fraction` of the test rows, then an embargo of
  `horizon` rows (the target of a selection row never reaches into the holdout), then `holdout` =
  the rest. Bests are ranked on selection only and report their holdout figures.
- walk_forward mode: the test rows are cut into `folds` + 1 equal blocks B0..Bk. Fold i (1..k)
  selects on B0..B(i-1) (expanding; the last `horizon` rows before Bi are the embargo) and confirms
  on Bi: `selection_1`, `holdout_1`, ..., `selection_k`, `holdout_k`. Holdout mode is walk-forward
  with one fold and an uneven cut; the specification's single backtest is the union of both parts
  (segment `test`), still recorded by `run_inference_backtests`.

Positions are relative to the test rows (0 = first test row); every segment is contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

from forex_pipeline.settings import EvaluationSettings

SELECTION = "selection"
HOLDOUT = "holdout"
WHOLE_TEST = "test"


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


def walk_forward_folds(n_test: int, folds: int, embargo: int, min_rows: int = 2) -> tuple[Segment, ...]:
    """(selection_1, holdout_1, ..., selection_k, holdout_k): anchored, expanding selection windows.

    Blocks B_j = [floor(j n / (k + 1)), floor((j + 1) n / (k + 1))); fold i selects on
    [0, start(B_i) - embargo) and confirms on B_i, so every holdout is later than its selection.
    """
    if folds < 1:
        raise ValueError(f"folds must be >= 1, got {folds}")
    _check(n_test, embargo, min_rows)
    edges = [(j * n_test) // (folds + 1) for j in range(folds + 2)]
    out: list[Segment] = []
    for i in range(1, folds + 1):
        select_stop = edges[i] - embargo
        if select_stop < min_rows or edges[i + 1] - edges[i] < min_rows:
            raise ValueError(
                f"{folds} walk-forward folds over {n_test} test rows with an embargo of {embargo} leave fold {i} "
                f"with fewer than {min_rows} rows"
            )
        out.append(Segment(f"{SELECTION}_{i}", 0, select_stop))
        out.append(Segment(f"{HOLDOUT}_{i}", edges[i], edges[i + 1]))
    return tuple(out)


def evaluation_segments(n_test: int, evaluation: EvaluationSettings, horizon: int) -> tuple[Segment, ...]:
    """The segments settings.evaluation asks for, with an embargo of `horizon` rows."""
    if evaluation.mode == "holdout":
        return holdout_split(n_test, evaluation.selection_fraction, horizon)
    return walk_forward_folds(n_test, evaluation.folds, horizon)


def fold_of(segment_name: str) -> tuple[str, int]:
    """('selection' | 'holdout' | 'test', fold) of a segment name; holdout mode is fold 1."""
    base, _, number = segment_name.partition("_")
    if base not in (SELECTION, HOLDOUT, WHOLE_TEST) or (number and not number.isdigit()):
        raise ValueError(f"{segment_name!r} is not a segment name")
    return base, int(number) if number else 1
