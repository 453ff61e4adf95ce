"""training_queue: one row per submitted grid, its status, counts, flags and heartbeat."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from forex_pipeline.keys import QueueStatus
from forex_pipeline.store.common import aware_utc, check_status, record_of
from forex_pipeline.store.tables import (
    QUEUE_STATUSES,
    TrainingQueue,
    TrainingRun,
    json_safe,
    utcnow,
)

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class QueueRecord:
    """One row of training_queue."""

    id: int
    name: str
    grid_spec: dict[str, Any]
    grid_hash: str
    status: str
    total_models: int
    completed_models: int
    failed_models: int
    kept_models: int
    deleted_models: int
    consecutive_failures: int
    checkpoint: dict[str, Any] | None
    dagster_run_ids: list[str]
    pause_requested: bool
    cancel_requested: bool
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None
    queue_uuid: str | None
    skipped_count: int
    paused_at: datetime | None
    priority: int
    max_parallel: int


QUEUE_TRANSITIONS: dict[str, tuple[str, ...]] = {
    QueueStatus.PENDING: (QueueStatus.RUNNING, QueueStatus.PAUSED, QueueStatus.CANCELLED, QueueStatus.FAILED),
    QueueStatus.RUNNING: (QueueStatus.PAUSED, QueueStatus.CANCELLED, QueueStatus.COMPLETED, QueueStatus.FAILED, QueueStatus.INTERRUPTED),
    QueueStatus.PAUSED: (QueueStatus.RUNNING, QueueStatus.CANCELLED),
    QueueStatus.INTERRUPTED: (QueueStatus.RUNNING, QueueStatus.PAUSED, QueueStatus.CANCELLED, QueueStatus.FAILED),
    QueueStatus.FAILED: (QueueStatus.RUNNING, QueueStatus.CANCELLED),
    QueueStatus.COMPLETED: (QueueStatus.PAUSED,),
    QueueStatus.CANCELLED: (),
}
QUEUE_FINISHED = (QueueStatus.COMPLETED, QueueStatus.CANCELLED, QueueStatus.FAILED)


def create_queue(
    session: Session,
    name: str,
    grid_spec: Mapping[str, Any],
    grid_hash: str,
    total_models: int,
    *,
    priority: int = 0,
    max_parallel: int = 1,
) -> QueueRecord:
    """A new pending queue over a grid of `total_models` model configurations.

    `priority`: queues with a higher one are served first; `max_parallel`: at most this many batch
    runs of the queue at once (the specification's queue fields)."""
    if not name.strip():
        raise ValueError("queue name is empty")
    if total_models < 0:
        raise ValueError(f"queue {name!r}: total_models {total_models} is negative")
    if max_parallel < 1:
        raise ValueError(f"queue {name!r}: max_parallel {max_parallel} must be >= 1")
    row = TrainingQueue(
        name=name,
        grid_spec=json_safe(dict(grid_spec)),
        grid_hash=grid_hash,
        total_models=total_models,
        dagster_run_ids=[],
        priority=int(priority),
        max_parallel=int(max_parallel),
    )
    session.add(row)
    session.flush()
    return record_of(QueueRecord, row)


def get_queue(session: Session, queue_id: int) -> QueueRecord | None:
    """One queue as it is in the database now, or None."""
    row = session.get(TrainingQueue, queue_id, populate_existing=True)
    return None if row is None else record_of(QueueRecord, row)


def by_priority(queues: list[QueueRecord]) -> list[QueueRecord]:
    """Queues in the order they are served: higher priority first, then the older queue."""
    return sorted(queues, key=lambda q: (-q.priority, q.id))


def list_queues(session: Session, *, status: str | None = None) -> list[QueueRecord]:
    """Queues, newest first, optionally of one status."""
    statement = select(TrainingQueue).order_by(TrainingQueue.id.desc()).execution_options(populate_existing=True)
    if status is not None:
        check_status(status, QUEUE_STATUSES, "queue")
        statement = statement.where(TrainingQueue.status == status)
    return [record_of(QueueRecord, row) for row in session.scalars(statement)]


def _queue_row(session: Session, queue_id: int, *, lock: bool = True) -> TrainingQueue:
    """The queue row, re-read (and row-locked on PostgreSQL) so decisions use the current state."""
    statement = select(TrainingQueue).where(TrainingQueue.id == queue_id).execution_options(populate_existing=True)
    row = session.scalars(statement.with_for_update() if lock else statement).one_or_none()
    if row is None:
        raise LookupError(f"no training queue with id {queue_id}")
    return row


def update_queue_counts(
    session: Session,
    queue_id: int,
    *,
    completed: int = 0,
    failed: int = 0,
    kept: int = 0,
    deleted: int = 0,
    consecutive_failures: int | None = None,
) -> QueueRecord:
    """Add to the queue's counters atomically (parallel runs do not lose updates).

    consecutive_failures None means: reset to 0 when a model completed, else add `failed`.
    """
    if min(completed, failed, kept, deleted) < 0:
        raise ValueError(f"queue {queue_id}: count increments must be >= 0")
    column = TrainingQueue.consecutive_failures
    streak: Any = consecutive_failures if consecutive_failures is not None else (0 if completed else column + failed)
    row = session.scalars(
        update(TrainingQueue)
        .where(TrainingQueue.id == queue_id)
        .values(
            completed_models=TrainingQueue.completed_models + completed,
            failed_models=TrainingQueue.failed_models + failed,
            kept_models=TrainingQueue.kept_models + kept,
            deleted_models=TrainingQueue.deleted_models + deleted,
            consecutive_failures=streak,
            updated_at=utcnow(),
        )
        .returning(TrainingQueue)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).one_or_none()
    if row is None:
        raise LookupError(f"no training queue with id {queue_id}")
    return record_of(QueueRecord, row)


def set_queue_status(session: Session, queue_id: int, status: str, *, error_message: str | None = None) -> QueueRecord:
    """Move a queue along QUEUE_TRANSITIONS (same status is a no-op); stamps started/finished times."""
    check_status(status, QUEUE_STATUSES, "queue")
    row = _queue_row(session, queue_id)
    if status != row.status and status not in QUEUE_TRANSITIONS[row.status]:
        allowed = ", ".join(QUEUE_TRANSITIONS[row.status]) or "none (finished)"
        raise ValueError(f"queue {queue_id}: cannot go from {row.status!r} to {status!r}; allowed: {allowed}")
    now = utcnow()
    if status == QueueStatus.RUNNING and row.status != QueueStatus.RUNNING:
        row.started_at = row.started_at or now
        row.heartbeat_at, row.finished_at, row.pause_requested, row.error_message = now, None, False, None
    if status == QueueStatus.PAUSED:
        row.pause_requested = False
        if row.status != QueueStatus.PAUSED:
            row.paused_at = now
    if status in QUEUE_FINISHED:
        row.finished_at = now
    if error_message is not None:
        row.error_message = error_message
    row.status = status
    session.flush()
    return record_of(QueueRecord, row)


def _request(session: Session, queue_id: int, flag: str, at_once: QueueStatus) -> QueueRecord:
    """Raise `flag` on a running queue (its worker acts between models); a waiting queue goes to `at_once`."""
    row = _queue_row(session, queue_id)
    if row.status == QueueStatus.RUNNING:
        setattr(row, flag, True)
        session.flush()
        return record_of(QueueRecord, row)
    return set_queue_status(session, queue_id, at_once)


def request_pause(session: Session, queue_id: int) -> QueueRecord:
    """Pause: a running queue finishes its current model then stops; a waiting one pauses at once."""
    return _request(session, queue_id, "pause_requested", QueueStatus.PAUSED)


def request_cancel(session: Session, queue_id: int) -> QueueRecord:
    """Cancel: a running queue stops now (finished work stays); a waiting one is cancelled at once."""
    return _request(session, queue_id, "cancel_requested", QueueStatus.CANCELLED)


def heartbeat(session: Session, queue_id: int, *, checkpoint: Mapping[str, Any] | None = None) -> QueueRecord:
    """Stamp heartbeat_at (and store a checkpoint); the record tells the worker about pause/cancel requests.

    One UPDATE .. RETURNING: it takes the row lock an UPDATE takes, so after update_queue_counts in the same
    transaction it upgrades nothing (a SELECT .. FOR UPDATE there deadlocked with a parallel keep-or-delete
    waiting to move the same queue's kept counts)."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if checkpoint is not None:
        values["checkpoint"] = json_safe(dict(checkpoint))
    row = session.scalars(
        update(TrainingQueue)
        .where(TrainingQueue.id == queue_id)
        .values(**values)
        .returning(TrainingQueue)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).one_or_none()
    if row is None:
        raise LookupError(f"no training queue with id {queue_id}")
    return record_of(QueueRecord, row)


def add_queue_dagster_run(session: Session, queue_id: int, dagster_run_id: str) -> QueueRecord:
    """Remember a Dagster run launched for the queue (once)."""
    row = _queue_row(session, queue_id)
    if dagster_run_id not in row.dagster_run_ids:
        row.dagster_run_ids = [*row.dagster_run_ids, dagster_run_id]
        session.flush()
    return record_of(QueueRecord, row)


def find_stale_queues(
    session: Session, stale_after_seconds: float, *, now: datetime | None = None
) -> list[QueueRecord]:
    """Running queues whose last heartbeat (or start) is older than `stale_after_seconds`: crashed workers."""
    cutoff = (aware_utc(now, "now") if now is not None else utcnow()) - timedelta(seconds=stale_after_seconds)
    last_seen = func.coalesce(TrainingQueue.heartbeat_at, TrainingQueue.started_at, TrainingQueue.created_at)
    statement = (
        select(TrainingQueue)
        .where(TrainingQueue.status == QueueStatus.RUNNING, last_seen < cutoff)
        .order_by(TrainingQueue.id)
        .execution_options(populate_existing=True)
    )
    return [record_of(QueueRecord, row) for row in session.scalars(statement)]


def refresh_kept_deleted(session: Session, queue_id: int) -> QueueRecord:
    """Kept and deleted counts of the queue's models as they are now: later models push earlier ones out."""
    kept, deleted = session.execute(
        select(
            func.count().filter(TrainingRun.kept.is_(True)),
            func.count().filter(TrainingRun.file_deleted_at.is_not(None)),
        ).where(TrainingRun.queue_id == queue_id)
    ).one()
    row = _queue_row(session, queue_id)
    row.kept_models, row.deleted_models = int(kept), int(deleted)
    session.flush()
    return record_of(QueueRecord, row)


def set_queue_counts(session: Session, queue_id: int, *, completed: int, failed: int, skipped: int = 0) -> QueueRecord:
    """Overwrite completed/failed/skipped counts (recounted by the caller from the grid), then refresh
    kept/deleted. `skipped` (already trained elsewhere) is part of `completed`."""
    if not 0 <= skipped <= completed:
        raise ValueError(f"queue {queue_id}: skipped {skipped} must lie in [0, completed {completed}]")
    row = _queue_row(session, queue_id)
    row.completed_models, row.failed_models, row.skipped_count = completed, failed, skipped
    session.flush()
    return refresh_kept_deleted(session, queue_id)
