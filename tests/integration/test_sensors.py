"""Daemon mode: the queue sensor feeds batches to `grid_batch` runs and recovers crashed queues."""

from __future__ import annotations

import dagster as dg
import pytest

from forex_pipeline.queue import lifecycle

from forex_pipeline.store import training_queue
from forex_pipeline.dagster_defs.resources import ForexStorage
from forex_pipeline.dagster_defs.jobs import BATCH_JOBS, grid_batch
from forex_pipeline.dagster_defs.sensors import training_queue_sensor_for
from forex_pipeline.dagster_defs.tags import QUEUE_TAG, batch_run_config

training_queue_sensor = training_queue_sensor_for(BATCH_JOBS)
from forex_pipeline.settings import get_settings
from forex_pipeline.store.db import get_engine, session_scope
from tests.support import TINY_GRID


def _daemon_queue(engine, artifacts) -> int:
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, artifacts)
    with session_scope(engine) as session:
        training_queue.set_queue_status(session, queue_id, "running")
        training_queue.heartbeat(session, queue_id, checkpoint={"mode": "daemon", "owner": {}})
    return queue_id


def test_sensor_requests_the_next_batch_of_a_daemon_queue(grid_env):
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = _daemon_queue(engine, settings.artifacts_dir)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"storage": ForexStorage()})
        requests = list(training_queue_sensor(context))
    size, slots = settings.queue.models_per_run, settings.queue.max_concurrent_runs
    pending = [c.partition_key for c in lifecycle.pending_configurations(engine, queue_id)]
    assert len(requests) == slots
    assert all(r.tags[QUEUE_TAG] == str(queue_id) for r in requests)
    batches = [r.run_config["ops"]["run_grid_batch"]["config"]["partition_keys"] for r in requests]
    assert batches == [pending[i * size : (i + 1) * size] for i in range(slots)]
    assert len({r.run_key for r in requests}) == slots


def test_sensor_marks_a_dead_worker_interrupted_and_auto_resumes(grid_env):
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    with session_scope(engine) as session:
        training_queue.set_queue_status(session, queue_id, "running")
        training_queue.heartbeat(session, queue_id, checkpoint={"owner": {"host": __import__("socket").gethostname(), "pid": 2**22 + 12345}})
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"storage": ForexStorage()})
        requests = list(training_queue_sensor(context))
    with session_scope(engine) as session:
        queue = training_queue.get_queue(session, queue_id)
    assert settings.recovery.auto_resume is True
    assert queue.status == "running" and queue.checkpoint["mode"] == "daemon"
    assert [r.tags[QUEUE_TAG] for r in requests] == [str(queue_id)] * settings.queue.max_concurrent_runs
    assert lifecycle.detect_interrupted(engine, settings) == []


def test_sensor_skips_configurations_held_by_runs_in_flight(grid_env):
    from forex_pipeline.dagster_defs.jobs import grid_batch

    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = _daemon_queue(engine, settings.artifacts_dir)
    pending = [c.partition_key for c in lifecycle.pending_configurations(engine, queue_id)]
    held = pending[:2]
    with dg.instance_for_test() as instance:
        instance.create_run_for_job(
            job_def=grid_batch,
            run_config={"ops": {"run_grid_batch": {"config": {"queue_id": queue_id, "partition_keys": held}}}},
            tags={QUEUE_TAG: str(queue_id)},
        )
        context = dg.build_sensor_context(instance=instance, resources={"storage": ForexStorage()})
        requests = list(training_queue_sensor(context))
    assert len(requests) == settings.queue.max_concurrent_runs - 1
    requested = [k for r in requests for k in r.run_config["ops"]["run_grid_batch"]["config"]["partition_keys"]]
    assert not set(requested) & set(held)
    assert requested == pending[2 : 2 + len(requested)]


def test_a_grid_submitted_from_the_launchpad_is_queued_for_the_sensor(grid_env):
    from forex_pipeline.dagster_defs.definitions import defs
    from forex_pipeline.keys import MODEL_CONFIG_PARTITIONS

    settings = get_settings()
    engine = get_engine(settings.database_url)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("submit_grid_job").execute_in_process(run_config={**TINY_GRID, "name": "from-ui"}, instance=instance)
        queue_id = result.output_for_node("submit_grid_op")
        assert instance.get_dynamic_partitions(MODEL_CONFIG_PARTITIONS) == [
            c.partition_key for c in lifecycle.configurations_of(TINY_GRID)
        ]
        with pytest.raises(dg.DagsterConfigMappingFunctionError) as refused:  # refused before any run exists
            defs.resolve_job_def("submit_grid_job").execute_in_process(run_config={**TINY_GRID, "name": ""}, instance=instance)
        assert "name: String should have at least 1 character" in str(refused.value.__cause__)
        assert len(instance.get_run_records(dg.RunsFilter(job_name="submit_grid_job"))) == 1
    with session_scope(engine) as session:
        queue = training_queue.get_queue(session, queue_id)
        assert len(training_queue.list_queues(session)) == 1  # the invalid grid created nothing
    assert queue.name == "from-ui" and queue.status == "running" and queue.checkpoint["mode"] == "daemon"


def test_sensor_serves_queues_by_priority_within_max_parallel_queues_and_each_queues_max_parallel(grid_env, monkeypatch):
    from tests.support import write_test_settings

    monkeypatch.setenv("FOREX_SETTINGS", str(write_test_settings(grid_env / "one_queue.yaml", queue={"max_parallel_queues": 1})))
    settings = get_settings()
    engine = get_engine(settings.database_url)
    ids = {}
    for name, priority, parallel in (("low", 1, 2), ("high", 9, 3), ("middle", 5, 1)):
        ids[name] = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir, name=name, priority=priority, max_parallel=parallel)
        with session_scope(engine) as session:
            training_queue.set_queue_status(session, ids[name], "running")
            training_queue.heartbeat(session, ids[name], checkpoint={"mode": "daemon", "owner": {}})
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"storage": ForexStorage()})
        first = list(training_queue_sensor(context))
        assert [r.tags[QUEUE_TAG] for r in first] == [str(ids["high"])] * 3  # its max_parallel, no other queue
        # with the high queue paused, the place goes to the next priority, at its own max_parallel
        with session_scope(engine) as session:
            training_queue.set_queue_status(session, ids["high"], "paused")
        second = list(training_queue_sensor(context))
    assert [r.tags[QUEUE_TAG] for r in second] == [str(ids["middle"])]


def test_next_queue_is_the_waiting_queue_of_highest_priority(grid_env):
    settings = get_settings()
    engine = get_engine(settings.database_url)
    low = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir, name="low", priority=-1)
    first = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir, name="first", priority=3)
    second = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir, name="second", priority=3)
    assert lifecycle.next_queue(engine).id == first  # equal priority: the older one
    lifecycle.cancel(engine, first)
    assert lifecycle.next_queue(engine).id == second
    lifecycle.cancel(engine, second)
    assert lifecycle.next_queue(engine).id == low
    with pytest.raises(Exception, match="max_parallel"):
        lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir, max_parallel=0)


DEAD_PID = 2**22 + 12345  # above pid_max's default: no process on this host has it


def _claim(engine, configuration, worker, dagster_run_id):  # noqa: ANN001, ANN202
    from forex_pipeline.store import training_runs

    with session_scope(engine) as session:
        claimed, _ = training_runs.claim_training_run(
            session, training_runs.training_run_fields(configuration), queue_id=None,
            dagster_run_id=dagster_run_id, stale_after_seconds=300, worker=worker,
        )
    assert claimed


def test_the_executor_setting_chooses_the_batch_job(grid_env, monkeypatch):
    settings = get_settings()
    engine = get_engine(settings.database_url)
    _daemon_queue(engine, settings.artifacts_dir)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"storage": ForexStorage()})
        assert {r.job_name for r in training_queue_sensor(context)} == {"grid_batch"}
        monkeypatch.setenv("FOREX_QUEUE_EXECUTOR", "celery")
        assert get_settings().queue.executor == "celery"
        context = dg.build_sensor_context(instance=instance, resources={"storage": ForexStorage()})
        assert {r.job_name for r in training_queue_sensor(context)} == {"grid_batch_celery"}


def test_an_unknown_executor_is_refused_naming_the_variable(grid_env, monkeypatch):
    from forex_pipeline.settings import SettingsError

    monkeypatch.setenv("FOREX_QUEUE_EXECUTOR", "k8s")
    with pytest.raises(SettingsError, match=r"FOREX_QUEUE_EXECUTOR='k8s'.*queue\.executor"):
        get_settings()


def test_a_worker_that_died_mid_model_loses_its_claim_and_its_run(grid_env):
    """The claim of a dead in-process worker goes back to pending, its run is marked failed, and the
    configuration is requested again; a live worker on another host keeps its claim until its lease expires."""
    import socket
    from datetime import datetime, timedelta, timezone

    from forex_pipeline.store import training_runs
    from forex_pipeline.store.training_runs import WorkerIdentity

    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = _daemon_queue(engine, settings.artifacts_dir)
    first, second = lifecycle.pending_configurations(engine, queue_id)[:2]
    with dg.instance_for_test() as instance:
        dead_run = instance.create_run_for_job(job_def=grid_batch, run_config=batch_run_config(queue_id, [first.partition_key]), tags={QUEUE_TAG: str(queue_id)})
        _claim(engine, first, WorkerIdentity(socket.gethostname(), DEAD_PID), dead_run.run_id)
        _claim(engine, second, WorkerIdentity("elsewhere.example", 4242, "celery-task-1"), "remote-run")
        context = dg.build_sensor_context(instance=instance, resources={"storage": ForexStorage()})
        requests = list(training_queue_sensor(context))
        assert instance.get_run_by_id(dead_run.run_id).status == dg.DagsterRunStatus.FAILURE
    with session_scope(engine) as session:
        released = training_runs.get_training_run_by_hash(session, first.model_config_hash)
        held = training_runs.get_training_run_by_hash(session, second.model_config_hash)
    assert released.status == "pending" and held.status == "running"
    requested = [k for r in requests for k in r.run_config["ops"]["run_grid_batch"]["config"]["partition_keys"]]
    assert first.partition_key in requested

    later = datetime.now(timezone.utc) + timedelta(seconds=settings.recovery.stale_after_seconds + 1)
    assert lifecycle.release_lost_claims(engine, settings) == []  # a fresh lease on another host holds
    [lost] = lifecycle.release_lost_claims(engine, settings, now=later)
    assert (lost.partition_key, lost.dagster_run_id, lost.worker.celery_task_id) == (second.partition_key, "remote-run", "celery-task-1")
    assert "has not renewed its lease" in lost.reason


def test_a_lost_celery_step_is_failed_in_the_result_backend(grid_env, monkeypatch):
    """A released claim of a Celery worker ends its run through the result backend (the run process waits there)."""
    import socket

    from forex_pipeline.dagster_defs import scale_out
    from forex_pipeline.store.training_runs import WorkerIdentity

    failed: list[tuple[str, str]] = []
    monkeypatch.setattr(scale_out, "fail_lost_step", lambda task_id, message: failed.append((task_id, message)))
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = _daemon_queue(engine, settings.artifacts_dir)
    first = lifecycle.pending_configurations(engine, queue_id)[0]
    _claim(engine, first, WorkerIdentity(socket.gethostname(), DEAD_PID, "celery-task-7"), "celery-run")
    with dg.instance_for_test() as instance:
        list(training_queue_sensor(dg.build_sensor_context(instance=instance, resources={"storage": ForexStorage()})))
    assert [task for task, _ in failed] == ["celery-task-7"]
    assert first.partition_key in failed[0][1] and f"worker process {DEAD_PID}" in failed[0][1]
