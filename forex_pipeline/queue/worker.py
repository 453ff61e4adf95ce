"""The worker: run a queue's configurations batch by batch in this process, honouring pause and
cancel flags between models, turning SIGTERM into a clean cancel, and pausing on a failure streak or
a full disk (each model beats the heartbeat while it trains: pipeline/heartbeat.py).
"""

from __future__ import annotations

import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from forex_pipeline.models.spec import ModelConfiguration
from forex_pipeline.errors import DiskFullError
from forex_pipeline.keys import QueueStatus, RunStatus
from forex_pipeline.pipeline.configuration import ConfigurationOutcome, StageProgress, run_configuration
from forex_pipeline.pipeline.keep_or_delete import cleanup_files
from forex_pipeline.queue.checkpoint import auto_checkpoint, checkpoint_if_stopped
from forex_pipeline.queue.lifecycle import (
    _queue,
    detect_interrupted,
    other_live_workers,
    pending_configurations,
    settle_and_notify,
    start,
)
from forex_pipeline.settings import Settings
from forex_pipeline.store import training_queue, training_runs
from forex_pipeline.store.db import session_scope
from forex_pipeline.store.training_runs import WorkerIdentity


@dataclass(frozen=True)
class BatchResult:
    outcomes: tuple[ConfigurationOutcome, ...]
    stopped_because: str | None  # None, "pause", "cancel", "failures", "disk"


class WorkerCancelled(BaseException):
    """Raised in a foreground worker by SIGTERM: unwinds whatever it is doing (a BaseException, so the
    per-model `except Exception` that records failures does not swallow it)."""


CANCEL_SIGNALLED = threading.Event()  # set by SIGTERM even where a framework swallowed WorkerCancelled


@contextmanager
def cancellable() -> Iterator[None]:
    """Turn SIGTERM into WorkerCancelled while the queue is worked (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:  # noqa: ANN001
        CANCEL_SIGNALLED.set()
        raise WorkerCancelled()

    CANCEL_SIGNALLED.clear()
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def free_disk_gb(path: Path) -> float:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free / 1e9


def pause_for_disk(engine: Engine, queue_id: int, message: str, on_disk_pause: Callable[[str], None] | None) -> None:
    """Pause the queue with `message` and tell the shell; when even the pause cannot be written (the
    database is on the full disk), the queue is settled later: `queue resume` releases claims and continues."""
    try:
        with session_scope(engine) as session:
            training_queue.set_queue_status(session, queue_id, QueueStatus.PAUSED, error_message=message)
    except Exception:
        pass
    if on_disk_pause is not None:
        on_disk_pause(message)


def process_batch(
    engine: Engine,
    settings: Settings,
    queue_id: int,
    configurations: list[ModelConfiguration],
    *,
    artifacts_dir: Path,
    sample_dir: Path | None,
    dagster_run_id: str | None = None,
    on_outcome: Callable[[ConfigurationOutcome, ModelConfiguration], None] | None = None,
    on_start: Callable[[int, ModelConfiguration], None] | None = None,
    on_disk_pause: Callable[[str], None] | None = None,
    on_stage: StageProgress | None = None,
    worker: WorkerIdentity | None = None,
) -> BatchResult:
    """Run configurations one by one, honouring pause/cancel flags, failure streaks and free disk.

    `on_start(index, configuration)` is called as each configuration starts (the model in flight),
    `on_stage(stage, done, total)` as it goes (inference k of 135), `on_outcome` when it has been
    recorded, `on_disk_pause(message)` when low disk space pauses the queue: the Dagster shell turns
    them into live progress and asset events. `worker` is recorded on each claim (default: this
    process; the Dagster shell adds the Celery task id on a celery worker)."""
    outcomes: list[ConfigurationOutcome] = []
    for configuration in configurations:
        with session_scope(engine) as session:
            queue = training_queue.heartbeat(session, queue_id)
        if queue.cancel_requested:
            return BatchResult(tuple(outcomes), "cancel")
        if queue.pause_requested:
            return BatchResult(tuple(outcomes), "pause")
        free = free_disk_gb(artifacts_dir)
        if free < settings.queue.min_free_disk_gb:
            message = f"paused: {free:.2f} GB free under {artifacts_dir}, below queue.min_free_disk_gb={settings.queue.min_free_disk_gb}"
            pause_for_disk(engine, queue_id, message, on_disk_pause)
            return BatchResult(tuple(outcomes), "disk")
        if on_start is not None:
            on_start(len(outcomes), configuration)
        try:
            outcome = run_configuration(
                configuration,
                settings=settings,
                engine=engine,
                artifacts_dir=artifacts_dir,
                sample_dir=sample_dir,
                queue_id=queue_id,
                dagster_run_id=dagster_run_id,
                on_stage=on_stage,
                worker=worker,
            )
        except DiskFullError as exc:
            pause_for_disk(engine, queue_id, f"paused: {exc}; free space, then resume", on_disk_pause)
            return BatchResult(tuple(outcomes), "disk")
        outcomes.append(outcome)
        with session_scope(engine) as session:
            # kept / deleted counts moved in the keep-or-delete transaction itself (store.training_runs.set_kept)
            queue = training_queue.update_queue_counts(
                session,
                queue_id,
                completed=int(outcome.status in (RunStatus.COMPLETED, "skipped")),
                failed=int(outcome.status == RunStatus.FAILED),
            )
            training_queue.heartbeat(session, queue_id, checkpoint=checkpoint_state(queue, outcome))
        if outcome.status != "skipped" and (queue.completed_models + queue.failed_models) % settings.recovery.checkpoint_every_models == 0:
            auto_checkpoint(engine, settings, queue_id, "auto")
        notify_outcome_events(settings, outcome)
        if on_outcome is not None:
            on_outcome(outcome, configuration)
        if queue.consecutive_failures >= settings.queue.max_consecutive_failures:
            with session_scope(engine) as session:
                training_queue.set_queue_status(
                    session, queue_id, QueueStatus.PAUSED,
                    error_message=f"paused after {queue.consecutive_failures} failures in a row (queue.max_consecutive_failures); last: {outcome.error}",
                )
            return BatchResult(tuple(outcomes), "failures")
    return BatchResult(tuple(outcomes), None)


def checkpoint_state(queue: training_queue.QueueRecord, outcome: ConfigurationOutcome) -> dict[str, Any]:
    return {
        **(queue.checkpoint or {}),
        "last_model_config_hash": outcome.model_config_hash,
        "last_status": outcome.status,
        "at": datetime.now(timezone.utc).isoformat(),
    }


def notify_outcome_events(settings: Settings, outcome: ConfigurationOutcome) -> None:
    """Tell the notifier about every regime whose rank 1 this model took."""
    from forex_pipeline.reporting.notifications import Notifier, new_regime_best_event

    if outcome.record is None or not outcome.record.new_best_events:
        return
    notifier = Notifier.from_settings(settings.notifications)
    for event in outcome.record.new_best_events:
        notifier.notify(
            new_regime_best_event(
                event["regime"], outcome.partition_key, event["score"], event.get("previous_best_score"), event.get("improvement")
            )
        )


BatchExecutor = Callable[[int, list[ModelConfiguration]], BatchResult]


def run_queue(
    engine: Engine,
    settings: Settings,
    queue_id: int,
    execute_batch: BatchExecutor,
    *,
    artifacts_dir: Path,
    on_progress: Callable[[training_queue.QueueRecord], None] | None = None,
) -> training_queue.QueueRecord:
    """Work a queue to its end in this process, one batch (one Dagster run) of models at a time."""
    detect_interrupted(engine, settings)
    start(engine, queue_id)
    others_running = other_live_workers(engine, queue_id)
    cleanup_files(engine, artifacts_dir, min_age_seconds=(2 * settings.training.max_seconds_per_model) if others_running else 0.0)
    try:
        with cancellable():  # each model beats its queue and its claim's lease (pipeline/heartbeat.py)
            # what is missing is read once (O(grid)); a configuration another worker finishes meanwhile
            # is skipped by its claim, and settle_and_notify checks what remains at the end
            pending = pending_configurations(engine, queue_id)
            size = settings.queue.models_per_run
            for start_at in range(0, len(pending), size):
                result = execute_batch(queue_id, pending[start_at : start_at + size])
                with session_scope(engine) as session:
                    queue = _queue(session, queue_id)
                if queue.cancel_requested or CANCEL_SIGNALLED.is_set():
                    raise WorkerCancelled()  # Dagster turns SIGTERM into a failed run: the flag says why
                if on_progress is not None:
                    on_progress(queue)
                if result.stopped_because is not None or queue.status != QueueStatus.RUNNING:
                    return checkpoint_if_stopped(engine, settings, settle_and_notify(engine, settings, queue_id, result.stopped_because))
            return settle_and_notify(engine, settings, queue_id, None)
    except WorkerCancelled:
        with session_scope(engine) as session:
            training_runs.release_claims(session, queue_id)
        return checkpoint_if_stopped(engine, settings, settle_and_notify(engine, settings, queue_id, "cancel"))

