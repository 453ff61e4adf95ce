"""The heartbeat thread renews the leases of this worker's claims (and only those) and its queue's heartbeat."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from forex_pipeline.pipeline.heartbeat import heartbeat_thread
from forex_pipeline.queue import lifecycle
from forex_pipeline.settings import get_settings
from forex_pipeline.store import training_queue, training_runs
from forex_pipeline.store.db import get_engine, session_scope
from forex_pipeline.store.tables import TrainingRun, TrainingQueue
from forex_pipeline.store.training_runs import WorkerIdentity
from tests.support import TINY_GRID


def test_a_beat_renews_this_workers_claims_and_its_queue(grid_env) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    mine, theirs = WorkerIdentity("alpha", 101), WorkerIdentity("beta", 202)
    first, second = lifecycle.configurations_of(TINY_GRID)[:2]
    long_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    with session_scope(engine) as session:
        for configuration, worker in ((first, mine), (second, theirs)):
            training_runs.claim_training_run(
                session, training_runs.training_run_fields(configuration), queue_id=queue_id,
                dagster_run_id=None, stale_after_seconds=300, worker=worker,
            )
        session.query(TrainingRun).update({"heartbeat_at": long_ago})
        session.query(TrainingQueue).update({"heartbeat_at": long_ago})
    with heartbeat_thread(engine, 0.05, mine, queue_id):
        time.sleep(1.0)
    with session_scope(engine) as session:
        claims = {c.worker_host: c for c in training_runs.running_claims(session)}
        queue = training_queue.get_queue(session, queue_id)
    assert not training_runs.claim_expired(claims["alpha"], 60)
    assert training_runs.claim_expired(claims["beta"], 60)  # another worker's claim is not kept alive by this one
    assert queue.heartbeat_at > long_ago + timedelta(minutes=59)


def test_a_stopped_thread_beats_no_more(grid_env) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    with heartbeat_thread(engine, 0.05, WorkerIdentity("alpha", 101), queue_id):
        pass
    with session_scope(engine) as session:
        stamped = training_queue.get_queue(session, queue_id).heartbeat_at
    time.sleep(0.3)
    with session_scope(engine) as session:
        assert training_queue.get_queue(session, queue_id).heartbeat_at == stamped
