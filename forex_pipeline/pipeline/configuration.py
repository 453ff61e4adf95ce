"""One model configuration end to end: the external loop (features, training) and the internal loop
(every inference configuration backtested out of sample), then the keep-or-delete transaction.

Plain Python: the Dagster assets, the batch job and the benchmarks' plain loop all call
`run_configuration`, so what Dagster runs is exactly what the library does.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from forex_pipeline.features.splits import split_rows
from forex_pipeline.pipeline.artifacts import ensure_feature_matrix
from forex_pipeline.pipeline.heartbeat import heartbeat_thread
from forex_pipeline.pipeline.keep_or_delete import RecordResult, record_failure, record_outcome
from forex_pipeline.errors import DiskFullError, is_disk_full
from forex_pipeline.keys import RunStatus
from forex_pipeline.models.spec import ModelConfiguration
from forex_pipeline.settings import Settings
from forex_pipeline.store import training_runs
from forex_pipeline.store.db import session_scope
from forex_pipeline.store.spec_files import write_spec
from forex_pipeline.store.training_runs import WorkerIdentity


StageProgress = Callable[[str, "int | None", "int | None"], None]
"""Called as one configuration goes: (stage, done, total); done/total are the inference configurations
backtested so far in stage `inference`, None in the others (features, training, trust reference, recording)."""


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


def run_configuration(
    configuration: ModelConfiguration,
    *,
    settings: Settings,
    engine: Engine,
    artifacts_dir: Path,
    sample_dir: Path | None = None,
    queue_id: int | None = None,
    dagster_run_id: str | None = None,
    seed: int = 0,
    on_stage: StageProgress | None = None,
    worker: WorkerIdentity | None = None,
) -> ConfigurationOutcome:
    """Train, backtest and record one configuration; a completed one is skipped, a failure is recorded.
    `on_stage` follows its stages (live progress); it must be cheap, it is called inside the internal loop.

    The claim records `worker` (default: this process) and its lease is renewed while the model trains,
    so a worker that dies mid-model is found out and its configuration trained elsewhere."""
    worker = worker or WorkerIdentity.this_process()
    with session_scope(engine) as session:
        claimed, existing = training_runs.claim_training_run(
            session,
            training_runs.training_run_fields(configuration),
            queue_id=queue_id,
            dagster_run_id=dagster_run_id,
            stale_after_seconds=settings.recovery.stale_after_seconds,
            worker=worker,
        )
    if not claimed:
        return ConfigurationOutcome(configuration.model_config_hash, configuration.partition_key, "skipped", kept=bool(existing.kept))
    with heartbeat_thread(engine, settings.recovery.heartbeat_seconds, worker, queue_id):
        return _train_claimed(configuration, settings, engine, artifacts_dir, sample_dir, queue_id, dagster_run_id, seed, on_stage)


def _train_claimed(
    configuration: ModelConfiguration,
    settings: Settings,
    engine: Engine,
    artifacts_dir: Path,
    sample_dir: Path | None,
    queue_id: int | None,
    dagster_run_id: str | None,
    seed: int,
    on_stage: StageProgress | None,
) -> ConfigurationOutcome:
    """The work of a claimed configuration: features, training, backtests, trust reference, the record."""
    from forex_pipeline.backtest.run import run_evaluation_backtests
    from forex_pipeline.pipeline.trust import ensure_reference
    from forex_pipeline.pipeline.walk_forward import train_fold_models
    from forex_pipeline.models.registry import TrainingContext, file_suffix, save_model, train_model
    from forex_pipeline.models.files import model_file_path
    from forex_pipeline.store.regime_definitions import active_regimes
    from forex_pipeline.regimes.labels import label_regimes

    feature_set, model_spec = configuration.feature_set, configuration.model_spec
    config_hash, key = configuration.model_config_hash, configuration.partition_key
    write_spec(artifacts_dir, feature_set)
    write_spec(artifacts_dir, model_spec)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def stage(name: str, done: int | None = None, total: int | None = None) -> None:
        if on_stage is not None:
            on_stage(name, done, total)

    try:
        stage("features")
        matrix, _ = ensure_feature_matrix(feature_set, settings, artifacts_dir, sample_dir)
        timings["features"] = time.perf_counter() - started
        context = TrainingContext(
            settings=settings,
            artifacts_dir=artifacts_dir,
            seed=seed,
            deadline_seconds=settings.training.max_seconds_per_model,
        )
        t0 = time.perf_counter()
        stage("training")
        model = train_model(matrix, model_spec, context)
        path = model_file_path(artifacts_dir, configuration.feature_set_key, configuration.model_spec_key, file_suffix(model_spec.model_type))
        info = save_model(model, path)
        splits = split_rows(
            matrix.n_rows, model_spec.horizon, settings.training.train_fraction, settings.training.validation_fraction
        )
        # walk-forward: one more model per later fold, trained on the rows before it (pipeline/walk_forward.py)
        models = train_fold_models(model, matrix, model_spec, splits.test, context)
        training_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        with session_scope(engine) as session:
            regimes = active_regimes(session, settings)
        labels = label_regimes(
            matrix.close, regimes, timeframe=matrix.base_timeframe, train_end=int(splits.validation[0]), timestamps=matrix.timestamps
        )
        # selection / holdout (walk-forward: folds pooled into selection) of the test segment, embargo = horizon
        output = run_evaluation_backtests(
            models, matrix, splits.test, labels[splits.test], settings, feature_set.symbol,
            on_progress=lambda done, total: stage("inference", done, total),
        )
        backtest_seconds = time.perf_counter() - t1
        t2 = time.perf_counter()
        stage("trust reference")
        reference = ensure_reference(
            matrix, feature_set, model_spec.horizon, splits.test, labels, settings, regimes, artifacts_dir
        )
        timings["trust_reference"] = time.perf_counter() - t2
    except Exception as exc:  # a failing model is recorded with its error and skipped, never fatal to the grid
        if is_disk_full(exc):
            _release_for_disk(engine, configuration, exc)
        error = f"{type(exc).__name__}: {exc}"
        with session_scope(engine) as session:
            record_failure(
                session,
                configuration=configuration,
                error=error + "\n" + traceback.format_exc(limit=5),
                queue_id=queue_id,
                dagster_run_id=dagster_run_id,
            )
        return ConfigurationOutcome(config_hash, key, RunStatus.FAILED, error=error, timings=timings)

    stage("recording")
    try:
        record = record_outcome(
            engine,
            settings=settings,
            configuration=configuration,
            model_file=info,
            backtests=output.frame,
            metrics=getattr(model, "metrics", {}),
            training_seconds=training_seconds,
            backtest_seconds=backtest_seconds,
            queue_id=queue_id,
            dagster_run_id=dagster_run_id,
            reference=reference,
            artifacts_dir=artifacts_dir,
            feature_count=len(matrix.feature_names),
        )
    except Exception as exc:
        if is_disk_full(exc):
            _release_for_disk(engine, configuration, exc)
        raise
    timings.update(training=training_seconds, backtest=backtest_seconds)
    return ConfigurationOutcome(
        config_hash,
        key,
        RunStatus.COMPLETED,
        training_seconds=training_seconds,
        backtest_seconds=backtest_seconds,
        model_bytes=info.bytes,
        kept=record.kept,
        record=record,
        timings=timings,
    )


def _release_for_disk(engine: Engine, configuration: ModelConfiguration, exc: BaseException) -> None:
    """A full disk is nobody's failure: hand the configuration back (pending) and raise DiskFullError."""
    try:
        with session_scope(engine) as session:
            training_runs.release_run(session, configuration.model_config_hash)
    except Exception:  # the database itself may be full; the queue's resume releases the claim then
        pass
    raise DiskFullError(
        f"no space left while working on {configuration.partition_key}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    ) from exc
