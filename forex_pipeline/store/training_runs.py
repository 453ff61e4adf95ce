"""training_runs: one row per model configuration (its identity, status, model file and kept flag)."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session

from forex_pipeline.keys import RunStatus
from forex_pipeline.store.common import aware_utc, check_status, dialect_insert, in_chunks, is_nan, record_of
from forex_pipeline.store.tables import (
    RUN_STATUSES,
    TrainingQueue,
    TrainingRun,
    json_safe,
    utcnow,
)

if TYPE_CHECKING:
    from forex_pipeline.models.spec import ModelConfiguration


@dataclass(frozen=True)
class TrainingRunRecord:
    """One row of training_runs."""

    id: int
    model_config_hash: str
    partition_key: str
    feature_set_hash: str
    model_spec_hash: str
    feature_set: dict[str, Any]
    model_spec: dict[str, Any]
    symbol: str
    base_timeframe: str
    model_type: str
    encoder: str
    horizon: int
    status: str
    training_seconds: float | None
    backtest_seconds: float | None
    metrics: dict[str, Any] | None
    model_path: str | None
    model_sha256: str | None
    model_bytes: int | None
    kept: bool
    file_deleted_at: datetime | None
    error_message: str | None
    dagster_run_id: str | None
    queue_id: int | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    run_uuid: str | None
    created_by: str | None
    feature_count: int | None
    best_regimes: list[str] | None
    worker_host: str | None
    worker_pid: int | None
    celery_task_id: str | None
    heartbeat_at: datetime | None


@dataclass(frozen=True)
class WorkerIdentity:
    """The process that claims a configuration: host and pid, and the Celery task id when a
    dagster-celery worker runs the step (so a lost step can be failed in the result backend)."""

    host: str
    pid: int
    celery_task_id: str | None = None

    @classmethod
    def this_process(cls, celery_task_id: str | None = None) -> "WorkerIdentity":
        return cls(socket.gethostname(), os.getpid(), celery_task_id)


RUN_IDENTITY_FIELDS: tuple[str, ...] = (
    "partition_key",
    "feature_set_hash",
    "model_spec_hash",
    "feature_set",
    "model_spec",
    "symbol",
    "base_timeframe",
    "model_type",
    "encoder",
    "horizon",
)


def training_run_fields(configuration: ModelConfiguration) -> dict[str, Any]:
    """The identity columns of a training run: the keys and hashes its configuration carries."""
    feature_set, model_spec = configuration.feature_set, configuration.model_spec
    return {
        "model_config_hash": configuration.model_config_hash,
        "partition_key": configuration.partition_key,
        "feature_set_hash": configuration.feature_set_hash,
        "model_spec_hash": configuration.model_spec_hash,
        "feature_set": feature_set.canonical(),
        "model_spec": model_spec.canonical(),
        "symbol": feature_set.symbol,
        "base_timeframe": feature_set.base_timeframe,
        "model_type": model_spec.model_type,
        "encoder": model_spec.encoder,
        "horizon": model_spec.horizon,
    }


def created_by() -> str:
    """Who records a run (the specification's created_by): FOREX_CREATED_BY, else the OS user."""
    explicit = os.environ.get("FOREX_CREATED_BY", "").strip()
    if explicit:
        return explicit[:100]
    try:
        return getpass.getuser()[:100]
    except (KeyError, OSError):  # no passwd entry (containers): still say something true
        return f"uid {os.getuid()}"


def _run_values(identity: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Validated column values of a new training run: every identity field, nothing unknown."""
    required = ("model_config_hash", *RUN_IDENTITY_FIELDS)
    label = identity.get("model_config_hash") or "<no model_config_hash>"
    missing = [name for name in required if identity.get(name) is None]
    unknown = sorted(set(identity) - set(required))
    if missing or unknown:
        raise ValueError(f"training run {label}: missing field(s) {missing}, unknown field(s) {unknown}")
    if "status" in extra:
        check_status(extra["status"], RUN_STATUSES, "training run")
    return {**{name: identity[name] for name in required}, "created_by": created_by(), **extra}


def insert_training_run(
    session: Session,
    identity: Mapping[str, Any],
    *,
    queue_id: int | None = None,
    dagster_run_id: str | None = None,
    status: str = RunStatus.PENDING,
) -> TrainingRunRecord:
    """Insert a new training run (identity: see training_run_fields); a duplicate hash raises IntegrityError."""
    extra = {"queue_id": queue_id, "dagster_run_id": dagster_run_id, "status": status}
    row = TrainingRun(**_run_values(identity, extra))
    session.add(row)
    session.flush()
    return record_of(TrainingRunRecord, row)


def upsert_training_run(
    session: Session,
    identity: Mapping[str, Any],
    *,
    queue_id: int | None = None,
    dagster_run_id: str | None = None,
) -> TrainingRunRecord:
    """Insert the run if its model_config_hash is new, else attach it to `queue_id`/`dagster_run_id`.

    Safe with parallel writers (INSERT .. ON CONFLICT); an existing run's status and results stay.
    """
    values = _run_values(identity, {"queue_id": queue_id, "dagster_run_id": dagster_run_id})
    statement = dialect_insert(session, TrainingRun).values(
        **values, status=RunStatus.PENDING, kept=False, created_at=utcnow()
    )
    changes = {k: v for k, v in (("queue_id", queue_id), ("dagster_run_id", dagster_run_id)) if v is not None}
    if changes:
        statement = statement.on_conflict_do_update(index_elements=["model_config_hash"], set_=changes)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=["model_config_hash"])
    session.execute(statement)
    record = get_training_run_by_hash(session, values["model_config_hash"])
    if record is None:
        raise LookupError(f"training run {values['model_config_hash']} vanished right after its upsert")
    return record


def get_training_run_by_hash(session: Session, model_config_hash: str) -> TrainingRunRecord | None:
    """The training run of one model configuration, or None."""
    statement = select(TrainingRun).where(TrainingRun.model_config_hash == model_config_hash)
    row = session.scalars(statement.execution_options(populate_existing=True)).one_or_none()
    return None if row is None else record_of(TrainingRunRecord, row)


def get_training_run(session: Session, training_run_id: int) -> TrainingRunRecord | None:
    """The training run with this id, or None."""
    row = session.get(TrainingRun, training_run_id, populate_existing=True)
    return None if row is None else record_of(TrainingRunRecord, row)


def get_training_runs(session: Session, training_run_ids: Iterable[int]) -> list[TrainingRunRecord]:
    """The training runs with these ids, in the order asked (ids with no run are left out)."""
    ids = list(dict.fromkeys(int(i) for i in training_run_ids))
    rows = {row.id: row for chunk in in_chunks(ids) for row in session.scalars(select(TrainingRun).where(TrainingRun.id.in_(chunk)))}
    return [record_of(TrainingRunRecord, rows[i]) for i in ids if i in rows]


def delete_training_runs(session: Session, training_run_ids: Iterable[int]) -> int:
    """Delete these runs; their backtests go with them (ON DELETE CASCADE). Callers check first that none is
    a regime best (pipeline/keep_or_delete.delete_runs); returns how many rows were deleted."""
    ids = list(dict.fromkeys(int(i) for i in training_run_ids))
    deleted = 0
    for chunk in in_chunks(ids):
        deleted += session.execute(delete(TrainingRun).where(TrainingRun.id.in_(chunk))).rowcount or 0
    return deleted


def mark_run_status(
    session: Session,
    model_config_hash: str,
    status: str,
    *,
    error_message: str | None = None,
    training_seconds: float | None = None,
    backtest_seconds: float | None = None,
    metrics: Mapping[str, Any] | None = None,
    model_path: str | None = None,
    model_sha256: str | None = None,
    model_bytes: int | None = None,
    dagster_run_id: str | None = None,
    feature_count: int | None = None,
) -> TrainingRunRecord:
    """Move a run to `status`; `running` stamps started_at, `completed`/`failed` stamp completed_at.

    Fields given as None keep their value, except error_message, which is cleared on `running`
    and `completed`.
    """
    check_status(status, RUN_STATUSES, "training run")
    now = utcnow()
    values: dict[str, Any] = {"status": status}
    if status == RunStatus.RUNNING:
        values.update(started_at=now, completed_at=None, error_message=None)
    elif status in (RunStatus.COMPLETED, RunStatus.FAILED):
        values["completed_at"] = now
    if status == RunStatus.COMPLETED:
        values["error_message"] = None
    updates = {
        "error_message": error_message,
        "training_seconds": None if is_nan(training_seconds) else training_seconds,
        "backtest_seconds": None if is_nan(backtest_seconds) else backtest_seconds,
        "metrics": json_safe(dict(metrics)) if metrics is not None else None,
        "model_path": model_path,
        "model_sha256": model_sha256,
        "model_bytes": model_bytes,
        "dagster_run_id": dagster_run_id,
        "feature_count": feature_count,
    }
    values.update({name: value for name, value in updates.items() if value is not None})
    statement = (
        update(TrainingRun).where(TrainingRun.model_config_hash == model_config_hash).values(**values).returning(TrainingRun)
    )
    session.flush()
    row = session.scalars(statement.execution_options(synchronize_session=False, populate_existing=True)).one_or_none()
    if row is None:
        raise LookupError(f"no training run with model_config_hash {model_config_hash!r}")
    return record_of(TrainingRunRecord, row)


def find_completed_hashes(session: Session, hashes: Iterable[str]) -> set[str]:
    """The subset of `hashes` whose training run is completed (what a queue may skip)."""
    return {model_config_hash for model_config_hash, _ in completed_run_queues(session, hashes)}


def completed_run_queues(session: Session, hashes: Iterable[str]) -> list[tuple[str, int | None]]:
    """(model_config_hash, queue_id) of every completed run of `hashes`: a queue's completed and skipped
    counts both come from this one pass over the grid's hashes."""
    wanted = sorted(set(hashes))
    rows: list[tuple[str, int | None]] = []
    for chunk in in_chunks(wanted):
        statement = select(TrainingRun.model_config_hash, TrainingRun.queue_id).where(
            TrainingRun.model_config_hash.in_(chunk), TrainingRun.status == RunStatus.COMPLETED
        )
        rows.extend((str(h), q) for h, q in session.execute(statement))
    return rows


@dataclass(frozen=True)
class RunDuration:
    """What a completed run measured: its specs, its model work and its wall time from claim to record."""

    model_type: str
    base_timeframe: str
    feature_set: dict[str, Any]
    model_spec: dict[str, Any]
    training_seconds: float
    backtest_seconds: float | None
    started_at: datetime | None
    completed_at: datetime | None

    @property
    def wall_seconds(self) -> float | None:
        """Claim to record: the model work plus its share of bars, features, references and recording."""
        if self.started_at is None or self.completed_at is None:
            return None
        return (self.completed_at - self.started_at).total_seconds()


def recent_durations(session: Session, model_types: Iterable[str], per_timeframe: int) -> list[RunDuration]:
    """The `per_timeframe` latest completed runs of each (model type, base timeframe) among
    `model_types`, in one query (what the plan's time estimate is calibrated on)."""
    wanted = sorted(set(model_types))
    if not wanted or per_timeframe < 1:
        return []
    recency = func.row_number().over(
        partition_by=(TrainingRun.model_type, TrainingRun.base_timeframe),
        order_by=(TrainingRun.completed_at.desc(), TrainingRun.id.desc()),
    )
    ranked = (
        select(TrainingRun.id, recency.label("recency"))
        .where(TrainingRun.status == RunStatus.COMPLETED, TrainingRun.model_type.in_(wanted), TrainingRun.training_seconds.is_not(None))
        .subquery()
    )
    statement = (
        select(*(getattr(TrainingRun, f.name) for f in fields(RunDuration)))
        .join(ranked, ranked.c.id == TrainingRun.id)
        .where(ranked.c.recency <= per_timeframe)
        .order_by(TrainingRun.model_type, TrainingRun.base_timeframe, ranked.c.recency)
    )
    return [RunDuration(*row) for row in session.execute(statement)]


def runs_of_queue(session: Session, queue_id: int) -> list[TrainingRunRecord]:
    """Every training run attached to a queue, oldest first."""
    rows = session.scalars(select(TrainingRun).where(TrainingRun.queue_id == queue_id).order_by(TrainingRun.id))
    return [record_of(TrainingRunRecord, row) for row in rows]


def mark_file_deleted(session: Session, training_run_id: int, at: datetime | None = None) -> TrainingRunRecord:
    """Record that a run's model file was deleted (its metadata stays)."""
    row = session.get(TrainingRun, training_run_id)
    if row is None:
        raise LookupError(f"no training run with id {training_run_id}")
    row.file_deleted_at = aware_utc(at, "file_deleted_at") if at is not None else utcnow()
    session.flush()
    return record_of(TrainingRunRecord, row)


def claim_training_run(
    session: Session,
    identity: Mapping[str, Any],
    *,
    queue_id: int | None,
    dagster_run_id: str | None,
    stale_after_seconds: float,
    worker: WorkerIdentity | None = None,
) -> tuple[bool, TrainingRunRecord]:
    """Atomically take a configuration for training: (True, run) if this worker trains it now.

    A completed run is never claimed again; a `running` one only when its lease (heartbeat_at, else
    started_at) is older than `stale_after_seconds` (its worker died). One conditional UPDATE, so
    parallel workers never train the same configuration twice. The claim records its worker.
    """
    worker = worker or WorkerIdentity.this_process()
    upsert_training_run(session, identity, queue_id=queue_id)
    now = utcnow()
    stale = now - timedelta(seconds=stale_after_seconds)
    result = session.execute(
        update(TrainingRun)
        .where(
            TrainingRun.model_config_hash == identity["model_config_hash"],
            or_(
                TrainingRun.status.in_((RunStatus.PENDING, RunStatus.FAILED)),
                (TrainingRun.status == RunStatus.RUNNING) & (_lease_time() < stale),
            ),
        )
        .values(
            status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, dagster_run_id=dagster_run_id, queue_id=queue_id,
            error_message=None, worker_host=worker.host, worker_pid=worker.pid, celery_task_id=worker.celery_task_id,
        )
        .execution_options(synchronize_session=False)
    )
    run = get_training_run_by_hash(session, identity["model_config_hash"])
    assert run is not None  # upserted above
    return result.rowcount == 1, run


def _lease_time() -> Any:
    """When a claim last showed life: its heartbeat, else its start (claims recorded before leases)."""
    return func.coalesce(TrainingRun.heartbeat_at, TrainingRun.started_at, TrainingRun.created_at)


def renew_leases(session: Session, worker: WorkerIdentity) -> int:
    """Stamp heartbeat_at on every `running` claim of this worker process; returns how many."""
    result = session.execute(
        update(TrainingRun)
        .where(TrainingRun.status == RunStatus.RUNNING, TrainingRun.worker_host == worker.host, TrainingRun.worker_pid == worker.pid)
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def running_claims(session: Session) -> list[TrainingRunRecord]:
    """Every `running` claim, oldest first (what the lost-claim check looks at: O(workers), not O(grid))."""
    rows = session.scalars(
        select(TrainingRun).where(TrainingRun.status == RunStatus.RUNNING).order_by(TrainingRun.id).execution_options(populate_existing=True)
    )
    return [record_of(TrainingRunRecord, row) for row in rows]


def claim_expired(run: TrainingRunRecord, stale_after_seconds: float, now: datetime | None = None) -> bool:
    """True when a running claim's lease (heartbeat, else start) is older than `stale_after_seconds`."""
    seen = run.heartbeat_at or run.started_at or run.created_at
    now = aware_utc(now, "now") if now is not None else utcnow()
    return seen < now - timedelta(seconds=stale_after_seconds)


def release_claim(session: Session, run_id: int, *, worker: WorkerIdentity | None) -> bool:
    """A lost claim goes back to pending, only if it is still the same claim (same worker, still running):
    a worker that finished meanwhile keeps its result. Returns whether it was released."""
    conditions = [TrainingRun.id == run_id, TrainingRun.status == RunStatus.RUNNING]
    if worker is not None:
        conditions += [TrainingRun.worker_host == worker.host, TrainingRun.worker_pid == worker.pid]
    result = session.execute(
        update(TrainingRun).where(*conditions).values(status=RunStatus.PENDING, started_at=None).execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release_claims(session: Session, queue_id: int, dagster_run_id: str | None = None) -> int:
    """Training runs of this queue left `running` by a stopped worker go back to pending; returns how many.
    With `dagster_run_id`, only the claims of that Dagster run (other runs of the queue keep theirs)."""
    conditions = [TrainingRun.queue_id == queue_id, TrainingRun.status == RunStatus.RUNNING]
    if dagster_run_id is not None:
        conditions.append(TrainingRun.dagster_run_id == dagster_run_id)
    result = session.execute(
        update(TrainingRun)
        .where(*conditions)
        .values(status=RunStatus.PENDING)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def set_kept(
    session: Session,
    before: set[int],
    after: set[int],
    *,
    delete_files: bool = False,
    best_regimes: Mapping[int, Iterable[str]] | None = None,
) -> list[TrainingRunRecord]:
    """kept := in the new bests, for the runs whose fate can change (old bests, the new model, new bests);
    returns the runs that just left every top N and still hold a file. With `delete_files` those are
    marked deleted (file_deleted_at) in the same statements; with `best_regimes` (run -> the regimes
    whose top N holds it) each of these runs' best_regimes is set too (set_best_regimes).

    Touches O(regimes x top N) rows, never the whole table, writes only the rows that change (one
    UPDATE per distinct change), and moves each queue's kept / deleted counts by exactly the changes
    made (no rescan of the queue's runs): a handful of statements.
    """
    run = TrainingRun
    touched = sorted(before | after)
    if not touched:
        return []
    state = {
        int(row.id): row
        for row in session.execute(
            select(run.id, run.queue_id, run.kept, run.model_path, run.file_deleted_at, run.best_regimes).where(run.id.in_(touched))
        )
    }
    now_kept = sorted(i for i in after if i in state and not state[i].kept)
    now_unkept = sorted(i for i in before - after if i in state and state[i].kept)
    dropped = sorted(i for i in before - after if i in state)
    to_delete = [i for i in dropped if state[i].model_path is not None and state[i].file_deleted_at is None]
    deleting = set(to_delete) if delete_files else set()
    changes: dict[tuple[tuple[str, Any], ...], list[int]] = {}
    for i in sorted(state):
        change: dict[str, Any] = {}
        if i in now_kept or i in now_unkept:
            change["kept"] = i in now_kept
        if best_regimes is not None:
            names = sorted(set(best_regimes.get(i, ())))
            if state[i].best_regimes != names:
                change["best_regimes"] = tuple(names)
        if i in deleting:
            change["file_deleted_at"] = True
        if change:
            changes.setdefault(tuple(sorted(change.items())), []).append(i)
    now = utcnow()
    for change, ids in changes.items():
        values = {k: (now if k == "file_deleted_at" else list(v) if k == "best_regimes" else v) for k, v in change}
        session.execute(update(run).where(run.id.in_(ids)).values(**values).execution_options(synchronize_session=False))
    deltas: dict[int, list[int]] = {}
    for ids, position, sign in ((now_kept, 0, 1), (now_unkept, 0, -1), (to_delete if delete_files else [], 1, 1)):
        for i in ids:
            if state[i].queue_id is not None:
                deltas.setdefault(int(state[i].queue_id), [0, 0])[position] += sign
    _move_queue_counts(session, deltas)
    if not to_delete:
        return []
    rows = session.scalars(
        select(run).where(run.id.in_(to_delete)).order_by(run.id).execution_options(populate_existing=True)
    )
    return [record_of(TrainingRunRecord, row) for row in rows]


def _move_queue_counts(session: Session, deltas: Mapping[int, list[int]]) -> None:
    """Add (kept, deleted) deltas to each queue's counts: one UPDATE, executed once per queue."""
    changes = [{"b_queue": q, "b_kept": k, "b_deleted": d} for q, (k, d) in sorted(deltas.items()) if k or d]
    if not changes:
        return
    queue = TrainingQueue.__table__
    session.execute(
        update(queue)
        .where(queue.c.id == bindparam("b_queue"))
        .values(kept_models=queue.c.kept_models + bindparam("b_kept"), deleted_models=queue.c.deleted_models + bindparam("b_deleted")),
        changes,
    )


def set_best_regimes(session: Session, runs: Iterable[int], regimes_by_run: Mapping[int, Iterable[str]]) -> None:
    """best_regimes := the regimes whose top N holds the run ([] when none), for the runs whose place
    can have changed in this transaction (the same O(regimes x top N) set as set_kept)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for run_id in sorted(set(runs)):
        groups.setdefault(tuple(sorted(set(regimes_by_run.get(run_id, ())))), []).append(run_id)
    for names, ids in groups.items():
        session.execute(
            update(TrainingRun).where(TrainingRun.id.in_(ids)).values(best_regimes=list(names)).execution_options(synchronize_session=False)
        )


def model_paths_on_disk(session: Session) -> list[str]:
    """Model paths the database holds as present (recorded and not deleted)."""
    return list(
        session.scalars(
            select(TrainingRun.model_path).where(TrainingRun.model_path.is_not(None), TrainingRun.file_deleted_at.is_(None))
        ).all()
    )


def quarantine_run(session: Session, training_run_id: int, message: str) -> TrainingRunRecord:
    """A run whose model file failed its checksum: no longer kept, file gone (quarantined), status
    failed with the reason, so `queue resume` (or a new grid) trains the configuration again."""
    row = session.get(TrainingRun, training_run_id, populate_existing=True)
    if row is None:
        raise LookupError(f"no training run with id {training_run_id}")
    row.status, row.kept, row.error_message = RunStatus.FAILED, False, message[:8000]
    row.file_deleted_at = row.file_deleted_at or utcnow()
    session.flush()
    return record_of(TrainingRunRecord, row)


def release_run(session: Session, model_config_hash: str) -> None:
    """A claimed (`running`) run goes back to pending, its claim undone (the work was not its fault)."""
    session.execute(
        update(TrainingRun)
        .where(TrainingRun.model_config_hash == model_config_hash, TrainingRun.status == RunStatus.RUNNING)
        .values(status=RunStatus.PENDING, started_at=None)
        .execution_options(synchronize_session=False)
    )


def retry_failed(session: Session, queue_id: int) -> int:
    """This queue's failed runs go back to pending so the next worker trains them again; returns how many."""
    result = session.execute(
        update(TrainingRun)
        .where(TrainingRun.queue_id == queue_id, TrainingRun.status == RunStatus.FAILED)
        .values(status=RunStatus.PENDING)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
