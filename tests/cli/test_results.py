"""`forex-pipeline bests` and `history` against a real migrated SQLite database."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
import typer
from sqlalchemy import update
from typer.testing import CliRunner

from forex_pipeline.cli import results
from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.hashing import config_hash
from forex_pipeline.models.spec import ModelConfiguration, ModelSpec
from forex_pipeline.store import db
from forex_pipeline.store import inference_backtests, regime_best_models, regime_definitions, training_runs
from forex_pipeline.store.tables import BACKTEST_COLUMNS, TrainingRun

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables wide enough that no cell is folded across lines."""
    monkeypatch.setenv("COLUMNS", "250")


def _app() -> typer.Typer:
    app = typer.Typer()
    results.register(app)
    return app


def _invoke(*args: str):  # noqa: ANN202 - click Result
    return runner.invoke(_app(), list(args))


def _backtests(rows: list[tuple[str, float, float, int]]) -> pd.DataFrame:
    """(prediction_method, sharpe, max_drawdown, lookback) rows over regime `all`, 40 trades each."""
    records = []
    for method, sharpe, drawdown, lookback in rows:
        records.append({
            "prediction_method": method, "ensemble_method": "mean", "confidence_threshold": 0.5,
            "lookback_window": lookback, "inference_config_hash": config_hash([method, "mean", 0.5, lookback]),
            "regime": "all", "segment": "selection", "sharpe": sharpe, "sortino": sharpe, "max_drawdown": drawdown, "total_return": 0.01,
            "win_rate": 0.5, "profit_factor": 1.1, "trade_count": 40, "exposure": 0.5, "n_bars": 1000,
        })
    return pd.DataFrame(records, columns=list(BACKTEST_COLUMNS))


AS_OF = datetime(2019, 12, 31, tzinfo=timezone.utc)
RUNS = {
    # name: symbol, model_type, horizon, status, created_at, backtests
    "a": ("EURUSD", "ridge", 1, "completed", datetime(2026, 1, 1, tzinfo=timezone.utc), [("direct", 0.5, -0.10, 50), ("recursive", 1.2, -0.05, 100)]),
    "b": ("EURUSD", "rf", 5, "completed", datetime(2026, 1, 5, tzinfo=timezone.utc), [("direct", 2.0, -0.30, 50), ("direct_multi", -0.3, -0.20, 200)]),
    "c": ("GBPUSD", "ridge", 1, "failed", datetime(2026, 1, 10, tzinfo=timezone.utc), []),
}


@pytest.fixture()
def populated(isolated_storage: Path) -> dict[str, training_runs.TrainingRunRecord]:
    """Three runs (two completed with backtests, one failed) and bull_trending bests: b then a."""
    url = f"sqlite:///{isolated_storage / 'forex_pipeline.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    records = {}
    try:
        with db.session_scope(engine) as session:
            regime_definitions.seed_regime_definitions(session)
            for name, (symbol, model_type, horizon, status, created, tests) in RUNS.items():
                fs = FeatureSetSpec(symbol=symbol, base_timeframe="1h", days_history=365, as_of=AS_OF)
                ms = ModelSpec(model_type=model_type, horizon=horizon)
                run = training_runs.insert_training_run(session, training_runs.training_run_fields(ModelConfiguration.of(fs, ms)))
                training_runs.mark_run_status(session, run.model_config_hash, status, training_seconds=3.0 + horizon, backtest_seconds=1.0)
                if tests:
                    inference_backtests.batch_insert_backtests(session, run.id, _backtests(tests))
                session.execute(update(TrainingRun).where(TrainingRun.id == run.id).values(created_at=created))
                records[name] = training_runs.get_training_run(session, run.id)
            backtests = {name: inference_backtests.get_backtests(session, records[name].id) for name in ("a", "b")}
            best_b = backtests["b"].sort_values("sharpe").iloc[-1]
            best_a = backtests["a"].sort_values("sharpe").iloc[-1]
            regime_best_models.replace_regime_bests(session, "bull_trending", [
                {"rank": 1, "training_run_id": records["b"].id, "inference_backtest_id": int(best_b["id"]),
                 "inference_config_hash": best_b["inference_config_hash"], "score": 2.0, "previous_best_score": 1.6,
                 "improvement": 0.25, "trade_count": 40, "n_trials": 4, "deflated_sharpe": 0.91},
                {"rank": 2, "training_run_id": records["a"].id, "inference_backtest_id": int(best_a["id"]),
                 "inference_config_hash": best_a["inference_config_hash"], "score": 1.2, "previous_best_score": None,
                 "improvement": None, "trade_count": 40, "n_trials": 4, "deflated_sharpe": None},
            ])
    finally:
        engine.dispose()
    return records


def _json(*args: str) -> list[dict]:
    result = _invoke(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _ids(rows: list[dict]) -> list[int]:
    return [row["id"] for row in rows]


def test_history_filters(populated: dict[str, training_runs.TrainingRunRecord]) -> None:
    a, b, c = (populated[n].id for n in "abc")
    assert sorted(_ids(_json("history", "--status", "completed"))) == sorted([a, b])
    assert sorted(_ids(_json("history", "--model-type", "ridge"))) == sorted([a, c])
    assert sorted(_ids(_json("history", "--symbol", "EUR/USD"))) == sorted([a, b])
    assert sorted(_ids(_json("history", "--since", "2026-01-03"))) == sorted([b, c])
    assert sorted(_ids(_json("history", "--until", "2026-01-06T00:00:00Z"))) == sorted([a, b])
    assert _ids(_json("history", "--min-sharpe", "1.5")) == [b]
    assert _ids(_json("history", "--max-drawdown", "0.1")) == [a]
    assert _ids(_json("history", "--symbol", "GBPUSD", "--status", "completed")) == []


def test_history_sort_and_paging(populated: dict[str, training_runs.TrainingRunRecord]) -> None:
    a, b, c = (populated[n].id for n in "abc")
    assert _ids(_json("history")) == [c, b, a]
    assert _ids(_json("history", "--sort", "created_at")) == [a, b, c]
    assert _ids(_json("history", "--sort", "best_sharpe", "--desc")) == [b, a, c]
    assert _ids(_json("history", "--sort", "symbol", "--page-size", "2", "--page", "2")) == [c]
    assert _ids(_json("history", "--page-size", "2", "--page", "1")) == [c, b]
    assert _ids(_json("history", "--page-size", "1", "--all")) == [c, b, a]


def test_history_json_values(populated: dict[str, training_runs.TrainingRunRecord]) -> None:
    rows = {row["id"]: row for row in _json("history")}
    b, c = rows[populated["b"].id], rows[populated["c"].id]
    assert b["best_sharpe"] == pytest.approx(2.0) and b["best_max_drawdown"] == pytest.approx(0.20)
    assert b["training_seconds"] == pytest.approx(8.0) and b["model_type"] == "rf" and b["horizon"] == 5
    assert c["best_sharpe"] is None and c["status"] == "failed"
    assert datetime.fromisoformat(b["created_at"]) == datetime(2026, 1, 5, tzinfo=timezone.utc)


def test_history_csv_export_to_file(populated: dict[str, training_runs.TrainingRunRecord], tmp_path: Path) -> None:
    target = tmp_path / "out" / "history.csv"
    result = _invoke("history", "--status", "completed", "--format", "csv", "--output", str(target))
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(target)
    assert list(frame["id"]) == [populated["b"].id, populated["a"].id]
    assert list(frame["partition_key"]) == [populated["b"].partition_key, populated["a"].partition_key]
    assert list(frame["best_sharpe"]) == pytest.approx([2.0, 1.2])
    assert not list(target.parent.glob(".*.tmp"))
    stdout_csv = pd.read_csv(io.StringIO(_invoke("history", "--status", "completed", "--format", "csv").stdout))
    assert stdout_csv.equals(frame)


def test_history_table_shows_page_footer(populated: dict[str, training_runs.TrainingRunRecord]) -> None:
    result = _invoke("history", "--page-size", "2")
    assert result.exit_code == 0, result.output
    assert "page 1 of 2 (3 matching run(s), 2 per page)" in result.stdout
    assert populated["c"].partition_key.split("|")[0] in result.stdout


def test_bests_lists_ranked_models_with_inference_config(populated: dict[str, training_runs.TrainingRunRecord]) -> None:
    rows = _json("bests")
    assert [(r["regime"], r["rank"], r["partition_key"]) for r in rows] == [
        ("bull_trending", 1, populated["b"].partition_key),
        ("bull_trending", 2, populated["a"].partition_key),
    ]
    assert rows[0]["inference_config"] == "direct/mean c>=0.5 lb=50"
    assert rows[1]["inference_config"] == "recursive/mean c>=0.5 lb=100"
    assert rows[0]["improvement"] == pytest.approx(0.25) and rows[1]["improvement"] is None
    assert rows[0]["deflated_sharpe"] == pytest.approx(0.91)
    table = _invoke("bests")
    assert table.exit_code == 0 and "bull_trending" in table.stdout
    assert "0.910" in table.stdout and "+0.250" in table.stdout
    assert _json("bests", "--regime", "calm_ranging") == []


def test_missing_database_is_a_clear_error(isolated_storage: Path) -> None:
    for command in ("bests", "history"):
        result = _invoke(command)
        assert result.exit_code == 1
        assert "db upgrade" in result.stderr
    assert not (isolated_storage / "forex_pipeline.db").exists()


def test_unmigrated_database_is_a_clear_error(isolated_storage: Path) -> None:
    import sqlite3

    sqlite3.connect(isolated_storage / "forex_pipeline.db").close()
    result = _invoke("history")
    assert result.exit_code == 1
    assert "no such table" in result.stderr and "db upgrade" in result.stderr


def test_bad_options_are_refused(populated: dict[str, training_runs.TrainingRunRecord], tmp_path: Path) -> None:
    bad_sort = _invoke("history", "--sort", "colour")
    assert bad_sort.exit_code == 2 and "colour" in bad_sort.stderr
    bad_date = _invoke("history", "--since", "yesterday")
    assert bad_date.exit_code == 2 and "--since" in bad_date.stderr
    table_to_file = _invoke("history", "--output", str(tmp_path / "x.txt"))
    assert table_to_file.exit_code == 2 and not (tmp_path / "x.txt").exists()
    bad_status = _invoke("history", "--status", "done")
    assert bad_status.exit_code == 2 and "done" in bad_status.stderr


def _as_process(*argv: str) -> "subprocess.CompletedProcess[str]":
    """The command run as its own process, the console script's way (`python -m forex_pipeline.cli`)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}   # buffered, as a user's shell has it
    return subprocess.run([sys.executable, "-m", "forex_pipeline.cli", *argv], capture_output=True, text=True,
                          timeout=120, env=env)


def test_reading_commands_run_as_a_process_print_everything_and_keep_their_exit_codes(
    populated: dict[str, training_runs.TrainingRunRecord], isolated_storage: Path
) -> None:
    """`bests`, `history` and `queue status` end their process themselves (cli/common.reading): the
    output must be whole, also past a pipe's buffer, and the exit codes those of the error path."""
    url = f"sqlite:///{isolated_storage / 'forex_pipeline.db'}"
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:   # enough runs that the JSON outgrows a 64 KiB pipe buffer
        for i in range(300):
            fs = FeatureSetSpec(symbol="EURUSD", base_timeframe="1h", days_history=365, as_of=AS_OF)
            ms = ModelSpec(model_type="ridge", horizon=1, hyperparameters={"alpha": 1.0 + i})
            training_runs.insert_training_run(session, training_runs.training_run_fields(ModelConfiguration.of(fs, ms)))
    engine.dispose()
    everything = _as_process("history", "--all", "--format", "json")
    assert everything.returncode == 0, everything.stderr
    assert len(everything.stdout) > 65536
    assert sorted(_ids(json.loads(everything.stdout))) == sorted(_ids(_json("history", "--all")))
    bests = _as_process("bests", "--format", "json")
    assert bests.returncode == 0 and json.loads(bests.stdout) == _json("bests")
    bad_sort = _as_process("history", "--sort", "colour")
    assert bad_sort.returncode == 2 and "colour" in bad_sort.stderr and "Traceback" not in bad_sort.stderr
    no_queue = _as_process("queue", "status", "999")
    assert no_queue.returncode == 2 and "999" in no_queue.stderr and "Traceback" not in no_queue.stderr
