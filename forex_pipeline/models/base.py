"""The contract between training and the internal loop.

A trained model has K members. For each prediction method (direct, recursive, direct_multi) it
forecasts the forward log return over `horizon` bars, one row per member. The ensemble methods need
no training at inference: `weighted` weights come from validation skill and `stacking` is a linear
meta-model fitted on validation member predictions, both stored in `Combiners` at training time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models.spec import ModelSpec

PREDICTION_METHODS: tuple[str, ...] = ("direct", "recursive", "direct_multi")
ENSEMBLE_METHODS: tuple[str, ...] = ("mean", "weighted", "stacking")


@dataclass(frozen=True)
class Combiners:
    """How the K member forecasts of one prediction method become one forecast."""

    weights: np.ndarray              # (K,) >= 0, sums to 1: the `weighted` ensemble
    stacking_intercept: float        # the `stacking` meta-model: intercept + coef @ members
    stacking_coef: np.ndarray        # (K,)


@runtime_checkable
class TrainedModel(Protocol):
    model_spec: ModelSpec
    feature_set_hash: str
    combiners: dict[str, Combiners]  # prediction method -> combiners

    @property
    def n_members(self) -> int: ...

    def predict_members(self, matrix: FeatureMatrix, rows: np.ndarray, method: str) -> np.ndarray:
        """(K, len(rows)) forecasts of the forward `horizon`-bar log return at each row in `rows`,
        using only data up to and including that row."""
        ...
