"""training_queue: transitions, flags, counts, stale queues."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine

from forex_pipeline.store import training_queue, training_runs
from forex_pipeline.store.db import session_scope
from forex_pipeline.store.tables import TrainingQueue

from .conftest import run_identity


def test_queue_lifecycle(engine: Engine) -> None:
    with session_scope(engine) as session:
        queue = training_queue.create_queue(session, "grid A", {"models": ["ridge"]}, "h" * 64, total_models=4)
    assert (queue.status, queue.completed_models, queue.dagster_run_ids) == ("pending", 0, [])
    with session_scope(engine) as session:
        running = training_queue.set_queue_status(session, queue.id, "running")
        training_queue.add_queue_dagster_run(session, queue.id, "run-1")
        training_queue.add_queue_dagster_run(session, queue.id, "run-1")
        training_queue.update_queue_counts(session, queue.id, failed=1)
        training_queue.update_queue_counts(session, queue.id, failed=1)
        after_failures = training_queue.get_queue(session, queue.id)
        counted = training_queue.update_queue_counts(session, queue.id, completed=1, kept=1)
    assert running.started_at is not None and running.heartbeat_at is not None
    assert after_failures.consecutive_failures == 2
    assert (counted.completed_models, counted.failed_models, counted.kept_models) == (1, 2, 1)
    assert counted.consecutive_failures == 0 and counted.dagster_run_ids == ["run-1"]

    with session_scope(engine) as session:
        flagged = training_queue.request_pause(session, queue.id)
        beat = training_queue.heartbeat(session, queue.id, checkpoint={"done": ["a"], "sharpe": float("nan")})
    assert flagged.status == "running" and flagged.pause_requested and beat.pause_requested
    assert beat.checkpoint == {"done": ["a"], "sharpe": None}
    with session_scope(engine) as session:
        paused = training_queue.set_queue_status(session, queue.id, "paused")
        resumed = training_queue.set_queue_status(session, queue.id, "running")
        cancelling = training_queue.request_cancel(session, queue.id)
        cancelled = training_queue.set_queue_status(session, queue.id, "cancelled")
    assert paused.status == "paused" and not paused.pause_requested
    assert resumed.started_at == running.started_at and cancelling.cancel_requested
    assert cancelled.finished_at is not None
    with session_scope(engine) as session, pytest.raises(ValueError, match="from 'cancelled' to 'running'"):
        training_queue.set_queue_status(session, queue.id, "running")
    with session_scope(engine) as session, pytest.raises(ValueError, match="status 'sleeping'"):
        training_queue.set_queue_status(session, queue.id, "sleeping")


def test_waiting_queues_pause_and_cancel_at_once_and_stale_ones_are_found(engine: Engine) -> None:
    with session_scope(engine) as session:
        a = training_queue.create_queue(session, "a", {}, "a", 1)
        b = training_queue.create_queue(session, "b", {}, "b", 1)
        c = training_queue.create_queue(session, "c", {}, "c", 1)
        assert training_queue.request_pause(session, a.id).status == "paused"
        assert training_queue.request_cancel(session, b.id).status == "cancelled"
        training_queue.set_queue_status(session, c.id, "running")
    with session_scope(engine) as session:
        assert training_queue.find_stale_queues(session, 60) == []
        later = datetime.now(timezone.utc) + timedelta(minutes=5)
        assert [q.id for q in training_queue.find_stale_queues(session, 60, now=later)] == [c.id]
        assert [q.name for q in training_queue.list_queues(session)] == ["c", "b", "a"]
        assert [q.name for q in training_queue.list_queues(session, status="paused")] == ["a"]
        with pytest.raises(LookupError, match="12345"):
            training_queue.heartbeat(session, 12345)


def test_queue_counts_from_its_runs(engine: Engine) -> None:
    with session_scope(engine) as session:
        queue = training_queue.create_queue(session, "q", {}, "q", 3)
        for n, status in enumerate(["completed", "completed", "failed"]):
            run = training_runs.insert_training_run(session, run_identity(n), queue_id=queue.id, status=status)
        training_runs.mark_file_deleted(session, run.id)
        recounted = training_queue.set_queue_counts(session, queue.id, completed=2, failed=1)
        assert len(training_runs.runs_of_queue(session, queue.id)) == 3
    assert (recounted.completed_models, recounted.failed_models, recounted.deleted_models) == (2, 1, 1)
    with session_scope(engine) as session:
        session.delete(session.get(TrainingQueue, queue.id))
    with session_scope(engine) as session:
        assert training_runs.get_training_run(session, run.id).queue_id is None


def test_set_kept_moves_the_queue_counts_by_its_changes(engine: Engine) -> None:
    """Kept / deleted counts maintained by set_kept (no rescan) equal a count of the queues' runs."""
    with session_scope(engine) as session:
        queues = [training_queue.create_queue(session, name, {}, name, 4).id for name in ("q1", "q2")]
        runs = []
        for n in range(6):
            run = training_runs.insert_training_run(session, run_identity(n), queue_id=queues[n % 2], status="completed")
            training_runs.mark_run_status(session, run.model_config_hash, "completed", model_path=f"m/{n}.joblib")
            runs.append(run.id)
    steps = [(set(), {runs[0], runs[1]}), ({runs[0], runs[1], runs[2]}, {runs[1], runs[2]}),
             ({runs[1], runs[2], runs[3]}, {runs[3], runs[4]}), ({runs[3], runs[4], runs[5]}, {runs[3], runs[4], runs[5]})]
    for before, after in steps:
        with session_scope(engine) as session:
            deleted = training_runs.set_kept(session, before, after, delete_files=True)
            assert {r.id for r in deleted} == before - after
    with session_scope(engine) as session:
        for queue_id in queues:
            mine = training_runs.runs_of_queue(session, queue_id)
            queue = training_queue.get_queue(session, queue_id)
            assert queue.kept_models == sum(r.kept for r in mine)
            assert queue.deleted_models == sum(r.file_deleted_at is not None for r in mine)
        assert sum(training_queue.get_queue(session, q).kept_models for q in queues) == 3
        assert sum(training_queue.get_queue(session, q).deleted_models for q in queues) == 3
