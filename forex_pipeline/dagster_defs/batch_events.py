"""What a grid_batch run tells the Dagster UI while it works: partition states, model state, live progress.

- As a configuration starts, its `trained_model` and `inference_backtests` partitions are planned
  (the partitions page shows them in progress); a success is a materialization, a failure an
  observation with the error, and the run then fails: Dagster shows a partition planned in a failed
  run and never materialized as failed.
- A model pushed out of every top N gets an observation on its `trained_model` partition with
  `kept: false` and when its file was deleted, so no deleted model stays green with `kept: true`.
- `training_progress` (an observable asset) gets an observation as each model starts and ends:
  model k of N, the model in flight, kept / deleted / failed, elapsed, ETA, latest regime
  improvements. Low disk space and failure streaks are WARN evaluations of its asset checks.
"""

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import dagster as dg
from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent

from forex_pipeline.dagster_defs.metadata import explorer_link, table_metadata
from forex_pipeline.dagster_defs.resources import ForexStorage
from forex_pipeline.keys import RunStatus
from forex_pipeline.reporting.tables import Column, Table

PROGRESS_ASSET = "training_progress"
DISK_CHECK = "enough_free_disk"
STREAK_CHECK = "no_failure_streak"
MODEL_ASSETS = ("trained_model", "inference_backtests")
IMPROVEMENT_COLUMNS = (
    Column("regime", "string", "regime whose rank 1 changed"),
    Column("model", "string", "the new rank-1 model"),
    Column("sharpe", "float", "its Sharpe in the regime"),
    Column("previous", "float", "the previous rank-1 Sharpe"),
    Column("improvement", "float", "gain over the previous rank 1"),
    Column("at", "string", "when (UTC)"),
)
KEEP_IMPROVEMENTS = 10


def outcome_metadata(outcome: Any, label: str, explorer_url: str) -> dict[str, dg.MetadataValue]:
    """A recorded configuration as materialization metadata: its readable name, status, times, kept,
    and a link to its details in the results explorer (`forex-pipeline ui`)."""
    metadata: dict[str, Any] = {
        "model": dg.MetadataValue.text(label),
        "explorer": dg.MetadataValue.url(explorer_link(explorer_url, "history", config=outcome.model_config_hash)),
        "status": str(outcome.status),
        "model_config_hash": outcome.model_config_hash,
        "training_seconds": round(outcome.training_seconds, 3),
        "backtest_seconds": round(outcome.backtest_seconds, 3),
        "model_bytes": outcome.model_bytes,
        "kept": outcome.kept,
    }
    if outcome.record is not None:
        metadata["best_regimes"] = ", ".join(outcome.record.regimes_in_top) or "-"
        if outcome.record.best_sharpe is not None:
            metadata["best_sharpe"] = float(outcome.record.best_sharpe)
    return metadata


@dataclass
class BatchReporter:
    """Logs the events of one grid_batch run; one instance per run, called by process_batch's hooks."""

    context: dg.OpExecutionContext
    queue_id: int
    batch_size: int
    explorer_url: str
    started: float = field(default_factory=time.monotonic)
    improvements: deque = field(default_factory=lambda: deque(maxlen=KEEP_IMPROVEMENTS))
    failed: list[str] = field(default_factory=list)
    features_recorded: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        # a feature set materialized once stays materialized: recording it again would mark every
        # model built on it "Unsynced" in the UI
        self.features_recorded = set(self.context.instance.get_materialized_partitions(dg.AssetKey("features")))

    # ------------------------------------------------------------ per configuration

    def started_model(self, index: int, configuration: Any, figures: dict[str, Any]) -> None:
        """The configuration is in flight: plan its partitions and say so in the progress."""
        for asset in MODEL_ASSETS:
            planned = AssetMaterializationPlannedData(dg.AssetKey(asset), partition=configuration.partition_key)
            event = DagsterEvent.build_asset_materialization_planned_event(self.context.job_name, self.context.op_handle.name, planned)
            self.context.instance.report_dagster_event(event, run_id=self.context.run_id)
        self.observe(figures, in_flight=configuration.label, in_flight_key=configuration.partition_key, batch_index=index)

    def finished_model(self, outcome: Any, configuration: Any, figures: dict[str, Any], deleted: list[Any]) -> None:
        """The configuration is recorded: materialize or fail its partitions, mark models pushed out, update progress."""
        if outcome.status == RunStatus.FAILED:
            self.failed.append(f"{configuration.label}: {outcome.error}")
            self.context.log.warning(f"{configuration.label} ({configuration.partition_key}) failed: {outcome.error}")
            for asset in MODEL_ASSETS:
                self._report_failure(asset, configuration, str(outcome.error))
        else:
            metadata = outcome_metadata(outcome, configuration.label, self.explorer_url)
            if configuration.feature_set_key not in self.features_recorded:
                self.context.log_event(dg.AssetMaterialization("features", partition=configuration.feature_set_key, metadata={"feature_set": configuration.feature_set.label}))
                self.features_recorded.add(configuration.feature_set_key)
            for asset in MODEL_ASSETS:
                self.context.log_event(dg.AssetMaterialization(asset, partition=configuration.partition_key, metadata=metadata))
            for event in (outcome.record.new_best_events if outcome.record is not None else ()):
                self.improvements.appendleft(self._improvement(event, configuration.label))
            self.context.log_event(dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey("regime_bests"), check_name="reflects_latest_outcomes", passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"stale_since": datetime.now(timezone.utc).isoformat(timespec="seconds"), "new_outcome": configuration.label},
            ))
        for run in deleted:
            self.context.log_event(
                dg.AssetObservation(
                    "trained_model",
                    partition=run.partition_key,
                    metadata={
                        "kept": False,
                        "file_deleted_at": (run.file_deleted_at or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
                        "why": "pushed out of every regime's top N",
                    },
                )
            )
        self.observe(figures, in_flight="-", in_flight_key="-", batch_index=None)

    def _report_failure(self, asset: str, configuration: Any, error: str) -> None:
        """An observation of the failed partition with its error. The partitions page shows it failed
        because it was planned in this run and the run fails (OSS event storage keeps no
        ASSET_FAILED_TO_MATERIALIZE events)."""
        self.context.log_event(
            dg.AssetObservation(
                asset, partition=configuration.partition_key,
                metadata={"status": "failed", "model": configuration.label, "error": error[:2000]},
            )
        )

    @staticmethod
    def _improvement(event: dict[str, Any], label: str) -> dict[str, Any]:
        def number(value: Any) -> float | None:
            return None if value is None else float(value)

        return {
            "regime": str(event["regime"]),
            "model": label,
            "sharpe": number(event.get("score")),
            "previous": number(event.get("previous_best_score")),
            "improvement": number(event.get("improvement")),
            "at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        }

    # ------------------------------------------------------------ progress and warnings

    def observe(self, figures: dict[str, Any], *, in_flight: str, in_flight_key: str, batch_index: int | None) -> None:
        """An observation of `training_progress`: where the queue stands now."""
        done = figures["completed"] + figures["failed"]
        eta = figures["remaining_seconds"]
        metadata: dict[str, Any] = {
            "queue": dg.MetadataValue.text(f"{figures['id']} {figures['name']}"),
            "status": dg.MetadataValue.text(figures["summary"]),
            "model": dg.MetadataValue.text(f"{done + (1 if batch_index is not None else 0)} of {figures['total']}"),
            "done": dg.MetadataValue.int(done),
            "total": dg.MetadataValue.int(figures["total"]),
            "in_flight": dg.MetadataValue.text(in_flight),
            "in_flight_partition": dg.MetadataValue.text(in_flight_key),
            "kept": dg.MetadataValue.int(figures["kept"]),
            "deleted": dg.MetadataValue.int(figures["deleted"]),
            "failed": dg.MetadataValue.int(figures["failed"]),
            "elapsed_seconds": dg.MetadataValue.float(float(figures["elapsed_seconds"])),
            "eta_seconds": dg.MetadataValue.float(float(eta)) if eta is not None else dg.MetadataValue.text("-"),
            "batch_run": dg.MetadataValue.text(self.context.run_id[:8]),
            "latest_regime_improvements": table_metadata(Table(IMPROVEMENT_COLUMNS, tuple(self.improvements))),
        }
        self.context.log_event(dg.AssetObservation(PROGRESS_ASSET, metadata=metadata))
        self.context.log.info(
            f"queue {figures['id']}: {figures['summary']}; kept {figures['kept']}, deleted {figures['deleted']}, "
            f"elapsed {figures['elapsed_seconds']:.0f}s, ETA {'-' if eta is None else f'{eta:.0f}s'}; in flight: {in_flight}"
        )

    def disk_warning(self, message: str) -> None:
        self.context.log_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(PROGRESS_ASSET), check_name=DISK_CHECK, passed=False,
            severity=dg.AssetCheckSeverity.WARN, metadata={"queue_id": self.queue_id, "message": message},
        ))

    def streak_check(self, consecutive_failures: int, limit: int, last_error: str | None) -> None:
        """WARN when failures come in a row (the queue pauses at `limit`)."""
        if consecutive_failures < 2 and not self.failed:
            return
        self.context.log_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(PROGRESS_ASSET), check_name=STREAK_CHECK, passed=consecutive_failures < 2,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"queue_id": self.queue_id, "consecutive_failures": consecutive_failures, "pauses_at": limit, "last_error": (last_error or "-")[:500]},
        ))


@dg.asset_check(asset=PROGRESS_ASSET, name=DISK_CHECK, description="Free disk under the artifacts folder is above queue.min_free_disk_gb (a queue pauses below it).")
def enough_free_disk(storage: ForexStorage) -> dg.AssetCheckResult:
    from forex_pipeline.queue.worker import free_disk_gb

    free, limit = free_disk_gb(storage.artifacts), storage.settings.queue.min_free_disk_gb
    return dg.AssetCheckResult(passed=free >= limit, severity=dg.AssetCheckSeverity.WARN, metadata={"free_gb": round(free, 2), "min_free_disk_gb": limit})


@dg.asset_check(asset=PROGRESS_ASSET, name=STREAK_CHECK, description="No queue has failures in a row (a queue pauses at queue.max_consecutive_failures).")
def no_failure_streak(storage: ForexStorage) -> dg.AssetCheckResult:
    from forex_pipeline.store import training_queue
    from forex_pipeline.store.db import get_engine, session_scope

    with session_scope(get_engine(storage.db_url)) as session:
        streaks = {q.id: q.consecutive_failures for q in training_queue.list_queues(session) if q.consecutive_failures}
    return dg.AssetCheckResult(
        passed=max(streaks.values(), default=0) < 2, severity=dg.AssetCheckSeverity.WARN,
        metadata={"queues_with_failures_in_a_row": dg.MetadataValue.json({str(k): v for k, v in streaks.items()})},
    )


training_progress = dg.AssetSpec(
    PROGRESS_ASSET,
    group_name="model_grid",
    description="Live progress of the grid being trained: an observation as each model starts and ends.",
)
