"""A kept model again: its equity curve for one inference configuration, and its backtests under another
inference grid, built with the same functions as the pipeline (features, splits, labels, backtests).

Inference never trains (docs/architecture.md): another inference grid only changes how the kept model's
member forecasts become trades, so it can be run on any kept model at any time. Its results are returned,
never recorded: the regime bests and the trial counts behind their deflated Sharpe ratios stay those of
the grids that were run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from forex_pipeline.errors import OperationError
from forex_pipeline.settings import InferenceGridSettings, Settings
from forex_pipeline.store import training_runs
from forex_pipeline.store.db import session_scope

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from forex_pipeline.backtest.inference_grid import InferenceConfig
    from forex_pipeline.features.matrix import FeatureMatrix
    from forex_pipeline.features.spec import FeatureSetSpec
    from forex_pipeline.models.base import TrainedModel
    from forex_pipeline.store.training_runs import TrainingRunRecord


@dataclass(frozen=True)
class KeptModel:
    """A kept model loaded from its verified file, with its feature matrix and test rows."""

    run: TrainingRunRecord
    model: TrainedModel
    matrix: FeatureMatrix
    feature_set: FeatureSetSpec
    test_rows: np.ndarray


def model_file_problem(run: TrainingRunRecord) -> str | None:
    """Why the run has no model file to load (None when it has one)."""
    if run.model_path is None:
        return f"run {run.id} has no model file (status {run.status})"
    if run.file_deleted_at is not None or not run.kept:
        return f"run {run.id}'s model file was deleted (not a regime best); re-submit its configuration to train it again"
    return None


def open_kept_model(
    engine: Engine, settings: Settings, artifacts_dir: Path, training_run_id: int, sample_dir: Path | None = None
) -> KeptModel:
    """Load a kept model (sha256 verified) and its feature matrix (rebuilt if missing); OperationError if it has none."""
    from forex_pipeline.features.spec import FeatureSetSpec
    from forex_pipeline.features.splits import split_rows
    from forex_pipeline.models.files import ModelFileError, resolve_model_path
    from forex_pipeline.models.registry import load_model
    from forex_pipeline.models.spec import ModelSpec
    from forex_pipeline.pipeline.artifacts import ensure_feature_matrix

    with session_scope(engine) as session:
        run = training_runs.get_training_run(session, training_run_id)
    if run is None:
        raise OperationError(f"training run {training_run_id} does not exist")
    problem = model_file_problem(run)
    if problem is not None:
        raise OperationError(problem)
    feature_set = FeatureSetSpec.model_validate(run.feature_set)
    model_spec = ModelSpec.model_validate(run.model_spec)
    try:
        model = load_model(resolve_model_path(str(run.model_path), artifacts_dir), model_spec, str(run.model_sha256), run.model_bytes)
    except ModelFileError as exc:
        raise OperationError(f"run {run.id}: {exc}") from exc
    matrix, _ = ensure_feature_matrix(feature_set, settings, artifacts_dir, sample_dir)
    splits = split_rows(matrix.n_rows, model_spec.horizon, settings.training.train_fraction, settings.training.validation_fraction)
    return KeptModel(run, model, matrix, feature_set, splits.test)


def kept_model_equity(kept: KeptModel, config: InferenceConfig, settings: Settings) -> pd.Series:
    """Equity (cumulative simple return after costs) of one inference configuration over the test segment."""
    from forex_pipeline.backtest.run import config_equity

    return config_equity(kept.model, kept.matrix, kept.test_rows, config, settings, kept.feature_set.symbol)


def rerun_inference(engine: Engine, kept: KeptModel, grid: InferenceGridSettings, settings: Settings) -> pd.DataFrame:
    """Every configuration of `grid` backtested on the kept model, per regime and segment (EVALUATION_COLUMNS),
    with the regimes labelled as at training (the same detector, fitted before the validation segment)."""
    import numpy as np

    from forex_pipeline.backtest.run import run_evaluation_backtests
    from forex_pipeline.features.splits import split_rows
    from forex_pipeline.regimes.labels import label_regimes
    from forex_pipeline.store.regime_definitions import active_regimes

    horizon = kept.model.model_spec.horizon
    splits = split_rows(kept.matrix.n_rows, horizon, settings.training.train_fraction, settings.training.validation_fraction)
    with session_scope(engine) as session:
        regimes = active_regimes(session, settings)
    labels = np.asarray(label_regimes(
        kept.matrix.close, regimes, timeframe=kept.matrix.base_timeframe, train_end=int(splits.validation[0]),
        timestamps=kept.matrix.timestamps,
    ))
    grid_settings = settings.model_copy(update={"inference_grid": grid})
    output = run_evaluation_backtests(kept.model, kept.matrix, kept.test_rows, labels[kept.test_rows], grid_settings, kept.feature_set.symbol)
    return output.frame
