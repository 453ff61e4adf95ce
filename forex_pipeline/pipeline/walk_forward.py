"""Walk-forward evaluation (settings `evaluation.mode: walk_forward`, docs/regimes.md): one model per
fold, each trained on every row before its fold (anchored at the first row, so the training window
grows fold by fold) and backtested on that fold only (backtest/segments.py `walk_forward_split`).

Fold 1 starts at the first test row, so its model is the configuration's own (trained on the usual
training and validation segments). The model of fold i > 1 is the same specification trained by the
same family code on the matrix cut just after fold i: its training and validation segments are the
rows before fold i's first row, in the configured train : validation proportion and with the usual
embargo of `horizon` rows before validation and before the fold. It never sees a row of fold i or
later as training data, exactly like the configuration's model and the test segment.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from forex_pipeline.backtest.segments import evaluation_segments, folds_of
from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models.base import TrainedModel
from forex_pipeline.models.context import TrainingContext
from forex_pipeline.models.spec import ModelSpec
from forex_pipeline.settings import Settings


def truncated(matrix: FeatureMatrix, stop: int) -> FeatureMatrix:
    """The matrix's first `stop` rows (same columns and metadata)."""
    if not 0 < stop <= matrix.n_rows:
        raise ValueError(f"cannot cut a matrix of {matrix.n_rows} rows at {stop}")
    return dataclasses.replace(matrix, timestamps=matrix.timestamps[:stop], X=matrix.X[:stop], close=matrix.close[:stop])


def fold_settings(settings: Settings, n_rows: int, fold_start: int) -> Settings:
    """Training settings whose split of `n_rows` rows puts the test segment exactly at `fold_start`
    (features/splits.py: test starts at floor(n (train + validation))), keeping the configured
    train : validation proportion."""
    if not 0 < fold_start < n_rows:
        raise ValueError(f"a fold starting at row {fold_start} leaves no rows before or in it (of {n_rows})")
    training = settings.training
    share = training.train_fraction / (training.train_fraction + training.validation_fraction)
    before = (fold_start + 0.5) / n_rows                  # floor(n_rows * before) == fold_start exactly
    fractions = {"train_fraction": before * share, "validation_fraction": before * (1.0 - share)}
    return settings.model_copy(update={"training": training.model_copy(update=fractions)})


def train_fold_models(
    model: TrainedModel,
    matrix: FeatureMatrix,
    spec: ModelSpec,
    test_rows: np.ndarray,
    context: TrainingContext,
) -> list[TrainedModel]:
    """The models of the walk-forward folds: `model` (the configuration's own) for fold 1, then one
    model per later fold trained on the rows before it (the matrix is cut after the fold, so the
    family's own split sees the fold as its test segment). Holdout mode: [model]."""
    from forex_pipeline.models.registry import train_model

    folds = folds_of(evaluation_segments(len(test_rows), context.settings.evaluation, spec.horizon))
    models = [model]
    for fold in folds[1:]:
        first, stop = int(test_rows[fold.start]), int(test_rows[fold.stop - 1]) + 1
        cut = truncated(matrix, stop)
        fold_context = dataclasses.replace(context, settings=fold_settings(context.settings, cut.n_rows, first))
        models.append(train_model(cut, spec, fold_context))
    return models
