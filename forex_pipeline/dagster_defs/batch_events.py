"""What a grid_batch run tells the Dagster UI while it works: partition states, model state, live progress.

Few events per model, because each one is a write to the event log (12-16 ms on SQLite) and the UI's
partition queries read them back: a successful configuration costs one materialization of each of
its two partitions and one `training_progress` observation; a failed one costs a planned event and
an observation of each partition.

- A success is a materialization of `trained_model` and `inference_backtests` (its feature set's
  `features` partition too, the first time). A failure is planned and observed with its error, and
  the run then fails: Dagster shows a partition planned in a failed run and never materialized as
  failed.
- A model pushed out of every top N gets an observation on its `trained_model` partition with
  `kept: false` and when its file was deleted, so no deleted model stays green with `kept: true`.
- `training_progress` (an observable asset) is observed as each model starts (the model in flight,
  model k of N, kept / deleted / failed, elapsed, ETA, latest regime improvements), while it works
  (its stage and "inference k of 135", at most one observation per PROGRESS_EVERY_SECONDS) and when
  the batch ends. Low disk space and failure streaks are WARN evaluations of its asset checks.
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
PROGRESS_EVERY_SECONDS = 5.0
"""The least time between two observations of a model's work in flight (a slow model's stages)."""


def outcome_metadata(outcome: Any, configuration: Any, explorer_url: str) -> dict[str, dg.MetadataValue]:
    """A recorded configuration as materialization metadata: its readable name, its feature set's
    partition (the lineage), hyperparameters, status, times, kept, and a link to its details in the
    results explorer (`forex-pipeline ui`)."""
    metadata: dict[str, Any] = {
        "model": dg.MetadataValue.text(configuration.label),
        "feature_set": dg.MetadataValue.text(configuration.feature_set_key),
        "model_spec": dg.MetadataValue.text(configuration.model_spec_key),
        "hyperparameters": dg.MetadataValue.json(dict(configuration.model_spec.hyperparameters)),
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
    stale_reported: bool = False
    figures: dict[str, Any] = field(default_factory=dict)
    in_flight: Any = None
    last_started: float = 0.0
    last_observed: float = 0.0
    streak_warned: bool = False

    def __post_init__(self) -> None:
        # a feature set materialized once stays materialized: recording it again would mark every
        # model built on it "Unsynced" in the UI
        self.features_recorded = set(self.context.instance.get_materialized_partitions(dg.AssetKey("features")))

    # ------------------------------------------------------------ per configuration

    def started_model(self, index: int, configuration: Any, figures: dict[str, Any]) -> None:
        """The configuration is in flight: say so in the progress (this also shows the previous model's outcome)."""
        self.figures, self.in_flight, self.last_started = figures, configuration, time.monotonic()
        self.observe(stage="starting")

    def working(self, stage: str, done: int | None = None, total: int | None = None) -> None:
        """The model in flight reached `stage` (`inference` with `done` of `total` configurations):
        observed at most once per PROGRESS_EVERY_SECONDS, so a fast model costs no event here."""
        if self.in_flight is None or time.monotonic() - self.last_observed < PROGRESS_EVERY_SECONDS:
            return
        self.observe(stage=stage, inference=None if done is None else f"{done} of {total}")

    def finished_model(self, outcome: Any, configuration: Any, figures: dict[str, Any], deleted: list[Any]) -> None:
        """The configuration is recorded: materialize or fail its partitions, mark models pushed out."""
        self.figures, self.in_flight = figures, None
        if outcome.status == RunStatus.FAILED:
            self.failed.append(f"{configuration.label}: {outcome.error}")
            self.context.log.warning(f"{configuration.label} ({configuration.partition_key}) failed: {outcome.error}")
            for asset in MODEL_ASSETS:
                self._report_failure(asset, configuration, str(outcome.error))
        else:
            metadata = outcome_metadata(outcome, configuration, self.explorer_url)
            if configuration.feature_set_key not in self.features_recorded:
                self.context.log_event(dg.AssetMaterialization("features", partition=configuration.feature_set_key, metadata={"feature_set": configuration.feature_set.label}))
                self.features_recorded.add(configuration.feature_set_key)
            for asset in MODEL_ASSETS:
                self.context.log_event(dg.AssetMaterialization(asset, partition=configuration.partition_key, metadata=metadata))
            for event in (outcome.record.new_best_events if outcome.record is not None else ()):
                self.improvements.appendleft(self._improvement(event, configuration.label))
            if not self.stale_reported:  # once per batch: regime_bests is stale from the first new outcome on
                self.stale_reported = True
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

    def finished_batch(self) -> None:
        """The batch stopped: the last observation, with no model in flight."""
        if self.figures:
            self.observe(stage="-")

    def _report_failure(self, asset: str, configuration: Any, error: str) -> None:
        """Plan the failed partition in this run and observe it with its error. The partitions page
        shows it failed because it was planned in this run and the run fails (OSS event storage
        keeps no ASSET_FAILED_TO_MATERIALIZE events)."""
        planned = AssetMaterializationPlannedData(dg.AssetKey(asset), partition=configuration.partition_key)
        event = DagsterEvent.build_asset_materialization_planned_event(self.context.job_name, self.context.op_handle.name, planned)
        self.context.instance.report_dagster_event(event, run_id=self.context.run_id)
        self.context.log_event(
            dg.AssetObservation(
                asset, partition=configuration.partition_key,
                metadata={"status": "failed", "model": configuration.label, "feature_set": configuration.feature_set_key, "error": error[:2000]},
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

    def observe(self, *, stage: str, inference: str | None = None) -> None:
        """An observation of `training_progress`: where the queue stands now, and the model in flight
        (its stage, and `inference` "k of 135" while its inference configurations are backtested)."""
        figures, configuration = self.figures, self.in_flight
        done = figures["completed"] + figures["failed"]
        eta = figures["remaining_seconds"]
        elapsed = float(figures["elapsed_seconds"])
        if configuration is not None:  # the queue's figures were read when the model started
            elapsed += time.monotonic() - self.last_started
        metadata: dict[str, Any] = {
            "queue": dg.MetadataValue.text(f"{figures['id']} {figures['name']}"),
            "status": dg.MetadataValue.text(figures["summary"]),
            "model": dg.MetadataValue.text(f"{done + (1 if configuration is not None else 0)} of {figures['total']}"),
            "done": dg.MetadataValue.int(done),
            "total": dg.MetadataValue.int(figures["total"]),
            "in_flight": dg.MetadataValue.text(configuration.label if configuration is not None else "-"),
            "in_flight_partition": dg.MetadataValue.text(configuration.partition_key if configuration is not None else "-"),
            "stage": dg.MetadataValue.text(stage),
            "inference": dg.MetadataValue.text(inference or "-"),
            "kept": dg.MetadataValue.int(figures["kept"]),
            "deleted": dg.MetadataValue.int(figures["deleted"]),
            "failed": dg.MetadataValue.int(figures["failed"]),
            "elapsed_seconds": dg.MetadataValue.float(round(elapsed, 1)),
            "eta_seconds": dg.MetadataValue.float(float(eta)) if eta is not None else dg.MetadataValue.text("-"),
            "batch_run": dg.MetadataValue.text(self.context.run_id[:8]),
            "latest_regime_improvements": table_metadata(Table(IMPROVEMENT_COLUMNS, tuple(self.improvements))),
        }
        self.context.log_event(dg.AssetObservation(PROGRESS_ASSET, metadata=metadata))
        self.last_observed = time.monotonic()

    def disk_warning(self, message: str) -> None:
        self.context.log_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(PROGRESS_ASSET), check_name=DISK_CHECK, passed=False,
            severity=dg.AssetCheckSeverity.WARN, metadata={"queue_id": self.queue_id, "message": message},
        ))

    def streak_check(self, consecutive_failures: int, limit: int, last_error: str | None) -> None:
        """WARN when failures come in a row (the queue pauses at `limit`), and a pass once a streak is broken."""
        warn = consecutive_failures >= 2
        if not warn and not self.streak_warned:
            return
        self.streak_warned = warn
        self.context.log_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(PROGRESS_ASSET), check_name=STREAK_CHECK, passed=not warn,
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
