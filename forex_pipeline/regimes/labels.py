"""Per-bar regime labels: the one entry point (`label_regimes`) and the tools to audit labels.

Two detectors, chosen by `regimes.detector`:
- `rules` (rules.py): causal features over spans of time and the YAML/database rules, first
  match wins, `unclassified` when none matches.
- `hmm` (hmm.py, the default): a Gaussian HMM of deseasonalised bar returns, fitted on the training
  segment only and filtered forward; it names the four built-in regimes (HMM_REGIMES).
  Custom regimes stay rules: every definition that is not one of HMM_REGIMES (the database rows
  of `regimes add`, or extra YAML entries) is matched first, in definition order, and the HMM
  labels the bars no rule regime claimed. A built-in regime that is disabled is never emitted
  (its bars are `unclassified`); with the HMM the YAML rules of the built-ins are not used.

Measured on both synthetic generators (benchmarks/bench_regimes.py; docs/regimes.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from forex_pipeline.regimes.hmm import HMM_REGIMES, hmm_regime_probabilities
from forex_pipeline.regimes.rules import (  # noqa: F401  (re-exported: the labeller's public surface)
    REGIME_UNCLASSIFIED,
    apply_rules,
    checked_close,
    rule_features,
    rule_labels,
    span_bars,
)

if TYPE_CHECKING:
    import pandas as pd

    from forex_pipeline.settings import RegimeSettings


def label_regimes(
    close: np.ndarray,
    settings: RegimeSettings,
    *,
    timeframe: str,
    train_end: int | None = None,
    timestamps: pd.DatetimeIndex | None = None,
) -> np.ndarray:
    """Regime name per bar of `close` (base bars of `timeframe`) under `settings` (a RegimeSettings).

    train_end: bars [0, train_end) are the training segment the HMM is fitted on (the pipeline's
    `len(splits.train)`); None fits it on every bar (fine for a chart, in-sample for scoring).
    timestamps: bar open times (UTC); they let both detectors divide out the intraday volatility
    profile. The label of bar t >= train_end depends on bars up to t only.
    """
    if not settings.definitions:
        raise ValueError("settings.regimes.definitions is empty: no regime can be labelled")
    close = checked_close(close)
    if settings.detector == "rules":
        return rule_labels(close, settings, settings.definitions, timeframe=timeframe, timestamps=timestamps)
    probabilities, _ = hmm_regime_probabilities(
        close, settings.hmm, timeframe=timeframe, train_end=train_end, timestamps=timestamps
    )
    labels = hmm_labels_from_probabilities(probabilities, [name for name in HMM_REGIMES if name in settings.definitions])
    rule_regimes = {name: d for name, d in settings.definitions.items() if name not in HMM_REGIMES}
    if rule_regimes:
        ruled = rule_labels(close, settings, rule_regimes, timeframe=timeframe, timestamps=timestamps)
        claimed = ruled != REGIME_UNCLASSIFIED
        labels[claimed] = ruled[claimed]
    return labels


def hmm_labels_from_probabilities(probabilities: np.ndarray, allowed: list[str]) -> np.ndarray:
    """Most probable of HMM_REGIMES per bar; 'unclassified' where it is not in `allowed` or unknown (NaN)."""
    labels = np.full(probabilities.shape[0], REGIME_UNCLASSIFIED, dtype=object)
    known = np.isfinite(probabilities).all(axis=1)
    best = np.asarray(HMM_REGIMES, dtype=object)[np.argmax(np.nan_to_num(probabilities, nan=-1.0), axis=1)]
    keep = known & np.isin(best, np.asarray(allowed, dtype=object))
    labels[keep] = best[keep]
    return labels


def majority_labels(fine_labels: pd.Series, bar_timestamps: pd.DatetimeIndex) -> np.ndarray:
    """Per coarse bar, the most frequent fine label among fine bars opened in [bar open, next bar open).

    Turns the synthetic generators' M1 ground truth into one label per base bar, and 1h labels into
    a label per 4h bar for the cross-timeframe agreement. Bars with no fine label get None. Ties go
    to the alphabetically first label (deterministic).
    """
    import pandas as pd

    if not isinstance(fine_labels.index, pd.DatetimeIndex) or not isinstance(bar_timestamps, pd.DatetimeIndex):
        raise TypeError("majority_labels needs DatetimeIndex-ed fine labels and bar timestamps")
    fine_ns = fine_labels.index.as_unit("ns").asi8
    bars_ns = bar_timestamps.as_unit("ns").asi8
    owner = np.searchsorted(bars_ns, fine_ns, side="right") - 1
    keep = owner >= 0
    counts = pd.crosstab(owner[keep], fine_labels.to_numpy()[keep])
    counts = counts[sorted(counts.columns)]
    out = np.full(len(bar_timestamps), None, dtype=object)
    out[counts.index.to_numpy()] = counts.columns.to_numpy()[counts.to_numpy().argmax(axis=1)]
    return out


def regime_accuracy(predicted: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Share of bars where the predicted label equals the true one ('unclassified' counts as wrong),
    over bars with a true label (and `valid`, e.g. the test segment)."""
    predicted = np.asarray(predicted, dtype=object)
    truth = np.asarray(truth, dtype=object)
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted {predicted.shape} and truth {truth.shape} must have the same shape")
    mask = np.array([t is not None for t in truth], dtype=bool)
    if valid is not None:
        mask &= np.asarray(valid, dtype=bool)
    if not mask.any():
        raise ValueError("no bar has both a true label and a valid prediction")
    return float((predicted[mask] == truth[mask]).mean())


def confusion_matrix(predicted: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> pd.DataFrame:
    """Bar counts, true regime (rows) x predicted regime (columns), over bars with a true label (and `valid`)."""
    import pandas as pd

    predicted = np.asarray(predicted, dtype=object)
    truth = np.asarray(truth, dtype=object)
    mask = np.array([t is not None for t in truth], dtype=bool)
    if valid is not None:
        mask &= np.asarray(valid, dtype=bool)
    return pd.crosstab(
        pd.Series(truth[mask], name="true"), pd.Series(predicted[mask], name="predicted"), dropna=False
    )


def timeframe_agreement(coarse_labels: pd.Series, fine_labels: pd.Series) -> float:
    """Share of coarse bars whose label equals the majority label of the finer bars inside them
    (e.g. 4h labels against the majority of their 1h labels); bars without fine labels are skipped."""
    majority = majority_labels(fine_labels, coarse_labels.index)
    has = np.array([m is not None for m in majority], dtype=bool)
    if not has.any():
        raise ValueError("no coarse bar contains a fine bar")
    return float((coarse_labels.to_numpy(dtype=object)[has] == majority[has]).mean())
