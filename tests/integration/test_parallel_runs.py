"""Four concurrent Dagster runs over the same grid end in the same bests as a serial run and as an
offline recomputation from the inference_backtests table, and train every configuration once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import dagster as dg
import pandas as pd
import pytest

from forex_pipeline.queue import lifecycle, worker

from forex_pipeline.dagster_defs.jobs import execute_batch
from forex_pipeline.regimes.selection import select_regime_bests
from forex_pipeline.settings import get_settings
from forex_pipeline.store import regime_best_models, regime_definitions
from forex_pipeline.store.db import dispose_engines, get_engine, session_scope
from tests.support import TINY_GRID

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent(
    """
    import json, random, sys
    import dagster as dg
    from forex_pipeline.dagster_defs.definitions import defs
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store.db import get_engine
    from forex_pipeline.queue.lifecycle import pending_configurations

    queue_id, seed = int(sys.argv[1]), int(sys.argv[2])
    keys = [c.partition_key for c in pending_configurations(get_engine(get_settings().database_url), queue_id)]
    random.Random(seed).shuffle(keys)
    result = defs.resolve_job_def("grid_batch").execute_in_process(
        run_config={"ops": {"run_grid_batch": {"config": {"queue_id": queue_id, "partition_keys": keys}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    print(json.dumps(result.output_for_node("run_grid_batch")))
    """
)

IDENTITY = ["regime", "rank", "model_config_hash", "inference_config_hash", "score"]


def _bests(engine) -> pd.DataFrame:
    with session_scope(engine) as session:
        frame = regime_best_models.current_bests(session)
    return frame[IDENTITY].assign(score=frame["score"].round(9)).sort_values(["regime", "rank"]).reset_index(drop=True)


def _backtests_in_regime(session, regime: str) -> pd.DataFrame:  # noqa: ANN001 - Session
    """Every completed run's backtest rows in `regime` (the selection input), read straight from the tables."""
    from sqlalchemy import select

    from forex_pipeline.store.tables import BACKTEST_COLUMNS, BACKTEST_METRICS, InferenceBacktest, TrainingRun

    columns = ["inference_backtest_id", "training_run_id", "model_config_hash", "partition_key", *BACKTEST_COLUMNS]
    statement = (
        select(
            InferenceBacktest.id, InferenceBacktest.training_run_id, TrainingRun.model_config_hash, TrainingRun.partition_key,
            *(getattr(InferenceBacktest, c) for c in BACKTEST_COLUMNS),
        )
        .join(TrainingRun, TrainingRun.id == InferenceBacktest.training_run_id)
        .where(InferenceBacktest.regime == regime, TrainingRun.status == "completed")
        .order_by(InferenceBacktest.id)
    )
    frame = pd.DataFrame([tuple(row) for row in session.execute(statement)], columns=columns)
    for name in BACKTEST_METRICS:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


def _offline_bests(engine, settings) -> pd.DataFrame:
    """Recompute the bests from every stored backtest at once, with no standing bests."""
    with session_scope(engine) as session:
        regimes = [r.name for r in regime_definitions.list_regime_definitions(session, enabled_only=True)]
        rows = pd.concat([_backtests_in_regime(session, regime) for regime in regimes], ignore_index=True)
    selection = select_regime_bests(
        rows, pd.DataFrame(), top_n=settings.file_management.keep_top_n_per_regime, min_trades=settings.regimes.min_trades, regimes=regimes
    )
    frame = selection.bests
    return frame[IDENTITY].assign(score=frame["score"].astype(float).round(9)).sort_values(["regime", "rank"]).reset_index(drop=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_database(request, grid_env, monkeypatch):
    """The database the four workers share: the SQLite file of grid_env, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield get_settings().database_url
        return
    from forex_pipeline.store.db import upgrade
    from tests.store.conftest import postgres_database

    with postgres_database() as url:
        monkeypatch.setenv("FOREX_DATABASE_URL", url)
        upgrade(url)
        yield url


def test_four_concurrent_runs_match_serial_and_offline(shared_database, tmp_path, monkeypatch):
    settings = get_settings()
    assert settings.database_url == shared_database
    engine = get_engine(settings.database_url)

    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    lifecycle.start(engine, queue_id)
    env = {**os.environ}
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(queue_id), str(seed)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in range(4)
    ]
    summaries = []
    for process in workers:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(s["completed"] for s in summaries) == 6, summaries  # each configuration trained exactly once
    assert sum(s["failed"] for s in summaries) == 0
    parallel = _bests(engine)
    assert len(parallel) >= 1
    # the same values; a string column may be object or pandas' str dtype depending on the path that built it
    pd.testing.assert_frame_equal(parallel, _offline_bests(engine, settings), check_dtype=False)
    kept_files = sorted(p.name for p in (settings.artifacts_dir / "models").rglob("*.joblib"))

    serial_home = tmp_path / "serial"
    monkeypatch.setenv("FOREX_DATABASE_URL", f"sqlite:///{serial_home / 'db.sqlite'}")
    monkeypatch.setenv("FOREX_ARTIFACTS_DIR", str(serial_home / "artifacts"))
    dispose_engines()
    serial_settings = get_settings()
    from forex_pipeline.store.db import upgrade

    upgrade(serial_settings.database_url)
    serial_engine = get_engine(serial_settings.database_url)
    serial_queue = lifecycle.submit_grid(serial_engine, TINY_GRID, serial_settings.artifacts_dir)
    with dg.instance_for_test() as instance:
        final = worker.run_queue(
            serial_engine, serial_settings, serial_queue, lambda q, b: execute_batch(instance, q, b), artifacts_dir=serial_settings.artifacts_dir
        )
    assert final.status == "completed"
    pd.testing.assert_frame_equal(parallel, _bests(serial_engine))
    assert kept_files == sorted(p.name for p in (serial_settings.artifacts_dir / "models").rglob("*.joblib"))
