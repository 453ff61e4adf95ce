"""One model configuration end to end: the external loop (features, training) and the internal loop
(every inference configuration backtested out of sample), then the keep-or-delete transaction.

Plain Python: the Dagster assets, the batch job and the benchmarks' plain loop all call
`run_configuration`, so what Dagster runs is exactly what the library does.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine

from forex_pipeline.data.bar_store import bars_path, read_bars, write_bars
from forex_pipeline.data.resample import resample_bars
from forex_pipeline.data.sources import load_raw_bars
from forex_pipeline.features.build import build_feature_matrix, load_feature_matrix, save_feature_matrix, select_window
from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.features.splits import split_rows
from forex_pipeline.keep_or_delete import RecordResult, record_failure, record_outcome
from forex_pipeline.models.spec import ModelSpec, model_config_hash
from forex_pipeline.settings import Settings
from forex_pipeline.store.db import session_scope
from forex_pipeline.store.spec_files import write_spec


@dataclass(frozen=True)
class ConfigurationOutcome:
    """What happened to one model configuration; `status` is completed, failed or skipped."""

    model_config_hash: str
    partition_key: str
    status: str
    training_seconds: float = 0.0
    backtest_seconds: float = 0.0
    model_bytes: int = 0
    kept: bool = False
    error: str | None = None
    record: RecordResult | None = None
    timings: dict[str, float] = field(default_factory=dict)


def feature_matrix_path(artifacts_dir: Path, feature_set: FeatureSetSpec) -> Path:
    return Path(artifacts_dir) / "features" / f"{feature_set.partition_key}.parquet"


def ensure_bars(symbol: str, timeframe: str, settings: Settings, artifacts_dir: Path, sample_dir: Path | None) -> pd.DataFrame:
    """The `bars` file for symbol x timeframe, built from the symbol's raw source when missing."""
    path = bars_path(artifacts_dir, symbol, timeframe)
    if path.exists():
        return read_bars(path)
    loaded = load_raw_bars(symbol, settings, sample_dir, artifacts_dir)
    resampled = loaded.bars if loaded.timeframe == timeframe else resample_bars(loaded.bars, timeframe)
    write_bars(resampled, path)
    return resampled


def ensure_feature_matrix(
    feature_set: FeatureSetSpec, settings: Settings, artifacts_dir: Path, sample_dir: Path | None
) -> tuple[FeatureMatrix, bool]:
    """The feature matrix of `feature_set`, computed once and reused by every model spec; (matrix, built now)."""
    path = feature_matrix_path(artifacts_dir, feature_set)
    if path.exists():
        return load_feature_matrix(path), False
    base = ensure_bars(feature_set.symbol, feature_set.base_timeframe, settings, artifacts_dir, sample_dir)
    matrix = build_feature_matrix(feature_set, select_window(base, feature_set), ar_lags=settings.training.ar_lags)
    save_feature_matrix(matrix, path)
    return matrix, True


def claim_run(session, feature_set, model_spec, queue_id, dagster_run_id, settings):  # noqa: ANN001, ANN201
    """Atomically take a configuration for training: (True, run) if this worker trains it now.

    A completed run is never claimed again; a `running` one only when its worker has been silent
    for twice the per-model time limit (it died). Parallel workers therefore never train the same
    configuration twice.
    """
    from datetime import timedelta

    from sqlalchemy import or_, update

    from forex_pipeline.store import repository
    from forex_pipeline.store.tables import TrainingRun, utcnow

    identity = repository.training_run_fields(feature_set, model_spec)
    repository.upsert_training_run(session, identity, queue_id=queue_id)
    stale = utcnow() - timedelta(seconds=2 * settings.training.max_seconds_per_model)
    result = session.execute(
        update(TrainingRun)
        .where(
            TrainingRun.model_config_hash == identity["model_config_hash"],
            or_(
                TrainingRun.status.in_(("pending", "failed")),
                (TrainingRun.status == "running") & (TrainingRun.started_at < stale),
            ),
        )
        .values(status="running", started_at=utcnow(), dagster_run_id=dagster_run_id, queue_id=queue_id, error_message=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1, repository.get_training_run_by_hash(session, identity["model_config_hash"])


def run_configuration(
    feature_set: FeatureSetSpec,
    model_spec: ModelSpec,
    *,
    settings: Settings,
    engine: Engine,
    artifacts_dir: Path,
    sample_dir: Path | None = None,
    queue_id: int | None = None,
    dagster_run_id: str | None = None,
    seed: int = 0,
) -> ConfigurationOutcome:
    """Train, backtest and record one configuration; a completed one is skipped, a failure is recorded."""
    from forex_pipeline.backtest.run import run_inference_backtests
    from forex_pipeline.models.registry import TrainingContext, file_suffix, save_model, train_model
    from forex_pipeline.store.model_files import model_file_path
    from forex_pipeline.regime_catalog import active_regimes
    from forex_pipeline.regimes.labels import label_regimes

    config_hash = model_config_hash(feature_set.hash, model_spec.hash)
    key = f"{feature_set.partition_key}|{model_spec.partition_key}"
    with session_scope(engine) as session:
        claimed, existing = claim_run(session, feature_set, model_spec, queue_id, dagster_run_id, settings)
    if not claimed:
        kept = bool(existing.kept) if existing is not None else False
        return ConfigurationOutcome(config_hash, key, "skipped", kept=kept)

    write_spec(artifacts_dir, feature_set)
    write_spec(artifacts_dir, model_spec)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        matrix, _ = ensure_feature_matrix(feature_set, settings, artifacts_dir, sample_dir)
        timings["features"] = time.perf_counter() - started
        context = TrainingContext(
            settings=settings,
            artifacts_dir=artifacts_dir,
            seed=seed,
            deadline_seconds=settings.training.max_seconds_per_model,
        )
        t0 = time.perf_counter()
        model = train_model(matrix, model_spec, context)
        path = model_file_path(artifacts_dir, feature_set.partition_key, model_spec.partition_key, file_suffix(model_spec.model_type))
        info = save_model(model, path)
        training_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        splits = split_rows(
            matrix.n_rows, model_spec.horizon, settings.training.train_fraction, settings.training.validation_fraction
        )
        with session_scope(engine) as session:
            regimes = active_regimes(session, settings)
        labels = label_regimes(matrix.close, regimes, timeframe=matrix.base_timeframe, train_end=int(splits.validation[0]), timestamps=matrix.timestamps)
        output = run_inference_backtests(model, matrix, splits.test, labels[splits.test], settings, feature_set.symbol)
        backtest_seconds = time.perf_counter() - t1
    except Exception as exc:  # a failing model is recorded with its error and skipped, never fatal to the grid
        error = f"{type(exc).__name__}: {exc}"
        with session_scope(engine) as session:
            record_failure(
                session,
                feature_set=feature_set,
                model_spec=model_spec,
                error=error + "\n" + traceback.format_exc(limit=5),
                queue_id=queue_id,
                dagster_run_id=dagster_run_id,
            )
        return ConfigurationOutcome(config_hash, key, "failed", error=error, timings=timings)

    record = record_outcome(
        engine,
        settings=settings,
        feature_set=feature_set,
        model_spec=model_spec,
        model_file=info,
        backtests=output.frame,
        metrics=getattr(model, "metrics", {}),
        training_seconds=training_seconds,
        backtest_seconds=backtest_seconds,
        queue_id=queue_id,
        dagster_run_id=dagster_run_id,
    )
    timings.update(training=training_seconds, backtest=backtest_seconds)
    return ConfigurationOutcome(
        config_hash,
        key,
        "completed",
        training_seconds=training_seconds,
        backtest_seconds=backtest_seconds,
        model_bytes=info.bytes,
        kept=record.kept,
        record=record,
        timings=timings,
    )
