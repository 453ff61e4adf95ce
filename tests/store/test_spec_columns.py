"""Every column of the specification's five tables by its name and meaning, its queries run unchanged on
SQLite and PostgreSQL, and migration 0004_spec_names upgrades a populated database in place and back."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text

from forex_pipeline.store import db, inference_backtests, regime_best_models, training_queue, training_runs
from forex_pipeline.store.db import session_scope
from tests.store.conftest import backtest_frame, run_identity

# The specification's 66 columns (issue 15 lists the 39 that were missing; the others existed already).
SPEC_COLUMNS: dict[str, tuple[str, ...]] = {
    "training_runs": (
        "id", "run_uuid", "symbol", "base_timeframe", "days_history", "horizon", "model_type", "encoder", "indicator_tfs",
        "additional_features", "preprocessing_params", "model_hyperparams", "status", "training_metrics", "feature_count",
        "training_duration_seconds", "model_file_path", "model_file_size_bytes", "is_model_kept", "best_regimes",
        "created_at", "created_by", "config_hash",
    ),
    "inference_backtests": (
        "id", "backtest_uuid", "training_run_id", "inference_params", "prediction_method", "ensemble_method",
        "confidence_threshold", "lookback_window", "backtest_metrics", "regime_metrics", "backtest_duration_seconds",
        "created_at", "completed_at",
    ),
    "regime_definitions": ("id", "regime_name", "description", "detection_rules", "is_active", "created_at", "updated_at"),
    "regime_best_models": (
        "id", "regime_name", "training_run_id", "inference_backtest_id", "performance_score", "secondary_metrics", "achieved_at",
    ),
    "training_queue": (
        "id", "queue_uuid", "name", "config_grid", "status", "current_index", "total_configs", "completed_count",
        "failed_count", "skipped_count", "created_at", "started_at", "paused_at", "completed_at", "priority", "max_parallel",
    ),
}


def spec_query(engine: Engine, sql: str, *params: Any) -> list[tuple]:
    """Run the specification's SQL as written (`?` placeholders) through the driver itself."""
    if engine.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    with engine.begin() as connection:
        result = connection.exec_driver_sql(sql, tuple(params))
        return [tuple(row) for row in result] if result.returns_rows else []


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def test_the_specification_has_66_columns_and_every_one_exists(engine: Engine) -> None:
    assert sum(len(c) for c in SPEC_COLUMNS.values()) == 66
    inspector = inspect(engine)
    for table, columns in SPEC_COLUMNS.items():
        present = {c["name"] for c in inspector.get_columns(table)}
        assert set(columns) <= present, (table, sorted(set(columns) - present))


def _populate(engine: Engine, artifacts: Path) -> dict[str, Any]:
    with session_scope(engine) as session:
        queue = training_queue.create_queue(session, "spec", {"name": "spec"}, "g" * 64, 3, priority=5, max_parallel=2)
        run = training_runs.insert_training_run(session, run_identity(1), queue_id=queue.id)
        training_runs.mark_run_status(
            session, run.model_config_hash, "completed", training_seconds=12.5, metrics={"val_mse": 0.25},
            model_path="models/fs/m.joblib", model_bytes=4096, feature_count=37,
        )
        inference_backtests.batch_insert_backtests(session, run.id, backtest_frame(0), duration_seconds=27.0)
        rows = inference_backtests.get_backtests(session, run.id)
        best = rows[(rows["regime"] == "bull_trending") & (rows["trade_count"] > 0)].iloc[0]
        regime_best_models.replace_regime_bests(session, "bull_trending", [{
            "rank": 1, "training_run_id": run.id, "inference_backtest_id": int(best["id"]),
            "inference_config_hash": best["inference_config_hash"], "score": 1.5, "trade_count": 20, "n_trials": 135,
            "deflated_sharpe": 0.97, "pbo": 0.1,
        }])
        training_runs.set_kept(session, before={run.id}, after={run.id})
        training_runs.set_best_regimes(session, {run.id}, {run.id: ["bull_trending"]})
        training_queue.set_queue_status(session, queue.id, "running")
        training_queue.set_queue_counts(session, queue.id, completed=2, failed=1, skipped=1)
    return {"run": run, "queue": queue, "best_backtest_id": int(best["id"])}


def test_the_specification_queries_run_unchanged_and_mean_what_it_says(engine: Engine, tmp_path: Path) -> None:
    made = _populate(engine, tmp_path)
    run, queue = made["run"], made["queue"]
    assert spec_query(engine, "SELECT id FROM training_runs WHERE config_hash = ?", run.model_config_hash) == [(run.id,)]
    assert spec_query(engine, "SELECT id FROM training_runs WHERE config_hash = ?", "0" * 64) == []

    (row,) = spec_query(engine, "SELECT run_uuid, days_history, indicator_tfs, additional_features, preprocessing_params, "
                                "model_hyperparams, training_metrics, feature_count, training_duration_seconds, model_file_path, "
                                "model_file_size_bytes, is_model_kept, best_regimes, created_by FROM training_runs WHERE id = ?", run.id)
    identity = run_identity(1)
    assert len(row[0]) == 36 and row[1] == identity["feature_set"]["days_history"]
    assert _json(row[6]) == {"val_mse": 0.25} and row[7] == 37 and row[8] == 12.5
    assert row[9] == "models/fs/m.joblib" and row[10] == 4096 and bool(row[11]) is True
    assert _json(row[12]) == ["bull_trending"] and row[13]

    # crash detection: running queues whose start is older than the cut-off, with where they stood
    later = (datetime.now(timezone.utc) + timedelta(minutes=1)).replace(tzinfo=None)
    crashed = spec_query(engine, "SELECT id, queue_uuid, current_index, total_configs, completed_count, failed_count, skipped_count "
                                 "FROM training_queue WHERE status = 'running' AND started_at < ?", later)
    assert crashed == [(queue.id, queue.queue_uuid, 3, 3, 1, 1, 1)]
    assert spec_query(engine, "SELECT priority, max_parallel, config_grid FROM training_queue WHERE queue_uuid = ?", queue.queue_uuid)[0][:2] == (5, 2)

    documents = spec_query(engine, "SELECT backtest_uuid, inference_params, backtest_metrics, regime_metrics, backtest_duration_seconds "
                                   "FROM inference_backtests WHERE training_run_id = ? AND backtest_metrics IS NOT NULL", run.id)
    assert len(documents) == 135  # one JSON row per inference configuration
    assert len({d[0] for d in documents}) == 135
    frame = backtest_frame(0)
    first = frame[frame["regime"] == "all"].iloc[0]
    params = {"prediction_method": first["prediction_method"], "ensemble_method": first["ensemble_method"],
              "confidence_threshold": float(first["confidence_threshold"]), "lookback_window": int(first["lookback_window"])}
    (match,) = [d for d in documents if _json(d[1]) == params]
    assert _json(match[2])["trade_count"] == int(first["trade_count"])
    per_regime = _json(match[3])
    assert set(per_regime) == {"bull_trending", "bear_trending", "volatile_ranging", "calm_ranging", "unclassified"}
    bull = frame[(frame["regime"] == "bull_trending") & (frame["inference_config_hash"] == first["inference_config_hash"])].iloc[0]
    assert per_regime["bull_trending"]["n_bars"] == int(bull["n_bars"])
    assert match[4] == pytest.approx(27.0 / 135)

    bests = spec_query(engine, "SELECT regime_name, training_run_id, inference_backtest_id, performance_score, secondary_metrics, achieved_at "
                               "FROM regime_best_models WHERE regime_name = ? ORDER BY performance_score DESC", "bull_trending")
    assert [b[:4] for b in bests] == [("bull_trending", run.id, made["best_backtest_id"], 1.5)]
    assert _json(bests[0][4])["deflated_sharpe"] == 0.97 and bests[0][5] is not None
    active = spec_query(engine, "SELECT regime_name, detection_rules FROM regime_definitions WHERE is_active = ? ORDER BY id", True)
    assert [a[0] for a in active] == ["bull_trending", "bear_trending", "volatile_ranging", "calm_ranging"]
    assert "trend_strength" in _json(active[0][1])
    assert spec_query(engine, "SELECT COUNT(*) FROM training_runs WHERE is_model_kept = ?", True) == [(1,)]


def test_achieved_at_survives_re_ranking_and_a_newcomer_gets_its_own(engine: Engine, tmp_path: Path) -> None:
    made = _populate(engine, tmp_path)
    run = made["run"]
    with session_scope(engine) as session:
        before = dict(spec_query(engine, "SELECT training_run_id, achieved_at FROM regime_best_models"))
        other = training_runs.insert_training_run(session, run_identity(2))
        inference_backtests.batch_insert_backtests(session, other.id, backtest_frame(1))
        other_rows = inference_backtests.get_backtests(session, other.id)
        bt = other_rows[other_rows["regime"] == "bull_trending"].iloc[0]
        own = regime_best_models.current_bests(session)
        rows = [{"rank": 1, "training_run_id": other.id, "inference_backtest_id": int(bt["id"]), "inference_config_hash": bt["inference_config_hash"],
                 "score": 2.0, "trade_count": 30, "n_trials": 270},
                {"rank": 2, "training_run_id": run.id, "inference_backtest_id": made["best_backtest_id"],
                 "inference_config_hash": own.iloc[0]["inference_config_hash"], "score": 1.5, "trade_count": 20, "n_trials": 270}]
        regime_best_models.replace_regime_bests(session, "bull_trending", rows)
    after = dict(spec_query(engine, "SELECT training_run_id, achieved_at FROM regime_best_models"))
    assert after[run.id] == before[run.id]
    assert after[other.id] is not None and str(after[other.id]) >= str(before[run.id])


def _populate_at_0002(url: str, model_path: str) -> None:
    engine = db.make_engine(url)
    try:
        with engine.begin() as connection:
            now = "2026-11-30 12:00:00"
            connection.execute(text(
                "INSERT INTO training_queue (id, name, grid_spec, grid_hash, status, total_models, completed_models, failed_models, "
                "kept_models, deleted_models, consecutive_failures, dagster_run_ids, pause_requested, cancel_requested, created_at, updated_at) "
                "VALUES (1, 'q', '{}', 'g', 'paused', 4, 1, 0, 1, 0, 0, '[]', :f, :f, :now, :now)"
            ), {"f": False, "now": now})
            connection.execute(text(
                "INSERT INTO training_runs (id, model_config_hash, partition_key, feature_set_hash, model_spec_hash, feature_set, model_spec, "
                "symbol, base_timeframe, model_type, encoder, horizon, status, kept, model_path, training_seconds, created_at, queue_id) "
                "VALUES (1, 'mc', 'fs|ms', 'fsh', 'msh', :fs, :ms, 'EURUSD', '1h', 'ridge', 'none', 5, 'completed', :kept, :path, 3.5, :now, 1)"
            ), {"kept": True, "now": now, "path": model_path,
                "fs": json.dumps({"days_history": 365, "indicator_timeframes": {"rsi": ["1h"]}, "additional_features": [], "preprocessing": {"warmup_bars": 100}}),
                "ms": json.dumps({"hyperparameters": {"alpha": 1.0}})})
            for regime, sharpe in (("all", 1.25), ("bull_trending", 2.0)):
                connection.execute(text(
                    "INSERT INTO inference_backtests (training_run_id, inference_config_hash, prediction_method, ensemble_method, "
                    "confidence_threshold, lookback_window, regime, segment, sharpe, trade_count, n_bars, created_at) "
                    "VALUES (1, 'cfg', 'direct', 'mean', 0.5, 50, :regime, 'selection', :sharpe, 20, 500, :now)"
                ), {"regime": regime, "sharpe": sharpe, "now": now})
            connection.execute(text(
                "INSERT INTO regime_best_models (regime, rank, training_run_id, inference_backtest_id, inference_config_hash, score, "
                "trade_count, n_trials, deflated_sharpe, updated_at) VALUES ('bull_trending', 1, 1, 2, 'cfg', 2.0, 20, 135, 0.7, :now)"
            ), {"now": now})
    finally:
        engine.dispose()


def test_0004_upgrades_a_populated_database_in_place_and_downgrades(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifacts = tmp_path / "store"
    monkeypatch.setenv("FOREX_ARTIFACTS_DIR", str(artifacts))
    monkeypatch.chdir(tmp_path)
    absolute = str(artifacts / "models" / "fs" / "m.joblib")
    assert db.upgrade(db_url, "0002_trust") == "0002_trust"
    _populate_at_0002(db_url, absolute)
    assert db.upgrade(db_url) == db.head_revision()
    engine = db.make_engine(db_url)
    try:
        (run,) = spec_query(engine, "SELECT run_uuid, config_hash, days_history, indicator_tfs, model_hyperparams, model_file_path, "
                                    "training_duration_seconds, is_model_kept, best_regimes FROM training_runs")
        assert len(run[0]) == 36 and run[1] == "mc" and run[2] == 365 and _json(run[3]) == {"rsi": ["1h"]}
        assert _json(run[4]) == {"alpha": 1.0} and run[5] == "models/fs/m.joblib" and run[6] == 3.5 and bool(run[7])
        assert _json(run[8]) == ["bull_trending"]
        rows = spec_query(engine, "SELECT regime, backtest_uuid, inference_params, backtest_metrics, regime_metrics FROM inference_backtests ORDER BY id")
        assert rows[1][1:] == (None, None, None, None)
        assert len(rows[0][1]) == 36 and _json(rows[0][2])["lookback_window"] == 50
        assert _json(rows[0][3])["sharpe"] == 1.25 and _json(rows[0][4])["bull_trending"]["sharpe"] == 2.0
        (best,) = spec_query(engine, "SELECT regime_name, performance_score, secondary_metrics, achieved_at FROM regime_best_models")
        assert best[:2] == ("bull_trending", 2.0) and _json(best[2])["deflated_sharpe"] == 0.7 and best[3] is not None
        (queue,) = spec_query(engine, "SELECT queue_uuid, total_configs, completed_count, skipped_count, paused_at, priority, max_parallel FROM training_queue")
        assert len(queue[0]) == 36 and queue[1:4] == (4, 1, 0) and queue[4] is not None and queue[5:] == (0, 1)
    finally:
        engine.dispose()

    assert db.downgrade(db_url, "0002_trust") == "0002_trust"
    engine = db.make_engine(db_url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("training_runs")}
        assert "run_uuid" not in columns and "config_hash" not in columns
        assert spec_query(engine, "SELECT model_path FROM training_runs") == [(absolute,)]
        assert spec_query(engine, "SELECT COUNT(*) FROM inference_backtests") == [(2,)]
        assert spec_query(engine, "SELECT COUNT(*) FROM regime_best_models") == [(1,)]
    finally:
        engine.dispose()
    assert db.upgrade(db_url) == db.head_revision()
