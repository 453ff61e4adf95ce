"""SIGKILL the grid process at random points, resume, and compare with an uninterrupted run."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from forex_pipeline.io import is_temp_path
from tests.support import TINY_GRID, write_test_settings

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "forex_pipeline.cli.__main__"]


def _env(root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    home = root / "dagster_home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOREX_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        FOREX_DATABASE_URL=f"sqlite:///{home / 'forex_pipeline.db'}",
        FOREX_ARTIFACTS_DIR=str(home / "artifacts"),
        FOREX_SETTINGS=str(write_test_settings(root / "settings.yaml")),
    )
    return env


def _cli(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _submit(root: Path, env: dict[str, str], horizons: list[int] | None = None) -> str:
    grid = root / "grid.yaml"
    spec = TINY_GRID if horizons is None else {**TINY_GRID, "model_specs": {**TINY_GRID["model_specs"], "horizons": horizons}}
    grid.write_text(yaml.safe_dump(spec))
    out = _cli(env, "grid", "submit", str(grid), "--no-run")
    assert out.returncode == 0, out.stderr
    return next(line.split("=")[1] for line in out.stdout.splitlines() if line.startswith("queue_id="))


def _state(env: dict[str, str]) -> dict:
    """What must be identical: training runs, backtest counts, bests, kept files (by content)."""
    db = sqlite3.connect(env["FOREX_DATABASE_URL"].removeprefix("sqlite:///"))
    runs = sorted(db.execute("select model_config_hash, status, kept, model_sha256 from training_runs").fetchall())
    duplicates = db.execute(
        "select count(*) from (select model_config_hash from training_runs group by model_config_hash having count(*) > 1)"
    ).fetchone()[0]
    backtests = sorted(
        db.execute(
            "select r.model_config_hash, count(*), count(distinct b.inference_config_hash || b.regime) "
            "from inference_backtests b join training_runs r on r.id = b.training_run_id group by r.model_config_hash"
        ).fetchall()
    )
    bests = sorted(
        (regime, rank, h, cfg, round(score, 9), trades, trials)
        for regime, rank, h, cfg, score, trades, trials in db.execute(
            "select b.regime, b.rank, r.model_config_hash, b.inference_config_hash, b.score, b.trade_count, b.n_trials "
            "from regime_best_models b join training_runs r on r.id = b.training_run_id"
        )
    )
    db.close()
    models = Path(env["FOREX_ARTIFACTS_DIR"]) / "models"
    files = sorted(
        (p.relative_to(models).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest()) for p in models.rglob("*") if p.is_file()
    )
    return {"runs": runs, "duplicates": duplicates, "backtests": backtests, "bests": bests, "files": files}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("uninterrupted")
    env = _env(root)
    queue_id = _submit(root, env)
    out = _cli(env, "queue", "run", queue_id)
    assert out.returncode == 0, out.stdout + out.stderr
    return {"state": _state(env)}


def _completed(env: dict[str, str]) -> int:
    path = env["FOREX_DATABASE_URL"].removeprefix("sqlite:///")
    if not Path(path).exists():
        return 0
    with sqlite3.connect(path) as db:
        try:
            return db.execute("select count(*) from training_runs where status = 'completed'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def _kill_at_random_point(command: list[str], env: dict[str, str], rng: random.Random, total: int) -> bool:
    """Start the worker and SIGKILL it once a random number of models is done plus a random moment
    (during start-up, training, the backtests or the database transaction); False if it finished first."""
    target, extra = rng.randrange(0, total - 1), rng.uniform(0.0, 1.0)
    process = subprocess.Popen([*CLI, *command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while process.poll() is None and _completed(env) < target and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(extra)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait()
    return True


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_then_resume_gives_the_uninterrupted_result(tmp_path, baseline, seed):
    rng = random.Random(seed)
    env = _env(tmp_path)
    queue_id = _submit(tmp_path, env)
    total = len(baseline["state"]["runs"])
    kills = 0
    for attempt in range(3):
        command = ["queue", "run" if attempt == 0 else "resume", queue_id]
        if not _kill_at_random_point(command, env, rng, total):
            break
        kills += 1
    status = json.loads(_cli(env, "queue", "status", queue_id).stdout)["status"]
    if status != "completed":
        out = _cli(env, "queue", "resume", queue_id)
        assert out.returncode == 0, out.stdout + out.stderr
    assert kills >= 1, "the grid finished before any kill; the test proved nothing"
    state = _state(env)
    for part in ("runs", "duplicates", "backtests", "bests", "files"):
        got, want = state[part], baseline["state"][part]
        if isinstance(got, list):
            assert got == want, f"{part}: extra {sorted(set(got) - set(want))}, missing {sorted(set(want) - set(got))}"
        assert got == want, part
    assert baseline["state"]["duplicates"] == 0
    leftovers = [p for p in Path(env["FOREX_ARTIFACTS_DIR"]).rglob("*") if is_temp_path(p)]
    assert leftovers == []
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        stuck = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]))
        killed = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    assert stuck == [], "a killed batch run still reads STARTED in Dagster"
    assert len(killed) >= 1  # the run each kill interrupted, marked failed when its queue was found interrupted


def test_cancel_stops_a_running_worker_now_and_keeps_finished_work(tmp_path):
    from forex_pipeline.queue.lifecycle import cancel
    from forex_pipeline.store.db import make_engine

    env = _env(tmp_path)
    queue_id = _submit(tmp_path, env, horizons=[1, 2, 3, 4, 5, 6, 7, 8])
    process = subprocess.Popen([*CLI, "queue", "run", queue_id], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    db_path = env["FOREX_DATABASE_URL"].removeprefix("sqlite:///")
    deadline = time.monotonic() + 240
    completed = 0
    while completed < 1 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        with sqlite3.connect(db_path) as db:
            completed = db.execute("select count(*) from training_runs where status = 'completed'").fetchone()[0]
    assert completed >= 1 and process.poll() is None, "the worker finished or never completed a model"
    cancel(make_engine(env["FOREX_DATABASE_URL"]), int(queue_id))
    process.wait(timeout=60)
    db = sqlite3.connect(db_path)
    status, done = db.execute("select status, completed_models from training_queue where id = ?", (int(queue_id),)).fetchone()
    statuses = dict(db.execute("select status, count(*) from training_runs group by status").fetchall())
    db.close()
    assert status == "cancelled"
    assert 1 <= statuses.get("completed", 0) < 16
    assert "running" not in statuses  # the model in flight was abandoned, not left claimed
    assert done == statuses["completed"]
    resumed = _cli(env, "queue", "resume", queue_id)
    assert resumed.returncode != 0 and "cancelled" in resumed.stderr
    again = _cli(env, "queue", "cancel", queue_id)
    assert again.returncode == 1 and "nothing to cancel" in again.stderr
