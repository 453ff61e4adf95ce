"""The life of a training queue: submit, start, pause, resume, cancel, detect a dead worker, settle.

State lives in the `training_queue` table only, so any process (the CLI, a Dagster run, a sensor)
sees the same queue. A queue whose worker died (dead pid on this host, or a stale heartbeat) is
`interrupted` and its claims are released; resuming it continues with the configurations that have
no completed training run, so no finished model is trained twice and none is lost.
"""

from __future__ import annotations

import gc
import json
import os
from collections import OrderedDict
import signal
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from forex_pipeline.errors import InputError, OperationError
from forex_pipeline.hashing import canonical_json
from forex_pipeline.keys import FINISHED_QUEUE_STATUSES, QueueStatus, RunStatus
from forex_pipeline.store import training_queue, training_runs
from forex_pipeline.store.db import session_scope
from forex_pipeline.store.training_runs import WorkerIdentity

if TYPE_CHECKING:   # grid expansion and the settings models load only where a queue is submitted or run
    from forex_pipeline.grid.expand import Grid
    from forex_pipeline.grid.spec import GridSpec
    from forex_pipeline.models.spec import ModelConfiguration
    from forex_pipeline.settings import Settings


QUEUE_NAME_MAX = 255


class QueueError(OperationError):
    """A queue operation is not possible in the queue's current state; the message says why."""


EXPANDED_GRIDS_KEPT = 8
_expanded: OrderedDict[str, tuple[ModelConfiguration, ...]] = OrderedDict()


def configurations_of(grid_spec: dict[str, Any]) -> list[ModelConfiguration]:
    """The grid's configurations in grid order (expanded once per process and grid: ~1 s at 49,000)."""
    from forex_pipeline.grid.expand import expand_grid, parse_grid_spec

    key = canonical_json(grid_spec)
    if key not in _expanded:
        _remember(key, tuple(expand_grid(parse_grid_spec(json.loads(key))).configurations))
    _expanded.move_to_end(key)
    return list(_expanded[key])


def _remember(key: str, configurations: tuple[ModelConfiguration, ...]) -> None:
    """Keep a grid's expansion for configurations_of (the EXPANDED_GRIDS_KEPT most recent grids).

    An expansion lives as long as the process that trains its queue (about a million objects at 49,000
    configurations), so it is frozen out of the cyclic garbage collector (`gc.freeze`, after one full
    collection so no garbage is frozen with it): each full pass over it cost a worker 60 to 90 ms in the
    middle of a model's record (benchmarks/bench_scale.py, issue 14). Frozen objects are still freed by
    reference counting when the expansion is dropped."""
    _expanded[key] = configurations
    while len(_expanded) > EXPANDED_GRIDS_KEPT:
        _expanded.popitem(last=False)
    gc.collect()
    gc.freeze()


def configurations_by_key(grid_spec: dict[str, Any], keys: list[str]) -> list[ModelConfiguration]:
    """The configurations with these partition keys, in the order given; an unknown key is an error."""
    index = {c.partition_key: c for c in configurations_of(grid_spec)}
    missing = [k for k in keys if k not in index]
    if missing:
        raise QueueError(f"partition key(s) {missing[:3]} are not configurations of this queue's grid")
    return [index[k] for k in keys]


def validate_queue_name(name: str) -> str:
    """A queue name: 1 to QUEUE_NAME_MAX printable characters (it is shown everywhere and stored in a column)."""
    if not isinstance(name, str) or not name.strip():
        raise InputError("queue name is empty")
    if len(name) > QUEUE_NAME_MAX:
        raise InputError(f"queue name is {len(name)} characters long; at most {QUEUE_NAME_MAX} are allowed")
    if not name.isprintable():
        raise InputError(f"queue name {name[:40]!r} holds control characters")
    return name


def submit_grid(
    engine: Engine,
    grid: Grid | GridSpec | dict[str, Any],
    artifacts_dir: Path,
    *,
    name: str | None = None,
    paused: bool = False,
    priority: int = 0,
    max_parallel: int | None = None,
) -> int:
    """Validate and expand a grid, store its specs, create a pending (or paused) queue row; returns its id.

    An already expanded `Grid` is used as it is: a submit expands its grid once (hash, spec files and
    counts all come from that expansion). Everything that can be refused is checked before the first
    spec file is written. `priority` (higher first) and `max_parallel` (batch runs at once; default
    settings queue.max_concurrent_runs) are the specification's queue fields.
    """
    from forex_pipeline.grid.expand import Grid, expand_grid, grid_hash, parse_grid_spec
    from forex_pipeline.grid.spec import GridSpec
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store import regime_definitions
    from forex_pipeline.store.spec_files import write_spec

    if isinstance(grid, Grid):
        spec, expanded = grid.spec, grid
    else:
        spec = grid if isinstance(grid, GridSpec) else parse_grid_spec(grid)
        expanded = expand_grid(spec)
    name = validate_queue_name(name or spec.name)
    max_parallel = get_settings().queue.max_concurrent_runs if max_parallel is None else max_parallel
    if not isinstance(max_parallel, int) or max_parallel < 1:
        raise InputError(f"max_parallel {max_parallel!r} must be a whole number >= 1")
    if not isinstance(priority, int) or abs(priority) > 1_000_000:
        raise InputError(f"priority {priority!r} must be a whole number between -1000000 and 1000000")
    grid_spec = spec.model_dump(mode="json")
    _remember(canonical_json(grid_spec), tuple(expanded.configurations))
    for feature_set in expanded.feature_sets:
        write_spec(artifacts_dir, feature_set)
    for model_spec in expanded.model_specs:
        write_spec(artifacts_dir, model_spec)
    with session_scope(engine) as session:
        regime_definitions.seed_regime_definitions(session)
        queue = training_queue.create_queue(
            session, name, grid_spec, grid_hash(expanded), len(expanded.configurations),
            priority=priority, max_parallel=max_parallel,
        )
        recount(session, queue.id)
        if paused:
            training_queue.set_queue_status(session, queue.id, QueueStatus.PAUSED)
    return queue.id


def pending_configurations(engine: Engine, queue_id: int) -> list[ModelConfiguration]:
    """The queue's configurations without a completed or failed training run, in grid order."""
    with session_scope(engine) as session:
        queue = _queue(session, queue_id)
        configurations = configurations_of(queue.grid_spec)
        done = training_runs.find_completed_hashes(session, [c.model_config_hash for c in configurations])
        failed = {r.model_config_hash for r in training_runs.runs_of_queue(session, queue_id) if r.status == RunStatus.FAILED}
    return [c for c in configurations if c.model_config_hash not in done | failed]



def next_queue(engine: Engine) -> training_queue.QueueRecord | None:
    """The queue a worker takes next: pending or interrupted, highest priority first, then oldest."""
    with session_scope(engine) as session:
        waiting = [q for q in training_queue.list_queues(session) if q.status in (QueueStatus.PENDING, QueueStatus.INTERRUPTED)]
    ordered = training_queue.by_priority(waiting)
    return ordered[0] if ordered else None


def _queue(session, queue_id: int) -> training_queue.QueueRecord:  # noqa: ANN001 - Session
    queue = training_queue.get_queue(session, queue_id)
    if queue is None:
        raise QueueError(f"no training queue with id {queue_id}")
    return queue


def _owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _process_alive(host: str | None, pid: int | None) -> bool:
    """False only when (host, pid) names a process of this host that no longer exists; another host's
    process cannot be checked from here (its lease or heartbeat age decides)."""
    if host != socket.gethostname() or not pid:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_alive(checkpoint: dict[str, Any] | None) -> bool:
    """False when the queue's recorded worker was a process on this host that no longer exists."""
    owner = (checkpoint or {}).get("owner") or {}
    return _process_alive(owner.get("host"), owner.get("pid"))


@dataclass(frozen=True)
class LostClaim:
    """A released claim of a worker that died mid-model: the run that held it and why it was judged lost."""

    partition_key: str
    queue_id: int | None
    dagster_run_id: str | None
    worker: WorkerIdentity | None
    reason: str


def release_lost_claims(engine: Engine, settings: Settings, *, now: datetime | None = None) -> list[LostClaim]:
    """Release the `running` claims whose worker is gone, so another worker trains them.

    A claim is lost when its worker process no longer exists on this host, or when its lease (renewed
    every recovery.heartbeat_seconds while the model trains) is older than recovery.stale_after_seconds:
    the only sign of life a worker on another host gives. Called by the daemon's queue sensor.
    """
    lost = []
    with session_scope(engine) as session:
        for run in training_runs.running_claims(session):
            worker = WorkerIdentity(run.worker_host, run.worker_pid, run.celery_task_id) if run.worker_host and run.worker_pid else None
            if worker is not None and not _process_alive(worker.host, worker.pid):
                reason = f"worker process {worker.pid} on {worker.host} is gone"
            elif training_runs.claim_expired(run, settings.recovery.stale_after_seconds, now):
                where = f"worker {worker.pid} on {worker.host}" if worker else "its worker"
                reason = f"{where} has not renewed its lease for {settings.recovery.stale_after_seconds:g} s"
            else:
                continue
            if training_runs.release_claim(session, run.id, worker=worker):
                lost.append(LostClaim(run.partition_key, run.queue_id, run.dagster_run_id, worker, reason))
    return lost


def detect_interrupted(engine: Engine, settings: Settings) -> list[int]:
    """Mark running queues whose worker is gone as `interrupted`; returns their ids."""
    interrupted = []
    with session_scope(engine) as session:
        stale = {q.id for q in training_queue.find_stale_queues(session, settings.recovery.stale_after_seconds)}
        for queue in training_queue.list_queues(session, status=QueueStatus.RUNNING):
            if queue.id in stale or not _owner_alive(queue.checkpoint):
                training_queue.set_queue_status(session, queue.id, QueueStatus.INTERRUPTED, error_message="worker stopped without finishing (crash or kill)")
                training_runs.release_claims(session, queue.id)
                interrupted.append(queue.id)
    return interrupted


def start(engine: Engine, queue_id: int) -> training_queue.QueueRecord:
    """pending/paused/interrupted/failed -> running, recording this process as the worker.

    Claims left by a worker that stopped (a crash, a full disk, a terminated run) are released first,
    so every way a queue stops gives its models back.
    """
    with session_scope(engine) as session:
        queue = _queue(session, queue_id)
        if queue.status in FINISHED_QUEUE_STATUSES:
            raise QueueError(f"queue {queue_id} is {queue.status}; submit the grid again to rerun it")
        if queue.status == QueueStatus.RUNNING and _owner_alive(queue.checkpoint) and (queue.checkpoint or {}).get("owner") != _owner():
            raise QueueError(f"queue {queue_id} is already running in another process ({(queue.checkpoint or {}).get('owner')})")
        if queue.status != QueueStatus.RUNNING:
            training_runs.release_claims(session, queue_id)
        training_queue.set_queue_status(session, queue_id, QueueStatus.RUNNING)
        recount(session, queue_id)
        return training_queue.heartbeat(session, queue_id, checkpoint={**(queue.checkpoint or {}), "owner": _owner()})


def _refuse_finished(session, queue_id: int, action: str) -> None:  # noqa: ANN001 - Session
    queue = _queue(session, queue_id)
    if queue.status in FINISHED_QUEUE_STATUSES:
        raise QueueError(f"queue {queue_id} is {queue.status}; there is nothing to {action}")


def hand_to_daemon(engine: Engine, queue_id: int) -> training_queue.QueueRecord:
    """Mark the queue running in daemon mode: the Dagster daemon's sensor launches its batches."""
    with session_scope(engine) as session:
        queue = training_queue.set_queue_status(session, queue_id, QueueStatus.RUNNING)
        return training_queue.heartbeat(session, queue_id, checkpoint={**(queue.checkpoint or {}), "mode": "daemon", "owner": {}})


def pause(engine: Engine, queue_id: int) -> training_queue.QueueRecord:
    """Finish the model in flight, then stop (a waiting queue pauses at once)."""
    with session_scope(engine) as session:
        _refuse_finished(session, queue_id, "pause")
        return training_queue.request_pause(session, queue_id)


def cancel(engine: Engine, queue_id: int) -> training_queue.QueueRecord:
    """Stop now: flag the queue and interrupt its foreground worker on this host (SIGTERM), which
    abandons the model in flight; finished models stay. Daemon-mode runs see the flag between models."""
    with session_scope(engine) as session:
        _refuse_finished(session, queue_id, "cancel")
        record = training_queue.request_cancel(session, queue_id)
    owner = (record.checkpoint or {}).get("owner") or {}
    if record.cancel_requested and owner.get("host") == socket.gethostname() and owner.get("pid") not in (None, os.getpid()):
        try:
            os.kill(int(owner["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            pass
    return record


def resume(engine: Engine, queue_id: int, settings: Settings) -> training_queue.QueueRecord:
    """Make a paused, interrupted or failed queue runnable again, and give its failed configurations
    another try (the worker is started by the caller). A completed queue with failed configurations
    resumes too: only its failures are trained again."""
    detect_interrupted(engine, settings)
    with session_scope(engine) as session:
        queue = _queue(session, queue_id)
        if queue.status not in (QueueStatus.PAUSED, QueueStatus.INTERRUPTED, QueueStatus.PENDING, QueueStatus.FAILED, QueueStatus.COMPLETED):
            raise QueueError(f"queue {queue_id} is {queue.status}; only paused, interrupted or failed queues resume")
        retried = training_runs.retry_failed(session, queue_id)
        if queue.status == QueueStatus.COMPLETED:
            if not retried:
                raise QueueError(f"queue {queue_id} is completed with no failed configuration; there is nothing to resume")
            training_queue.set_queue_status(session, queue_id, QueueStatus.PAUSED)
        return recount(session, queue_id)


def retry_failed(engine: Engine, queue_id: int, artifacts_dir: Path) -> int:
    """Queue the grid of a stopped queue again, so its failed configurations train once more; returns
    the new queue's id. Only what has no completed run is trained: completed models are found by hash."""
    with session_scope(engine) as session:
        queue = _queue(session, queue_id)
        failed = sum(r.status == RunStatus.FAILED for r in training_runs.runs_of_queue(session, queue_id))
    if queue.status == QueueStatus.RUNNING:
        raise QueueError(f"queue {queue_id} is running; retry its failed configurations once it has stopped")
    if failed == 0:
        raise QueueError(f"queue {queue_id} has no failed configurations to retry")
    return submit_grid(engine, queue.grid_spec, artifacts_dir, name=f"{queue.name} (retry of {queue_id})")


def pause_for_terminated_run(engine: Engine, queue_id: int, dagster_run_id: str) -> training_queue.QueueRecord:
    """A Dagster run of the queue was terminated (from the UI): treat it as a pause, not a crash.

    The run's claims go back to pending (its model in flight trains again on resume), and a running
    queue is asked to pause with a message saying why, so the queue sensor launches nothing more and
    settles it `paused` once no other run is in flight. Idempotent: the op and the run-status sensor
    both call it.
    """
    message = (
        f"paused: Dagster run {dagster_run_id[:8]} was terminated; resume the queue (resume_queue job or "
        f"`forex-pipeline queue resume {queue_id}`) to continue with what is missing"
    )
    with session_scope(engine) as session:
        training_runs.release_claims(session, queue_id, dagster_run_id)
        queue = _queue(session, queue_id)
        if queue.status != QueueStatus.RUNNING or queue.cancel_requested:
            return queue
        training_queue.request_pause(session, queue_id)
        return training_queue.set_queue_status(session, queue_id, QueueStatus.RUNNING, error_message=message)


def status_line(queue: training_queue.QueueRecord) -> str:
    """How a queue reads to a person: `completed, 2 failed`, `running 5/6`, `paused: <why>`."""
    done = queue.completed_models + queue.failed_models
    failed = f", {queue.failed_models} failed" if queue.failed_models else ""
    if queue.status == QueueStatus.RUNNING:
        requested = " (pause requested)" if queue.pause_requested else " (cancel requested)" if queue.cancel_requested else ""
        return f"running {done}/{queue.total_models}{failed}{requested}"
    if queue.status in (QueueStatus.PAUSED, QueueStatus.FAILED, QueueStatus.INTERRUPTED) and queue.error_message:
        return f"{queue.status} {done}/{queue.total_models}{failed}: {queue.error_message}"
    if queue.status == QueueStatus.COMPLETED:
        return f"completed{failed}"
    return f"{queue.status} {done}/{queue.total_models}{failed}"


def progress(queue: training_queue.QueueRecord) -> dict[str, Any]:
    """Progress figures of a queue: done, kept, deleted, elapsed and an estimate of the time left."""
    done = queue.completed_models + queue.failed_models
    started = queue.started_at or queue.created_at
    end = queue.finished_at or datetime.now(timezone.utc)
    elapsed = max((end - started).total_seconds(), 0.0)
    remaining = max(queue.total_models - done, 0)
    eta = elapsed / done * remaining if done and queue.status == QueueStatus.RUNNING else None
    return {
        "id": queue.id, "name": queue.name, "status": queue.status, "total": queue.total_models,
        "completed": queue.completed_models, "failed": queue.failed_models, "kept": queue.kept_models,
        "deleted": queue.deleted_models, "elapsed_seconds": round(elapsed, 1),
        "remaining_seconds": None if eta is None else round(eta, 1), "message": queue.error_message or "",
        "summary": status_line(queue),
    }


def recount(session, queue_id: int) -> training_queue.QueueRecord:  # noqa: ANN001 - Session
    """All counts from the database: completed = the grid's configurations with a completed run
    (whichever queue trained them), failed = this queue's failed runs; used at start and at the end,
    so counts lost in a crash come back."""
    queue = _queue(session, queue_id)
    hashes = [c.model_config_hash for c in configurations_of(queue.grid_spec)]
    runs = training_runs.completed_run_queues(session, hashes)
    completed = len({model_config_hash for model_config_hash, _ in runs})
    skipped = sum(1 for _, run_queue in runs if run_queue != queue_id)
    failed = sum(r.status == RunStatus.FAILED for r in training_runs.runs_of_queue(session, queue_id))
    return training_queue.set_queue_counts(session, queue_id, completed=completed, failed=failed, skipped=skipped)


def finish_if_done(engine: Engine, queue_id: int, stopped_because: str | None) -> training_queue.QueueRecord:
    """Settle the queue's status after a worker stops: completed, paused or cancelled."""
    remaining = pending_configurations(engine, queue_id)
    with session_scope(engine) as session:
        queue = recount(session, queue_id)
        if queue.status != QueueStatus.RUNNING:
            return queue
        if stopped_because in ("cancel", "pause", "error", "disk"):
            training_runs.release_claims(session, queue_id)
        if stopped_because == "cancel":
            return training_queue.set_queue_status(session, queue_id, QueueStatus.CANCELLED)
        if stopped_because == "pause":
            return training_queue.set_queue_status(session, queue_id, QueueStatus.PAUSED)
        if stopped_because == "error":
            return training_queue.set_queue_status(session, queue_id, QueueStatus.FAILED, error_message="a grid_batch Dagster run failed; see its logs, then resume")
        if not remaining:
            message = (
                f"completed, {queue.failed_models} failed: `forex-pipeline queue resume {queue_id}` retries them"
                if queue.failed_models else None
            )
            return training_queue.set_queue_status(session, queue_id, QueueStatus.COMPLETED, error_message=message)
        return queue


def other_live_workers(engine: Engine, queue_id: int) -> bool:
    with session_scope(engine) as session:
        running = [q for q in training_queue.list_queues(session, status=QueueStatus.RUNNING) if q.id != queue_id]
    return any(_owner_alive(q.checkpoint) for q in running)


def settle_and_notify(engine_or_url: Engine | str, settings: Settings, queue_id: int, stopped_because: str | None = None) -> training_queue.QueueRecord:
    """Settle the queue's status after a batch and send queue_complete / queue_failure notifications."""
    from forex_pipeline.reporting.notifications import Notifier, queue_complete_event, queue_failure_event
    from forex_pipeline.store.db import get_engine

    engine = get_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    queue = finish_if_done(engine, queue_id, stopped_because)
    notifier = Notifier.from_settings(settings.notifications)
    if queue.status == QueueStatus.COMPLETED:
        elapsed = ((queue.finished_at or queue.updated_at) - (queue.started_at or queue.created_at)).total_seconds()
        notifier.notify(queue_complete_event(queue.name, queue.completed_models, queue.failed_models, queue.kept_models, elapsed))
    elif queue.status == QueueStatus.FAILED or (queue.status == QueueStatus.PAUSED and queue.error_message and stopped_because in ("failures", "disk")):
        notifier.notify(queue_failure_event(queue.name, queue.error_message, queue.consecutive_failures))
    return queue
