"""Scale-out for real: a dagster-celery worker process on Redis runs the steps of runs submitted here.

The instance is the deployment profile's PostgreSQL one (deploy/dagster.yaml), the project tables live in a
second PostgreSQL database, and the artifacts folder is shared: the layout of several hosts, on one.
Every Redis key carries a unique FOREX_CELERY_KEY_PREFIX, so concurrent test runs never swap tasks.
"""


import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from forex_pipeline.dagster_defs import scale_out
from forex_pipeline.dagster_defs.jobs import grid_batch_celery
from forex_pipeline.dagster_defs.partitions import register_partitions
from forex_pipeline.dagster_defs.resources import ForexStorage
from tests.conftest import REPO_ROOT
from tests.integration.test_dagster_postgres import pg_env, postgres_dagster_home
from tests.store.conftest import postgres_database

REDIS_URL = os.environ.get("FOREX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WORKER_READY_SECONDS = 90
WORKER_STOP_SECONDS = 20
RUN_DEADLINE_SECONDS = 240
TINY_GRID = {
    "name": "celery_tiny",
    "feature_sets": {
        "symbols": ["SYNTH"],
        "base_timeframes": ["1h"],
        "days_history": [120],
        "as_of": "2021-01-05T00:00:00Z",
        "indicator_timeframes": [{"rsi": ["1h"]}],
        "additional_features": [["returns_volatility"]],
        "preprocessing": [{"warmup_bars": 50}],
    },
    "model_specs": {
        "model_types": ["ridge"],
        "encoders": ["none"],
        "horizons": [1],
        "hyperparameters": {"ridge": [{"alpha": 1.0}]},
    },
}


# --- the helpers of forex_pipeline.dagster_defs.scale_out (fast, no services) ---


def test_broker_defaults_to_local_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(scale_out.BROKER_ENV, raising=False)
    monkeypatch.delenv(scale_out.BACKEND_ENV, raising=False)
    assert scale_out.celery_broker_url() == "redis://127.0.0.1:6379/0"
    assert scale_out.celery_backend_url() == "redis://127.0.0.1:6379/1"


def test_backend_follows_the_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(scale_out.BACKEND_ENV, raising=False)
    monkeypatch.setenv(scale_out.BROKER_ENV, "redis://:secret@queue.example:6380/5")
    assert scale_out.celery_backend_url() == "redis://:secret@queue.example:6380/1"
    monkeypatch.setenv(scale_out.BROKER_ENV, "pyamqp://guest:guest@rabbit.example:5672//")
    assert scale_out.celery_backend_url() == "rpc://"
    monkeypatch.setenv(scale_out.BACKEND_ENV, "redis://results.example/3")
    assert scale_out.celery_backend_url() == "redis://results.example/3"


@pytest.mark.parametrize(
    ("env", "value"), [("FOREX_CELERY_BROKER", "http://127.0.0.1:6379"), ("FOREX_CELERY_BACKEND", "127.0.0.1:6379")]
)
def test_unknown_scheme_names_the_variable(monkeypatch: pytest.MonkeyPatch, env: str, value: str) -> None:
    monkeypatch.delenv(scale_out.BROKER_ENV, raising=False)
    monkeypatch.setenv(env, value)
    with pytest.raises(ValueError, match=env):
        scale_out.celery_backend_url()


def test_key_prefix_needs_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(scale_out.KEY_PREFIX_ENV, "staging:")
    monkeypatch.setenv(scale_out.BROKER_ENV, "amqp://guest@127.0.0.1//")
    with pytest.raises(ValueError, match="FOREX_CELERY_KEY_PREFIX"):
        scale_out.celery_config_source()
    monkeypatch.setenv(scale_out.BROKER_ENV, "redis://127.0.0.1:6379/0")
    source = scale_out.celery_config_source()
    assert source["broker_transport_options"]["global_keyprefix"] == "staging:"
    assert source["result_backend_transport_options"] == {"global_keyprefix": "staging:"}


def test_worker_config_is_what_dagster_celery_accepts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file passes dagster-celery's own validation and carries the environment's broker and backend."""
    from dagster_celery.cli import get_validated_config

    monkeypatch.setenv(scale_out.BROKER_ENV, "redis://broker.example:6379/2")
    monkeypatch.setenv(scale_out.BACKEND_ENV, "redis://broker.example:6379/3")
    monkeypatch.setenv(scale_out.KEY_PREFIX_ENV, "prod:")
    path = scale_out.write_worker_config(tmp_path / "celery" / "worker.yaml")
    validated = get_validated_config(str(path))
    assert validated["broker"] == "redis://broker.example:6379/2"
    assert validated["backend"] == "redis://broker.example:6379/3"
    assert validated["config_source"]["broker_transport_options"]["global_keyprefix"] == "prod:"
    assert [p.name for p in path.parent.iterdir()] == ["worker.yaml"]  # no temporary file left behind


@pytest.mark.redis
def test_a_lost_step_is_failed_in_the_result_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the queue sensor does for a step whose worker died: the run process's result turns FAILURE
    with the reason, so it stops waiting (dagster-celery polls exactly this result)."""
    from celery.result import AsyncResult
    from dagster_celery.make_app import make_app

    prefix = f"forex_test_{uuid.uuid4().hex[:12]}:"
    monkeypatch.setenv(scale_out.BROKER_ENV, REDIS_URL)
    monkeypatch.delenv(scale_out.BACKEND_ENV, raising=False)
    monkeypatch.setenv(scale_out.KEY_PREFIX_ENV, prefix)
    assert scale_out.current_celery_task_id() is None  # not in a Celery worker
    app = make_app({**scale_out.celery_executor_config(), "include": []})
    task_id = str(uuid.uuid4())
    try:
        result = AsyncResult(task_id, app=app)
        assert not result.ready()
        scale_out.fail_lost_step(task_id, "worker process 4242 on h1 is gone")
        assert result.ready() and result.state == "FAILURE"
        with pytest.raises(Exception, match="worker process 4242 on h1 is gone"):
            result.get(timeout=5)
    finally:
        app.close()
        _drop_redis_keys(prefix)


# --- a real worker ---


@dg.op(description="Record where this step ran (pid, process group, host) in a file under the shared artifacts.")
def record_worker(context: dg.OpExecutionContext, storage: ForexStorage) -> dict:
    record = {"pid": os.getpid(), "pgid": os.getpgid(0), "host": socket.gethostname(), "run_id": context.run_id}
    path = storage.artifacts / "celery_probe" / f"{context.run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    tmp.replace(path)
    return record


@dg.job(executor_def=grid_batch_celery.executor_def, resource_defs={"storage": ForexStorage()})
def celery_probe():
    record_worker()


def grid_batch_celery_job() -> dg.JobDefinition:
    """The project's grid_batch_celery as the code location defines it (resources bound)."""
    from forex_pipeline.dagster_defs.definitions import defs

    return defs.resolve_job_def("grid_batch_celery")


@dataclass(frozen=True)
class Cluster:
    instance: dg.DagsterInstance
    worker: subprocess.Popen
    artifacts: Path
    project_db_url: str
    log: Path


def _wait_until_ready(worker: subprocess.Popen, log: Path) -> None:
    """Block until celery logs `ready.`; fail with the log if the worker exits or takes too long."""
    deadline = time.monotonic() + WORKER_READY_SECONDS
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if " ready." in text:
            return
        if worker.poll() is not None:
            pytest.fail(f"celery worker exited with {worker.returncode}:\n{text[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"celery worker not ready after {WORKER_READY_SECONDS}s:\n{log.read_text(errors='replace')[-4000:]}")


def _stop(worker: subprocess.Popen) -> None:
    """SIGTERM the worker's whole process group (dagster-celery and celery), SIGKILL if it lingers."""
    if worker.poll() is not None:
        return
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=WORKER_STOP_SECONDS)


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Raise TimeoutError here (main thread) after `seconds`: a run nobody consumes must not hang the suite."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"run not finished after {seconds}s; is the worker consuming this broker and key prefix?")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _drop_redis_keys(prefix: str, urls: tuple[str, ...] = ()) -> None:
    """Delete what a test left in Redis (its prefix is unique to it), in `urls` (default: this module's databases)."""
    import redis

    for db_url in set(urls or (REDIS_URL, scale_out.default_backend_for(REDIS_URL))):
        client = redis.Redis.from_url(db_url)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A PostgreSQL Dagster instance, a migrated project database, shared artifacts and one celery worker."""
    from forex_pipeline.store import db

    root = tmp_path_factory.mktemp("scale_out")
    prefix = f"forex_test_{uuid.uuid4().hex[:12]}:"
    with postgres_database() as dagster_db, postgres_database() as project_db, pytest.MonkeyPatch.context() as mp:
        home = postgres_dagster_home(root / "dagster_home")
        env = {
            **pg_env(dagster_db),
            "DAGSTER_HOME": str(home),
            "FOREX_DATABASE_URL": project_db,
            "FOREX_ARTIFACTS_DIR": str(root / "shared_artifacts"),
            scale_out.BROKER_ENV: REDIS_URL,
            scale_out.KEY_PREFIX_ENV: prefix,
        }
        mp.delenv(scale_out.BACKEND_ENV, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        db.upgrade(project_db)
        config = scale_out.write_worker_config(root / "celery_worker.yaml")
        instance = dg.DagsterInstance.get()
        worker_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        log = root / "worker.log"
        with log.open("wb") as sink:
            worker = subprocess.Popen(
                [sys.executable, "-m", "dagster_celery.cli", "worker", "start", "-A", "dagster_celery.app",
                 "-y", str(config), "-n", f"forex_test_{os.getpid()}", "--", "--pool=solo"],
                cwd=REPO_ROOT, env=worker_env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            _wait_until_ready(worker, log)
            yield Cluster(instance, worker, root / "shared_artifacts", project_db, log)
        finally:
            _stop(worker)
            instance.dispose()
            db.dispose_engines()
            _drop_redis_keys(prefix)


def _celery_hosts(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    """The `Celery worker` hostnames dagster-celery reported for the run's steps."""
    hosts = set()
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.event_type_value != "ENGINE_EVENT":
            continue
        metadata = event.engine_event_data.metadata or {}
        if "Celery worker" in metadata:
            hosts.add(metadata["Celery worker"].value)
    return hosts


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_step_runs_in_the_worker_process(cluster: Cluster) -> None:
    """The op runs in the worker's process group, not here, and its output comes back through the instance."""
    with _deadline(RUN_DEADLINE_SECONDS), dg.execute_job(dg.reconstructable(celery_probe), instance=cluster.instance) as result:
        assert result.success, cluster.log.read_text(errors="replace")[-4000:]
        output = result.output_for_node("record_worker")
    record = json.loads((cluster.artifacts / "celery_probe" / f"{result.run_id}.json").read_text())
    assert record == output
    assert record["pid"] != os.getpid()
    assert record["pgid"] == cluster.worker.pid  # the worker's own session, started by the fixture
    assert cluster.worker.poll() is None
    assert _celery_hosts(cluster.instance, result.run_id) == {f"forex_test_{os.getpid()}@{socket.gethostname()}"}
    assert cluster.instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_grid_batch_celery_trains_a_configuration_in_the_worker(cluster: Cluster) -> None:
    """The project's grid_batch_celery trains one queued configuration on the worker; both stores record it."""
    from forex_pipeline.store import inference_backtests, training_queue, training_runs
    from forex_pipeline.store.db import get_engine, session_scope
    from forex_pipeline.queue.lifecycle import pending_configurations, submit_grid

    engine = get_engine(cluster.project_db_url)
    queue_id = submit_grid(engine, TINY_GRID, cluster.artifacts)
    configurations = pending_configurations(engine, queue_id)
    assert len(configurations) == 1
    register_partitions(cluster.instance, configurations)
    run_config = {"ops": {"run_grid_batch": {"config": {"queue_id": queue_id, "partition_keys": [configurations[0].partition_key]}}}}

    job = dg.reconstructable(grid_batch_celery_job)
    with _deadline(RUN_DEADLINE_SECONDS), dg.execute_job(job, instance=cluster.instance, run_config=run_config) as result:
        assert result.success, cluster.log.read_text(errors="replace")[-4000:]
        summary = result.output_for_node("run_grid_batch")
    assert summary["completed"] == 1 and summary["failed"] == 0, summary
    assert _celery_hosts(cluster.instance, result.run_id) == {f"forex_test_{os.getpid()}@{socket.gethostname()}"}

    with session_scope(engine) as session:
        queue = training_queue.get_queue(session, queue_id)
        run = training_runs.get_training_run_by_hash(session, configurations[0].model_config_hash)
        backtests = inference_backtests.get_backtests(session, run.id)
    assert result.run_id in queue.dagster_run_ids
    assert run.status == "completed"
    assert len(backtests) > 0
    materialized = cluster.instance.fetch_materializations(dg.AssetKey("trained_model"), limit=10).records
    assert [m.run_id for m in materialized] == [result.run_id]
    assert pending_configurations(engine, queue_id) == []

