"""The training queue: submit a grid, work through it in batches, pause, resume, cancel, recover.

State lives in the `training_queue` table only, so any process (the CLI, a Dagster run, a sensor)
sees the same queue. A worker checks the pause and cancel flags between models, beats a heartbeat,
and a queue whose worker died (dead pid on this host, or a stale heartbeat) is `interrupted`;
resuming it continues with the configurations that have no completed training run, so no finished
model is trained twice and none is lost.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from forex_pipeline.grid.expand import ModelConfiguration, expand_grid, grid_hash, parse_grid_spec
from forex_pipeline.grid.spec import GridSpec
from forex_pipeline.hashing import canonical_json
from forex_pipeline.pipeline.keep_or_delete import cleanup_files
from forex_pipeline.settings import Settings
from forex_pipeline.store import repository
from forex_pipeline.store.db import session_scope
from forex_pipeline.store.spec_files import write_spec
from forex_pipeline.pipeline.configuration import ConfigurationOutcome, run_configuration

CHECKPOINT_VERSION = 1


class QueueError(RuntimeError):
    """A queue operation is not possible in the queue's current state; the message says why."""


@dataclass(frozen=True)
class BatchResult:
    outcomes: tuple[ConfigurationOutcome, ...]
    stopped_because: str | None  # None, "pause", "cancel", "failures", "disk"


def configurations_of(grid_spec: dict[str, Any]) -> list[ModelConfiguration]:
    """The grid's configurations in grid order (expanded once per process and grid: ~1 s at 49,000)."""
    return list(_expanded(canonical_json(grid_spec)))


@lru_cache(maxsize=8)
def _expanded(grid_json: str) -> tuple[ModelConfiguration, ...]:
    return tuple(expand_grid(parse_grid_spec(json.loads(grid_json))).configurations)


def configurations_by_key(grid_spec: dict[str, Any], keys: list[str]) -> list[ModelConfiguration]:
    """The configurations with these partition keys, in the order given; an unknown key is an error."""
    index = {c.partition_key: c for c in configurations_of(grid_spec)}
    missing = [k for k in keys if k not in index]
    if missing:
        raise QueueError(f"partition key(s) {missing[:3]} are not configurations of this queue's grid")
    return [index[k] for k in keys]


def submit_grid(engine: Engine, grid: GridSpec | dict[str, Any], artifacts_dir: Path, *, name: str | None = None) -> int:
    """Validate and expand a grid, store its specs, create a pending queue row; returns the queue id."""
    spec = grid if isinstance(grid, GridSpec) else parse_grid_spec(grid)
    expanded = expand_grid(spec)
    for feature_set in expanded.feature_sets:
        write_spec(artifacts_dir, feature_set)
    for model_spec in expanded.model_specs:
        write_spec(artifacts_dir, model_spec)
    with session_scope(engine) as session:
        repository.seed_regime_definitions(session)
        queue = repository.create_queue(
            session,
            name or spec.name,
            spec.model_dump(mode="json"),
            grid_hash(spec),
            len(expanded.configurations),
        )
        recount(session, queue.id)
    return queue.id


def pending_configurations(engine: Engine, queue_id: int) -> list[ModelConfiguration]:
    """The queue's configurations without a completed or failed training run, in grid order."""
    with session_scope(engine) as session:
        queue = _queue(session, queue_id)
        configurations = configurations_of(queue.grid_spec)
        done = repository.find_completed_hashes(session, [c.model_config_hash for c in configurations])
        failed = {r.model_config_hash for r in repository.runs_of_queue(session, queue_id) if r.status == "failed"}
    return [c for c in configurations if c.model_config_hash not in done | failed]


def _queue(session, queue_id: int) -> repository.QueueRecord:  # noqa: ANN001 - Session
    queue = repository.get_queue(session, queue_id)
    if queue is None:
        raise QueueError(f"no training queue with id {queue_id}")
    return queue


def _owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _owner_alive(checkpoint: dict[str, Any] | None) -> bool:
    """False when the queue's recorded worker was a process on this host that no longer exists."""
    owner = (checkpoint or {}).get("owner") or {}
    if owner.get("host") != socket.gethostname() or not owner.get("pid"):
        return True
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def detect_interrupted(engine: Engine, settings: Settings) -> list[int]:
    """Mark running queues whose worker is gone as `interrupted`; returns their ids."""
    interrupted = []
    with session_scope(engine) as session:
        stale = {q.id for q in repository.find_stale_queues(session, settings.recovery.stale_after_seconds)}
        for queue in repository.list_queues(session, status="running"):
            if queue.id in stale or not _owner_alive(queue.checkpoint):
                repository.set_queue_status(session, queue.id, "interrupted", error_message="worker stopped without finishing (crash or kill)")
                release_claims(session, queue.id)
                interrupted.append(queue.id)
    return interrupted


def release_claims(session, queue_id: int) -> int:  # noqa: ANN001 - Session
    """Training runs a dead worker of this queue had claimed go back to pending."""
    from sqlalchemy import update

    from forex_pipeline.store.tables import TrainingRun

    result = session.execute(
        update(TrainingRun)
        .where(TrainingRun.queue_id == queue_id, TrainingRun.status == "running")
        .values(status="pending")
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def start(engine: Engine, queue_id: int) -> repository.QueueRecord:
    """pending/paused/interrupted -> running, recording this process as the worker."""
    with session_scope(engine) as session:
        queue = _queue(session, queue_id)
        if queue.status in ("completed", "cancelled"):
            raise QueueError(f"queue {queue_id} is {queue.status}; submit the grid again to rerun it")
        if queue.status == "running" and _owner_alive(queue.checkpoint) and (queue.checkpoint or {}).get("owner") != _owner():
            raise QueueError(f"queue {queue_id} is already running in another process ({(queue.checkpoint or {}).get('owner')})")
        repository.set_queue_status(session, queue_id, "running")
        recount(session, queue_id)
        return repository.heartbeat(session, queue_id, checkpoint={**(queue.checkpoint or {}), "owner": _owner()})


def _refuse_finished(session, queue_id: int, action: str) -> None:  # noqa: ANN001 - Session
    queue = _queue(session, queue_id)
    if queue.status in ("completed", "cancelled"):
        raise QueueError(f"queue {queue_id} is {queue.status}; there is nothing to {action}")


def hand_to_daemon(engine: Engine, queue_id: int) -> repository.QueueRecord:
    """Mark the queue running in daemon mode: the Dagster daemon's sensor launches its batches."""
    with session_scope(engine) as session:
        queue = repository.set_queue_status(session, queue_id, "running")
        return repository.heartbeat(session, queue_id, checkpoint={**(queue.checkpoint or {}), "mode": "daemon", "owner": {}})


def pause(engine: Engine, queue_id: int) -> repository.QueueRecord:
    """Finish the model in flight, then stop (a waiting queue pauses at once)."""
    with session_scope(engine) as session:
        _refuse_finished(session, queue_id, "pause")
        return repository.request_pause(session, queue_id)


def cancel(engine: Engine, queue_id: int) -> repository.QueueRecord:
    """Stop now: flag the queue and interrupt its foreground worker on this host (SIGTERM), which
    abandons the model in flight; finished models stay. Daemon-mode runs see the flag between models."""
    with session_scope(engine) as session:
        _refuse_finished(session, queue_id, "cancel")
        record = repository.request_cancel(session, queue_id)
    owner = (record.checkpoint or {}).get("owner") or {}
    if record.cancel_requested and owner.get("host") == socket.gethostname() and owner.get("pid") not in (None, os.getpid()):
        try:
            os.kill(int(owner["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            pass
    return record


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


def resume(engine: Engine, queue_id: int, settings: Settings) -> repository.QueueRecord:
    """Make a paused or interrupted queue runnable again (the worker is started by the caller)."""
    detect_interrupted(engine, settings)
    with session_scope(engine) as session:
        queue = _queue(session, queue_id)
        if queue.status not in ("paused", "interrupted", "pending", "failed"):
            raise QueueError(f"queue {queue_id} is {queue.status}; only paused, interrupted or failed queues resume")
        return queue


@contextmanager
def heartbeat_thread(engine: Engine, queue_id: int, seconds: float) -> Iterator[None]:
    """Beat the queue's heartbeat every `seconds` while a long model trains."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(seconds):
            try:
                with session_scope(engine) as session:
                    repository.heartbeat(session, queue_id)
            except Exception:  # a missed beat is harmless; the next one retries
                pass

    thread = threading.Thread(target=beat, name=f"queue-{queue_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def free_disk_gb(path: Path) -> float:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free / 1e9


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
) -> BatchResult:
    """Run configurations one by one, honouring pause/cancel flags, failure streaks and free disk."""
    outcomes: list[ConfigurationOutcome] = []
    for configuration in configurations:
        with session_scope(engine) as session:
            queue = repository.heartbeat(session, queue_id)
        if queue.cancel_requested:
            return BatchResult(tuple(outcomes), "cancel")
        if queue.pause_requested:
            return BatchResult(tuple(outcomes), "pause")
        free = free_disk_gb(artifacts_dir)
        if free < settings.queue.min_free_disk_gb:
            with session_scope(engine) as session:
                repository.set_queue_status(
                    session, queue_id, "paused",
                    error_message=f"paused: {free:.2f} GB free under {artifacts_dir}, below queue.min_free_disk_gb={settings.queue.min_free_disk_gb}",
                )
            return BatchResult(tuple(outcomes), "disk")
        outcome = run_configuration(
            configuration.feature_set,
            configuration.model_spec,
            settings=settings,
            engine=engine,
            artifacts_dir=artifacts_dir,
            sample_dir=sample_dir,
            queue_id=queue_id,
            dagster_run_id=dagster_run_id,
        )
        outcomes.append(outcome)
        with session_scope(engine) as session:
            repository.update_queue_counts(
                session,
                queue_id,
                completed=int(outcome.status in ("completed", "skipped")),
                failed=int(outcome.status == "failed"),
            )
            queue = refresh_kept_deleted(session, queue_id)
            repository.heartbeat(session, queue_id, checkpoint=checkpoint_state(queue, outcome))
        notify_outcome_events(settings, outcome)
        if on_outcome is not None:
            on_outcome(outcome, configuration)
        if queue.consecutive_failures >= settings.queue.max_consecutive_failures:
            with session_scope(engine) as session:
                repository.set_queue_status(
                    session, queue_id, "paused",
                    error_message=f"paused after {queue.consecutive_failures} failures in a row (queue.max_consecutive_failures); last: {outcome.error}",
                )
            return BatchResult(tuple(outcomes), "failures")
    return BatchResult(tuple(outcomes), None)


def progress(queue: repository.QueueRecord) -> dict[str, Any]:
    """Progress figures of a queue: done, kept, deleted, elapsed and an estimate of the time left."""
    done = queue.completed_models + queue.failed_models
    started = queue.started_at or queue.created_at
    end = queue.finished_at or datetime.now(timezone.utc)
    elapsed = max((end - started).total_seconds(), 0.0)
    remaining = max(queue.total_models - done, 0)
    eta = elapsed / done * remaining if done and queue.status == "running" else None
    return {
        "id": queue.id, "name": queue.name, "status": queue.status, "total": queue.total_models,
        "completed": queue.completed_models, "failed": queue.failed_models, "kept": queue.kept_models,
        "deleted": queue.deleted_models, "elapsed_seconds": round(elapsed, 1),
        "remaining_seconds": None if eta is None else round(eta, 1), "message": queue.error_message or "",
    }


def recount(session, queue_id: int) -> repository.QueueRecord:  # noqa: ANN001 - Session
    """All counts from the database: completed = the grid's configurations with a completed run
    (whichever queue trained them), failed = this queue's failed runs; used at start and at the end,
    so counts lost in a crash come back."""
    from sqlalchemy import update

    from forex_pipeline.store.tables import TrainingQueue

    queue = _queue(session, queue_id)
    hashes = [c.model_config_hash for c in configurations_of(queue.grid_spec)]
    completed = len(repository.find_completed_hashes(session, hashes))
    failed = sum(r.status == "failed" for r in repository.runs_of_queue(session, queue_id))
    session.execute(
        update(TrainingQueue).where(TrainingQueue.id == queue_id).values(completed_models=completed, failed_models=failed)
    )
    return refresh_kept_deleted(session, queue_id)


def refresh_kept_deleted(session, queue_id: int) -> repository.QueueRecord:  # noqa: ANN001 - Session
    """Kept and deleted counts of the queue's models as they are now: later models push earlier ones out."""
    from sqlalchemy import func, select, update

    from forex_pipeline.store.tables import TrainingQueue, TrainingRun

    kept, deleted = session.execute(
        select(
            func.count().filter(TrainingRun.kept.is_(True)),
            func.count().filter(TrainingRun.file_deleted_at.is_not(None)),
        ).where(TrainingRun.queue_id == queue_id)
    ).one()
    session.execute(
        update(TrainingQueue).where(TrainingQueue.id == queue_id).values(kept_models=int(kept), deleted_models=int(deleted))
    )
    return _queue(session, queue_id)


def checkpoint_state(queue: repository.QueueRecord, outcome: ConfigurationOutcome) -> dict[str, Any]:
    return {
        **(queue.checkpoint or {}),
        "last_model_config_hash": outcome.model_config_hash,
        "last_status": outcome.status,
        "at": datetime.now(timezone.utc).isoformat(),
    }


def finish_if_done(engine: Engine, queue_id: int, stopped_because: str | None) -> repository.QueueRecord:
    """Settle the queue's status after a worker stops: completed, paused or cancelled."""
    remaining = pending_configurations(engine, queue_id)
    with session_scope(engine) as session:
        queue = recount(session, queue_id)
        if queue.status != "running":
            return queue
        if stopped_because == "cancel":
            return repository.set_queue_status(session, queue_id, "cancelled")
        if stopped_because == "pause":
            return repository.set_queue_status(session, queue_id, "paused")
        if stopped_because == "error":
            return repository.set_queue_status(session, queue_id, "failed", error_message="a grid_batch Dagster run failed; see its logs, then resume")
        if not remaining:
            return repository.set_queue_status(session, queue_id, "completed")
        return queue


BatchExecutor = Callable[[int, list[ModelConfiguration]], BatchResult]


def run_queue(
    engine: Engine,
    settings: Settings,
    queue_id: int,
    execute_batch: BatchExecutor,
    *,
    artifacts_dir: Path,
    on_progress: Callable[[repository.QueueRecord], None] | None = None,
) -> repository.QueueRecord:
    """Work a queue to its end in this process, one batch (one Dagster run) of models at a time."""
    detect_interrupted(engine, settings)
    start(engine, queue_id)
    others_running = _other_live_workers(engine, queue_id)
    cleanup_files(engine, artifacts_dir, min_age_seconds=(2 * settings.training.max_seconds_per_model) if others_running else 0.0)
    try:
        with cancellable(), heartbeat_thread(engine, queue_id, settings.recovery.heartbeat_seconds):
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
                if result.stopped_because is not None or queue.status != "running":
                    return settle_and_notify(engine, settings, queue_id, result.stopped_because)
            return settle_and_notify(engine, settings, queue_id, None)
    except WorkerCancelled:
        with session_scope(engine) as session:
            release_claims(session, queue_id)
        return settle_and_notify(engine, settings, queue_id, "cancel")


def _other_live_workers(engine: Engine, queue_id: int) -> bool:
    with session_scope(engine) as session:
        running = [q for q in repository.list_queues(session, status="running") if q.id != queue_id]
    return any(_owner_alive(q.checkpoint) for q in running)


def export_checkpoint(engine: Engine, queue_id: int) -> dict[str, Any]:
    """The queue as JSON: grid, status, counts, and the state of every configuration."""
    with session_scope(engine) as session:
        queue = _queue(session, queue_id)
        configurations = configurations_of(queue.grid_spec)
        done = repository.find_completed_hashes(session, [c.model_config_hash for c in configurations])
        failed = {r.model_config_hash: r.error_message for r in repository.runs_of_queue(session, queue_id) if r.status == "failed"}
    return {
        "version": CHECKPOINT_VERSION,
        "exported_at": datetime.now(timezone.utc).isoformat(),
        "queue": {
            "id": queue.id,
            "name": queue.name,
            "status": queue.status,
            "grid_hash": queue.grid_hash,
            "grid_spec": queue.grid_spec,
            "total_models": queue.total_models,
            "completed_models": queue.completed_models,
            "failed_models": queue.failed_models,
            "kept_models": queue.kept_models,
            "deleted_models": queue.deleted_models,
            "created_at": queue.created_at.isoformat(),
        },
        "configurations": [
            {
                "partition_key": c.partition_key,
                "model_config_hash": c.model_config_hash,
                "state": "completed" if c.model_config_hash in done else "failed" if c.model_config_hash in failed else "pending",
                **({"error": failed[c.model_config_hash]} if c.model_config_hash in failed else {}),
            }
            for c in configurations
        ],
    }


def import_checkpoint(engine: Engine, data: dict[str, Any], artifacts_dir: Path) -> int:
    """Recreate a queue from an exported checkpoint as a paused queue; completed work is found by hash."""
    if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
        raise QueueError(f"checkpoint: unsupported or missing version (expected {CHECKPOINT_VERSION})")
    try:
        queue_part = data["queue"]
        grid = parse_grid_spec(queue_part["grid_spec"])
    except KeyError as exc:
        raise QueueError(f"checkpoint: missing field {exc.args[0]!r}") from exc
    if grid_hash(grid) != queue_part.get("grid_hash"):
        raise QueueError("checkpoint: queue.grid_hash does not match queue.grid_spec (edited or corrupt file)")
    queue_id = submit_grid(engine, grid, artifacts_dir, name=queue_part.get("name"))
    with session_scope(engine) as session:
        repository.set_queue_status(session, queue_id, "paused")
    return queue_id


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


def settle_and_notify(engine_or_url: Engine | str, settings: Settings, queue_id: int, stopped_because: str | None = None) -> repository.QueueRecord:
    """Settle the queue's status after a batch and send queue_complete / queue_failure notifications."""
    from forex_pipeline.reporting.notifications import Notifier, queue_complete_event, queue_failure_event
    from forex_pipeline.store.db import get_engine

    engine = get_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    queue = finish_if_done(engine, queue_id, stopped_because)
    notifier = Notifier.from_settings(settings.notifications)
    if queue.status == "completed":
        elapsed = ((queue.finished_at or queue.updated_at) - (queue.started_at or queue.created_at)).total_seconds()
        notifier.notify(queue_complete_event(queue.name, queue.completed_models, queue.failed_models, queue.kept_models, elapsed))
    elif queue.status == "failed" or (queue.status == "paused" and queue.error_message and stopped_because in ("failures", "disk")):
        notifier.notify(queue_failure_event(queue.name, queue.error_message, queue.consecutive_failures))
    return queue
