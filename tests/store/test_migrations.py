"""The Alembic migration: creates the five tables and seeds the regimes, drops them, and runs again."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from forex_pipeline.settings import get_settings
from forex_pipeline.store import db
from forex_pipeline.store.tables import Base

TABLES = {
    "training_runs", "inference_backtests", "regime_definitions", "regime_best_models", "training_queue",
    "training_run_summaries", "regime_trial_moments",
}


def table_names(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def seeded_regimes(url: str) -> dict[str, tuple[dict, bool, bool]]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT name, rules, is_builtin, enabled FROM regime_definitions"))
            return {
                name: (rules if isinstance(rules, dict) else json.loads(rules), bool(builtin), bool(enabled))
                for name, rules, builtin, enabled in rows
            }
    finally:
        engine.dispose()


def schema_differences(url: str) -> list:
    """What autogenerate would change to make the migrated schema match the SQLAlchemy models."""
    engine = db.make_engine(url)

    def on_this_dialect(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001 - Alembic's hook
        only = getattr(obj, "_ddl_if", None)   # an index declared for one dialect (e.g. PostgreSQL's covering ones)
        return only is None or only.dialect in (None, engine.dialect.name)

    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": on_this_dialect})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert db.current(db_url) is None
    assert db.upgrade(db_url) == db.head_revision() == "0006_history_indexes"
    assert table_names(db_url) == TABLES
    expected = {
        name: ({f: b.model_dump(exclude_none=True) for f, b in d.rules.items()}, True, True)
        for name, d in get_settings().regimes.definitions.items()
    }
    assert set(expected) == {"bull_trending", "bear_trending", "volatile_ranging", "calm_ranging"}
    assert seeded_regimes(db_url) == expected
    assert schema_differences(db_url) == []

    assert db.downgrade(db_url) is None
    assert table_names(db_url) == set()
    assert db.current(db_url) is None

    assert db.upgrade(db_url) == db.head_revision()
    assert table_names(db_url) == TABLES
    assert set(seeded_regimes(db_url)) == set(expected)


def test_upgrade_seeds_the_regimes_of_the_settings_file(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_file = tmp_path / "custom.yaml"
    settings_file.write_text(
        "regimes:\n  definitions:\n    quiet:\n      description: low vol\n"
        "      rules: {volatility_percentile: {max: 0.2}}\n"
    )
    monkeypatch.setenv("FOREX_SETTINGS", str(settings_file))
    db.upgrade(db_url)
    assert seeded_regimes(db_url) == {"quiet": ({"volatility_percentile": {"max": 0.2}}, True, True)}


def test_upgrade_is_idempotent_and_current_reports_head(sqlite_url: str) -> None:
    db.upgrade(sqlite_url)
    db.upgrade(sqlite_url)
    assert db.current(sqlite_url) == db.head_revision()
    assert len(seeded_regimes(sqlite_url)) == len(get_settings().regimes.definitions)


def test_sqlite_parent_directory_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'forex.db'}"
    db.upgrade(url)
    assert (tmp_path / "a" / "b" / "forex.db").is_file()


def test_migration_files_are_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    migrations = db.MIGRATIONS_DIR
    shipped = [migrations / "alembic.ini", migrations / "env.py", migrations / "script.py.mako",
               *sorted((migrations / "versions").glob("*.py"))]
    assert all(path.is_file() for path in shipped) and len(shipped) >= 4
    for glob in ("migrations/*.ini", "migrations/*.py", "migrations/versions/*.py", "migrations/*.mako"):
        assert f'"{glob}"' in pyproject, glob


def _populate_at_0001(url: str) -> None:
    """One completed run with two whole-test backtest rows and a regime best, as 0001 stored them."""
    engine = db.make_engine(url)
    try:
        with engine.begin() as connection:
            now = "2026-11-30 12:00:00"
            connection.execute(text(
                "INSERT INTO training_runs (id, model_config_hash, partition_key, feature_set_hash, model_spec_hash, "
                "feature_set, model_spec, symbol, base_timeframe, model_type, encoder, horizon, status, kept, created_at) "
                "VALUES (1, 'mc', 'fs|ms', 'fsh', 'msh', '{}', '{}', 'EURUSD', '1h', 'ridge', 'none', 5, 'completed', "
                ":kept, :now)"
            ), {"kept": True, "now": now})
            for regime in ("all", "bull_trending"):   # ids 1 and 2
                connection.execute(text(
                    "INSERT INTO inference_backtests (training_run_id, inference_config_hash, prediction_method, "
                    "ensemble_method, confidence_threshold, lookback_window, regime, sharpe, trade_count, n_bars, "
                    "created_at) VALUES (1, 'cfg', 'direct', 'mean', 0.5, 50, :regime, 1.25, 20, 500, :now)"
                ), {"regime": regime, "now": now})
            connection.execute(text(
                "INSERT INTO regime_best_models (regime, rank, training_run_id, inference_backtest_id, "
                "inference_config_hash, score, trade_count, n_trials, deflated_sharpe, updated_at) "
                "VALUES ('bull_trending', 1, 1, 2, 'cfg', 1.25, 20, 135, 0.7, :now)"
            ), {"now": now})
    finally:
        engine.dispose()


def _rows(url: str, sql: str) -> list[tuple]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(text(sql))]
    finally:
        engine.dispose()


def test_0002_keeps_existing_rows_as_the_whole_test_segment_and_downgrades(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Populated at 0001 -> 0002: backtests become segment 'test' with NULL trust columns, the best
    survives with NULL trust fields; new segments can be stored beside them; 0002 -> 0001 keeps the
    'test' rows (and their best) and drops the others; the schema matches the models at head."""
    monkeypatch.chdir(tmp_path)
    assert db.upgrade(db_url, "0001_initial") == "0001_initial"
    _populate_at_0001(db_url)
    assert db.upgrade(db_url) == db.head_revision()
    assert schema_differences(db_url) == []
    assert _rows(db_url, "SELECT id, segment, sharpe, sharpe_per_bar, skewness, block_sum_ret FROM inference_backtests ORDER BY id") == [
        (1, "test", 1.25, None, None, None),
        (2, "test", 1.25, None, None, None),
    ]
    assert _rows(db_url, "SELECT regime, inference_backtest_id, score, deflated_sharpe, selection_score, pbo, significant "
                         "FROM regime_best_models") == [("bull_trending", 2, 1.25, 0.7, None, None, None)]

    from forex_pipeline.store import inference_backtests
    from forex_pipeline.store.db import session_scope

    assert db.upgrade(db_url) == db.head_revision()  # the repository code writes the head schema
    assert schema_differences(db_url) == []
    engine = db.make_engine(db_url)
    try:
        frame = pd.DataFrame([{
            "prediction_method": "direct", "ensemble_method": "mean", "confidence_threshold": 0.5,
            "lookback_window": 50, "inference_config_hash": "cfg", "regime": "bull_trending", "segment": segment,
            "sharpe": 1.0, "sortino": 1.0, "max_drawdown": -0.1, "total_return": 0.01, "win_rate": 0.5,
            "profit_factor": 1.2, "trade_count": 20, "exposure": 0.5, "n_bars": 300, "sharpe_per_bar": 0.05,
            "skewness": 0.1, "kurtosis": 3.2, "sum_ret": 0.01, "sum_sq": 0.002, "sum_cube": 0.0, "sum_quad": 0.0,
            "block_sum_ret": [0.001] * 16, "block_sum_sq": [0.0001] * 16, "block_n_bars": [10.0] * 16,
        } for segment in ("selection", "holdout")])
        with session_scope(engine) as session:
            inference_backtests.batch_insert_backtests(session, 1, frame)
            moments = inference_backtests.regime_trial_moments(session, "selection")
        assert moments == {"bull_trending": (1, 1, pytest.approx(0.05), pytest.approx(0.0025))}
    finally:
        engine.dispose()

    assert db.downgrade(db_url, "0001_initial") == "0001_initial"
    assert _rows(db_url, "SELECT id, regime, sharpe FROM inference_backtests ORDER BY id") == [
        (1, "all", 1.25), (2, "bull_trending", 1.25)
    ]
    assert _rows(db_url, "SELECT regime, inference_backtest_id, score FROM regime_best_models") == [("bull_trending", 2, 1.25)]
    assert db.upgrade(db_url) == db.head_revision()
    assert _rows(db_url, "SELECT COUNT(*) FROM regime_best_models") == [(1,)]
    assert db.downgrade(db_url) is None
    assert table_names(db_url) == set()


def test_0003_backfills_summaries_and_trial_moments_and_downgrades(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Populated at 0002 (rows written as 0002 wrote them) -> 0003: the backfilled summaries and trial
    moments equal what the write path keeps; 0003 -> 0002 keeps every row and restores the index."""
    from forex_pipeline.store import inference_backtests, run_summaries
    from forex_pipeline.store.db import session_scope

    from .conftest import backtest_frame, run_identity
    from .test_run_summaries import expected_moments, expected_summaries

    monkeypatch.chdir(tmp_path)
    assert db.upgrade(db_url, "0002_trust") == "0002_trust"
    frames = {
        1: pd.concat([backtest_frame(seed=1), backtest_frame(seed=2, segment="holdout")], ignore_index=True),
        2: backtest_frame(seed=3, regimes=("all", "calm_ranging")),
    }
    frames[1].loc[frames[1]["regime"] == "unclassified", "sharpe"] = float("nan")
    engine = db.make_engine(db_url)
    try:
        with engine.begin() as connection:
            for run_id, frame in frames.items():
                identity = run_identity(run_id)
                connection.execute(text(
                    "INSERT INTO training_runs (id, model_config_hash, partition_key, feature_set_hash, model_spec_hash, "
                    "feature_set, model_spec, symbol, base_timeframe, model_type, encoder, horizon, status, kept, created_at) "
                    "VALUES (:id, :h, :pk, 'f', 'm', '{}', '{}', 'EURUSD', '1h', 'ridge', 'none', 5, 'completed', :kept, "
                    "'2026-12-01 00:00:00')"
                ), {"id": run_id, "h": identity["model_config_hash"], "pk": identity["partition_key"], "kept": False})
                rows = inference_backtests.stored_rows(frame, run_id, list(range(len(frame)))).drop(columns="id")
                records = rows.astype(object).where(rows.notna(), None).to_dict("records")
                for record in records:
                    record["created_at"] = "2026-12-01 00:00:00"
                    for key in ("block_sum_ret", "block_sum_sq", "block_n_bars"):
                        record[key] = None if record[key] is None else json.dumps(record[key])
                names = list(records[0])
                connection.execute(
                    text(f"INSERT INTO inference_backtests ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"),
                    records,
                )
    finally:
        engine.dispose()
    assert _rows(db_url, "SELECT COUNT(*) FROM inference_backtests") == [(sum(len(f) for f in frames.values()),)]

    assert db.upgrade(db_url) == db.head_revision()
    assert schema_differences(db_url) == []
    engine = db.make_engine(db_url)
    try:
        with session_scope(engine) as session:
            rows = pd.concat([inference_backtests.get_backtests(session, i) for i in frames], ignore_index=True)
            for run_id in frames:
                stored = run_summaries.get_summaries(session, run_id)
                want = expected_summaries(rows[rows["training_run_id"] == run_id])
                assert set(stored) == set(want)
                for regime, fields in want.items():
                    for key, value in fields.items():
                        got = stored[regime][key]
                        assert got == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), (run_id, regime, key)
            for segment in ("selection", "holdout"):
                assert inference_backtests.regime_trial_moments(session, segment) == expected_moments(rows, segment)
    finally:
        engine.dispose()

    assert db.downgrade(db_url, "0002_trust") == "0002_trust"
    assert "training_run_summaries" not in table_names(db_url) and "regime_trial_moments" not in table_names(db_url)
    assert _rows(db_url, "SELECT COUNT(*) FROM inference_backtests") == [(sum(len(f) for f in frames.values()),)]
    engine = db.make_engine(db_url)
    try:
        indexes = {i["name"] for i in inspect(engine).get_indexes("inference_backtests")}
        assert {"ix_inference_backtests_regime_sharpe", "ix_inference_backtests_segment_regime"} <= indexes
    finally:
        engine.dispose()
    assert db.upgrade(db_url) == db.head_revision()
    assert _rows(db_url, "SELECT COUNT(*) FROM training_run_summaries") == [(6 + 2,)]
def test_0005_adds_claim_leases_keeping_runs_and_their_backtests(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0002 -> head (0005): the worker and lease columns arrive NULL on existing runs (no table rebuild, so the
    backtests and the best that refer to the run stay); back to 0002 drops them and keeps the rows."""
    monkeypatch.chdir(tmp_path)
    assert db.upgrade(db_url, "0001_initial") == "0001_initial"
    _populate_at_0001(db_url)
    assert db.upgrade(db_url, "0002_trust") == "0002_trust"
    assert db.upgrade(db_url) == db.head_revision()
    assert schema_differences(db_url) == []
    assert _rows(db_url, "SELECT id, status, worker_host, worker_pid, celery_task_id, heartbeat_at FROM training_runs") == [
        (1, "completed", None, None, None, None)
    ]
    assert _rows(db_url, "SELECT COUNT(*) FROM inference_backtests") == [(2,)]
    assert db.downgrade(db_url, "0002_trust") == "0002_trust"
    engine = db.make_engine(db_url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("training_runs")}
    finally:
        engine.dispose()
    assert not columns & {"worker_host", "worker_pid", "celery_task_id", "heartbeat_at"}
    assert _rows(db_url, "SELECT COUNT(*) FROM inference_backtests") == [(2,)]
    assert _rows(db_url, "SELECT COUNT(*) FROM regime_best_models") == [(1,)]
