"""Several machines on Dagster's own engine, on one: the real `dagster-daemon` feeds a grid to two
dagster-celery workers over Redis, against PostgreSQL (Dagster's storage and the project tables) and a
shared artefact folder. One worker is SIGKILLed in the middle of a model; its claim is found lost and
released, its run fails, and the other worker trains the model: the grid completes with the bests and
kept files (sha256) of a single-process run of the same grid.

Private everything: two fresh PostgreSQL databases, Redis databases 2 (broker) and 3 (results) with a
key prefix unique to this run, so it cannot take or give tasks to another test. Took 7 min 51 s at a
load average of ~20 on the shared 2-core machine (most of it waiting for CPU).
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text

from tests.conftest import REPO_ROOT
from tests.integration.test_celery_executor import TINY_GRID as CELERY_GRID
from tests.integration.test_celery_executor import _drop_redis_keys, _stop, _wait_until_ready
from tests.integration.test_dagster_postgres import pg_env, postgres_dagster_home
from tests.store.conftest import postgres_database
from tests.support import write_test_settings

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

REDIS_HOST = os.environ.get("FOREX_TEST_REDIS_HOST", "127.0.0.1:6379")
BROKER, BACKEND = f"redis://{REDIS_HOST}/2", f"redis://{REDIS_HOST}/3"
GRID_DEADLINE_SECONDS = 900  # a bound for a busy machine; ~2 minutes on 2 quiet cores
GRID = {  # 8 configurations: the one-configuration Celery grid's feature set, two ridge and two lasso at 2 horizons
    **CELERY_GRID,
    "name": "two_workers",
    "model_specs": {
        "model_types": ["ridge", "lasso"],
        "encoders": ["none"],
        "horizons": [1, 4],
        "hyperparameters": {"ridge": [{"alpha": 1.0}, {"alpha": 10.0}], "lasso": [{"alpha": 0.0001}, {"alpha": 0.001}]},
    },
}


def _settings_file(path: Path) -> Path:
    """Test settings with the daemon's batches on Celery, two models per run, two runs at once."""
    return write_test_settings(
        path,
        queue={"executor": "celery", "models_per_run": 2, "max_concurrent_runs": 2},
        recovery={"heartbeat_seconds": 1, "stale_after_seconds": 120},
        evaluation={"noise_models": 10},  # the noise reference is not what this test is about
    )


def _state(engine, artifacts: Path) -> dict:  # noqa: ANN001 - an Engine
    """What must be identical to the single-process run: runs (status, kept, file hash), bests, kept files."""
    with engine.connect() as connection:
        runs = sorted(tuple(r) for r in connection.execute(text(
            "SELECT model_config_hash, status, kept, model_sha256 FROM training_runs")))
        bests = sorted(
            (regime, rank, config, inference, round(score, 9), trades)
            for regime, rank, config, inference, score, trades in connection.execute(text(
                "SELECT b.regime, b.rank, r.model_config_hash, b.inference_config_hash, b.score, b.trade_count "
                "FROM regime_best_models b JOIN training_runs r ON r.id = b.training_run_id"))
        )
        kept = [row[0] for row in connection.execute(text("SELECT model_path FROM training_runs WHERE kept"))]
    files = sorted((Path(p).as_posix(), hashlib.sha256((Path(artifacts) / p).read_bytes()).hexdigest()) for p in kept)  # paths relative to the store
    return {"runs": runs, "bests": bests, "kept_files": files}


@pytest.fixture()
def single_process_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The same grid trained by one process on its own SQLite database and artefact folder."""
    from forex_pipeline.queue import lifecycle, worker
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store import db

    root = tmp_path / "single"
    monkeypatch.setenv("FOREX_SETTINGS", str(_settings_file(tmp_path / "settings.yaml")))
    monkeypatch.setenv("FOREX_DATABASE_URL", f"sqlite:///{root / 'forex.db'}")
    monkeypatch.setenv("FOREX_ARTIFACTS_DIR", str(root / "artifacts"))
    settings = get_settings()
    db.upgrade(settings.database_url)
    engine = db.get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, GRID, settings.artifacts_dir)
    result = worker.process_batch(
        engine, settings, queue_id, lifecycle.configurations_of(GRID), artifacts_dir=settings.artifacts_dir, sample_dir=None
    )
    assert [o.status for o in result.outcomes] == ["completed"] * 8
    state = _state(engine, settings.artifacts_dir)
    db.dispose_engines()
    return state


@dataclass
class Deployment:
    env: dict[str, str]
    project_db: str
    artifacts: Path
    workers: dict[int, subprocess.Popen]  # process group -> `dagster-celery worker start` (its celery child runs the steps)
    logs: list[Path]

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.logs if p.exists())


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as sink:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture()
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """Two PostgreSQL databases, a shared artefact folder, two Celery workers (the grid is submitted by the test)."""
    prefix = f"forex_multi_{uuid.uuid4().hex[:12]}:"
    bin_dir = Path(sys.executable).parent
    with postgres_database() as dagster_db, postgres_database() as project_db:
        home = postgres_dagster_home(tmp_path / "dagster_home")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FOREX_", "DAGSTER_"))}
        env.update(
            pg_env(dagster_db),
            DAGSTER_HOME=str(home),
            FOREX_DATABASE_URL=project_db,
            FOREX_ARTIFACTS_DIR=str(tmp_path / "shared_artifacts"),
            FOREX_SETTINGS=str(_settings_file(tmp_path / "settings.yaml")),
            FOREX_CELERY_BROKER=BROKER,
            FOREX_CELERY_BACKEND=BACKEND,
            FOREX_CELERY_KEY_PREFIX=prefix,
            PYTHONPATH=str(REPO_ROOT),
            PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        )
        config = tmp_path / "celery_worker.yaml"
        subprocess.run([sys.executable, "-m", "forex_pipeline.dagster_defs.scale_out", str(config)], env=env, check=True, cwd=REPO_ROOT)
        workers, logs = {}, []
        for n in (1, 2):
            log = tmp_path / f"worker{n}.log"
            process = _spawn([sys.executable, "-m", "dagster_celery.cli", "worker", "start", "-A", "dagster_celery.app", "-y", str(config),
                              "-n", f"forex_multi_{n}_{os.getpid()}", "--", "--pool=solo"], env, log)
            workers[process.pid], logs = process, [*logs, log]
        try:
            for process, log in zip(workers.values(), logs):
                _wait_until_ready(process, log)
            yield Deployment(env, project_db, tmp_path / "shared_artifacts", workers, logs)
        finally:
            for process in workers.values():
                _stop(process)
            _drop_redis_keys(prefix, (BROKER, BACKEND))


def _submit_to_daemon(deployment: Deployment) -> int:
    """`grid submit --detach` (the CLI a user runs): migrate, queue the grid and hand it to the daemon."""
    cli = [sys.executable, "-m", "forex_pipeline.cli.__main__"]
    for args in (["db", "upgrade"], ["grid", "submit", str(deployment.artifacts.parent / "grid.yaml"), "--detach"]):
        out = subprocess.run([*cli, *args], env=deployment.env, capture_output=True, text=True, timeout=240, cwd=REPO_ROOT)
        assert out.returncode == 0, out.stdout + out.stderr
    return int(next(line.split("=")[1] for line in out.stdout.splitlines() if line.startswith("queue_id=")))


def _group_of(pid: int | None) -> int | None:
    """The process group of a live pid (a worker's group is its `dagster-celery worker start` process)."""
    try:
        return os.getpgid(pid) if pid else None
    except ProcessLookupError:
        return None


def _claims(engine) -> tuple[dict[int, int], dict[int, list[str]]]:  # noqa: ANN001
    """Completed models per worker pid, and the configurations each worker pid holds running now."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT worker_pid, status, partition_key FROM training_runs")).all()
    completed: dict[int, int] = {}
    running: dict[int, list[str]] = {}
    for pid, status, key in rows:
        if status == "completed":
            completed[pid] = completed.get(pid, 0) + 1
        elif status == "running":
            running.setdefault(pid, []).append(key)
    return completed, running


def test_two_workers_share_a_grid_and_survive_a_sigkill(
    deployment: Deployment, single_process_state: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from forex_pipeline.store import db

    (deployment.artifacts.parent / "grid.yaml").write_text(yaml.safe_dump(GRID))
    queue_id = _submit_to_daemon(deployment)
    engine = db.make_engine(deployment.project_db)
    daemon = _spawn([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(REPO_ROOT / "workspace.yaml")],
                    deployment.env, deployment.artifacts.parent / "daemon.log")
    deployment.logs.append(deployment.artifacts.parent / "daemon.log")
    try:
        # kill a worker that has finished a model and is in the middle of the next one
        deadline = time.monotonic() + GRID_DEADLINE_SECONDS
        worker_of: dict[int, int] = {}  # pid that trained (celery's process) -> worker process group
        victim, lost_key = None, None
        while victim is None and time.monotonic() < deadline:
            completed, running = _claims(engine)
            worker_of.update((pid, group) for pid in [*completed, *running] if pid not in worker_of and (group := _group_of(pid)))
            for pid, keys in running.items():
                group = worker_of.get(pid)
                if group in deployment.workers and any(worker_of.get(p) == group for p in completed):
                    victim, lost_key = group, keys[0]
                    os.killpg(group, signal.SIGKILL)  # the worker and everything it started, no goodbye
                    deployment.workers[group].wait()
                    break
            time.sleep(0.1)
        assert victim is not None, "no worker was ever mid-model after finishing one\n" + deployment.log_tail()
        survivor = next(group for group in deployment.workers if group != victim)

        status = None
        while status != "completed" and time.monotonic() < deadline:
            time.sleep(1)
            with engine.connect() as connection:
                status = connection.execute(text("SELECT status FROM training_queue WHERE id = :id"), {"id": queue_id}).scalar_one()
        assert status == "completed", f"queue {status} after {GRID_DEADLINE_SECONDS}s\n" + deployment.log_tail()
        assert deployment.workers[survivor].poll() is None
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()

    with engine.connect() as connection:
        trained_by = dict(connection.execute(text("SELECT partition_key, worker_pid FROM training_runs WHERE status = 'completed'")).all())
        hosts = {row[0] for row in connection.execute(text("SELECT DISTINCT worker_host FROM training_runs"))}
        without_task = connection.execute(text("SELECT count(*) FROM training_runs WHERE celery_task_id IS NULL")).scalar_one()
        queue = connection.execute(text("SELECT completed_models, failed_models FROM training_queue WHERE id = :id"), {"id": queue_id}).one()
        errors = connection.execute(text("SELECT partition_key, error_message FROM training_runs WHERE status <> 'completed'")).all()
    groups = {key: worker_of.get(pid) or _group_of(pid) for key, pid in trained_by.items()}
    assert tuple(queue) == (8, 0), f"lost {lost_key}; not completed: {errors}"
    assert len(groups) == 8 and set(groups.values()) == {victim, survivor}, groups  # both workers trained models
    assert groups[lost_key] == survivor  # the model in flight on the killed worker was trained by the other
    assert hosts == {socket.gethostname()}
    assert without_task == 0  # every claim knew its Celery task, so a lost one could be failed

    for name, value in deployment.env.items():
        if name.startswith("DAGSTER_PG_"):
            monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(deployment.env["DAGSTER_HOME"]) as instance:
        records = instance.get_run_records(dg.RunsFilter(job_name="grid_batch_celery"))
        stuck = [r for r in records if r.dagster_run.status in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING)]
        failed = [r for r in records if r.dagster_run.status == dg.DagsterRunStatus.FAILURE]
        events = [e.event_log_entry.dagster_event for r in failed for e in instance.get_records_for_run(r.dagster_run.run_id).records]
    messages = " ".join(str(e.message or "") + str(e.event_specific_data or "") for e in events if e is not None)
    assert stuck == []
    assert len(failed) == 1  # the run whose worker died, failed through the result backend
    assert "WorkerLost" in messages and lost_key in messages

    state = _state(engine, deployment.artifacts)
    engine.dispose()
    for part in ("runs", "bests", "kept_files"):
        assert state[part] == single_process_state[part], part
    assert state["kept_files"]
