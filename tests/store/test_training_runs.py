"""training_runs: identity, upsert, status stamps, completed hashes, kept flags."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.models.spec import ModelConfiguration, ModelSpec, model_config_hash
from forex_pipeline.store import (
    inference_backtests,
    regime_best_models,
    training_queue,
    training_runs,
)
from forex_pipeline.store.db import session_scope
from forex_pipeline.store.tables import TrainingRun

from .conftest import backtest_frame, run_identity
from .helpers import add_run, best_row, count


def test_model_config_hash_is_unique(engine: Engine) -> None:
    add_run(engine, 1)
    with pytest.raises(IntegrityError):
        add_run(engine, 1)
    assert count(engine, TrainingRun) == 1


def test_upsert_keeps_one_row_and_attaches_the_queue(engine: Engine) -> None:
    with session_scope(engine) as session:
        queue = training_queue.create_queue(session, "grid", {"symbols": ["EURUSD"]}, "g1", total_models=1)
        first = training_runs.upsert_training_run(session, run_identity(1))
        training_runs.mark_run_status(session, first.model_config_hash, "completed", training_seconds=1.5)
        second = training_runs.upsert_training_run(session, run_identity(1), queue_id=queue.id, dagster_run_id="r-2")
    assert second.id == first.id
    assert (second.queue_id, second.dagster_run_id, second.status) == (queue.id, "r-2", "completed")
    assert count(engine, TrainingRun) == 1


def test_identity_from_specs_and_clear_errors(engine: Engine) -> None:
    feature_set = FeatureSetSpec(symbol="EUR/USD", base_timeframe="1h", days_history=30,
                                 as_of=datetime(2019, 6, 1, tzinfo=timezone.utc))
    model_spec = ModelSpec(model_type="rf", horizon=5)
    identity = training_runs.training_run_fields(ModelConfiguration.of(feature_set, model_spec))
    with session_scope(engine) as session:
        record = training_runs.insert_training_run(session, identity)
    assert record.model_config_hash == model_config_hash(feature_set.hash, model_spec.hash)
    assert record.partition_key == f"{feature_set.partition_key}|{model_spec.partition_key}"
    assert record.feature_set == feature_set.canonical() and record.symbol == "EURUSD"
    assert record.created_at.tzinfo is not None and record.created_at.utcoffset() == timedelta(0)
    broken = {k: v for k, v in run_identity(2).items() if k != "horizon"}
    with session_scope(engine) as session, pytest.raises(ValueError, match="horizon"):
        training_runs.insert_training_run(session, broken)
    with session_scope(engine) as session, pytest.raises(ValueError, match="status 'done'"):
        training_runs.insert_training_run(session, run_identity(3), status="done")


def test_mark_run_status_stamps_times_and_stores_results(engine: Engine) -> None:
    run = add_run(engine, 1)
    with session_scope(engine) as session:
        running = training_runs.mark_run_status(session, run.model_config_hash, "running", dagster_run_id="abc")
    assert running.started_at is not None and running.completed_at is None
    metrics = {"validation": {"rmse": 0.01, "r2": float("nan")}, "members": np.int64(5)}
    with session_scope(engine) as session:
        training_runs.mark_run_status(session, run.model_config_hash, "completed", training_seconds=3.25, metrics=metrics,
                             model_path="m/x.joblib", model_sha256="f" * 64, model_bytes=2**33)
    with session_scope(engine) as session:
        done = training_runs.get_training_run_by_hash(session, run.model_config_hash)
    assert done is not None and done.status == "completed" and done.completed_at >= done.started_at
    assert done.metrics == {"validation": {"rmse": 0.01, "r2": None}, "members": 5}
    assert (done.model_bytes, done.training_seconds, done.dagster_run_id) == (2**33, 3.25, "abc")
    with session_scope(engine) as session, pytest.raises(LookupError, match="nope"):
        training_runs.mark_run_status(session, "nope", "failed")
    with session_scope(engine) as session, pytest.raises(ValueError, match="'finished'"):
        training_runs.mark_run_status(session, run.model_config_hash, "finished")


def test_find_completed_hashes_over_many(engine: Engine) -> None:
    identities = [run_identity(n) for n in range(6)]
    with session_scope(engine) as session:
        for n, identity in enumerate(identities):
            training_runs.insert_training_run(session, identity, status="completed" if n % 2 == 0 else "failed")
    asked = [i["model_config_hash"] for i in identities] + [f"{n:064x}" for n in range(1200)]
    with session_scope(engine) as session:
        found = training_runs.find_completed_hashes(session, asked)
    assert found == {identities[n]["model_config_hash"] for n in (0, 2, 4)}


def test_set_kept_lists_files_to_delete(engine: Engine) -> None:
    kept, dropped = add_run(engine, 1), add_run(engine, 2)
    with session_scope(engine) as session:
        for run in (kept, dropped):
            training_runs.mark_run_status(session, run.model_config_hash, "completed", model_path=f"m/{run.id}.joblib")
            inference_backtests.batch_insert_backtests(session, run.id, backtest_frame(seed=run.id, regimes=("all",)))
        test_id = int(inference_backtests.get_backtests(session, kept.id)["id"].iloc[0])
        regime_best_models.replace_regime_bests(session, "bull_trending", [best_row(1, kept.id, test_id, 1.0)])
        assert [r.id for r in training_runs.set_kept(session, before={kept.id, dropped.id}, after={kept.id})] == [dropped.id]
        assert training_runs.get_training_run(session, dropped.id).kept is False
        training_runs.mark_file_deleted(session, dropped.id)
        assert training_runs.set_kept(session, before={kept.id, dropped.id}, after={kept.id}) == []
        assert training_runs.get_training_run(session, kept.id).kept is True


def test_recent_durations_are_the_latest_completed_runs_per_family_and_timeframe(engine: Engine) -> None:
    """What the plan's time estimate is calibrated on: one query, the `per_timeframe` latest completed
    runs of each (model type, base timeframe) asked for, with their wall time from claim to record."""
    start = datetime(2026, 12, 1, tzinfo=timezone.utc)
    layout = [  # (n, model_type, base_timeframe, status, minutes after start it completed)
        (1, "ridge", "1h", "completed", 10), (2, "ridge", "1h", "completed", 30), (3, "ridge", "1h", "completed", 20),
        (4, "ridge", "1h", "failed", 40), (5, "ridge", "4h", "completed", 5), (6, "rf", "1h", "completed", 50),
        (7, "ridge", "1h", "pending", None),
    ]
    with session_scope(engine) as session:
        for n, model_type, timeframe, status, minutes in layout:
            identity = {**run_identity(n, model_type=model_type), "base_timeframe": timeframe}
            training_runs.insert_training_run(session, identity)
            if minutes is None:
                continue
            row = session.query(TrainingRun).filter_by(model_config_hash=identity["model_config_hash"]).one()
            row.status, row.training_seconds, row.backtest_seconds = status, float(n), 0.5
            row.started_at = start + timedelta(minutes=minutes, seconds=-3 * n)
            row.completed_at = start + timedelta(minutes=minutes)
    with session_scope(engine) as session:
        recent = training_runs.recent_durations(session, ["ridge", "lasso"], per_timeframe=2)
        assert training_runs.recent_durations(session, [], per_timeframe=2) == []
    assert [(d.model_type, d.base_timeframe, d.training_seconds) for d in recent] == [
        ("ridge", "1h", 2.0), ("ridge", "1h", 3.0), ("ridge", "4h", 5.0),
    ]
    assert [d.wall_seconds for d in recent] == [6.0, 9.0, 15.0]
    assert recent[0].feature_set["days_history"] == 367 and recent[0].model_spec["model_type"] == "ridge"


def _claim(engine: Engine, n: int, worker: training_runs.WorkerIdentity, stale: float = 300.0) -> tuple[bool, training_runs.TrainingRunRecord]:
    with session_scope(engine) as session:
        return training_runs.claim_training_run(
            session, run_identity(n), queue_id=None, dagster_run_id=f"run-{worker.pid}", stale_after_seconds=stale, worker=worker
        )


def _age_lease(engine: Engine, n: int, seconds: float) -> None:
    """Move a claim's lease (heartbeat and start) `seconds` into the past: a worker that fell silent."""
    past = datetime.now(timezone.utc) - timedelta(seconds=seconds)
    with session_scope(engine) as session:
        session.query(TrainingRun).filter_by(model_config_hash=run_identity(n)["model_config_hash"]).update(
            {"heartbeat_at": past, "started_at": past}
        )


def test_a_claim_records_its_worker_and_holds_while_its_lease_is_fresh(engine: Engine) -> None:
    alpha = training_runs.WorkerIdentity("alpha", 101, "task-a")
    beta = training_runs.WorkerIdentity("beta", 202)
    claimed, run = _claim(engine, 1, alpha)
    assert claimed
    assert (run.status, run.worker_host, run.worker_pid, run.celery_task_id) == ("running", "alpha", 101, "task-a")
    assert run.heartbeat_at is not None
    taken, held = _claim(engine, 1, beta)
    assert not taken and held.worker_host == "alpha"  # a live claim is never taken over

    _age_lease(engine, 1, 400)
    with session_scope(engine) as session:  # a beat of another worker renews nothing of alpha's
        assert training_runs.renew_leases(session, beta) == 0
        [stale] = training_runs.running_claims(session)
    assert training_runs.claim_expired(stale, 300)
    assert not training_runs.claim_expired(stale, 500)
    taken, run = _claim(engine, 1, beta)  # an expired lease is taken over, and records its new worker
    assert taken and (run.worker_host, run.worker_pid, run.celery_task_id) == ("beta", 202, None)


def test_renewing_a_lease_keeps_the_claim_alive(engine: Engine) -> None:
    alpha = training_runs.WorkerIdentity("alpha", 101)
    _claim(engine, 1, alpha)
    _claim(engine, 2, training_runs.WorkerIdentity("beta", 202))
    _age_lease(engine, 1, 400)
    _age_lease(engine, 2, 400)
    with session_scope(engine) as session:
        assert training_runs.renew_leases(session, alpha) == 1
        claims = {c.worker_host: c for c in training_runs.running_claims(session)}
    assert not training_runs.claim_expired(claims["alpha"], 300)
    assert training_runs.claim_expired(claims["beta"], 300)


def test_release_claim_only_undoes_the_same_running_claim(engine: Engine) -> None:
    alpha = training_runs.WorkerIdentity("alpha", 101)
    _, run = _claim(engine, 1, alpha)
    with session_scope(engine) as session:
        assert not training_runs.release_claim(session, run.id, worker=training_runs.WorkerIdentity("alpha", 999))
        training_runs.mark_run_status(session, run.model_config_hash, "completed")
        assert not training_runs.release_claim(session, run.id, worker=alpha)  # finished meanwhile: its result stays
        assert training_runs.get_training_run(session, run.id).status == "completed"
    _, other = _claim(engine, 2, alpha)
    with session_scope(engine) as session:
        assert training_runs.release_claim(session, other.id, worker=alpha)
        released = training_runs.get_training_run(session, other.id)
    assert (released.status, released.started_at, released.worker_host) == ("pending", None, "alpha")
