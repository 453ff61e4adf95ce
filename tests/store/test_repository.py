"""Repository functions on SQLite and PostgreSQL: constraints, round trips, transactions, queries."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.models.spec import ModelConfiguration, ModelSpec, model_config_hash
from forex_pipeline.settings import get_settings, parse_settings
from forex_pipeline.store import history, inference_backtests, regime_best_models, regime_definitions, training_queue, training_runs
from forex_pipeline.store.db import session_scope
from forex_pipeline.store.tables import BACKTEST_COLUMNS, BACKTEST_METRICS, InferenceBacktest, TrainingQueue, TrainingRun

from .conftest import backtest_frame, run_identity


def add_run(engine: Engine, n: int, **kwargs: str) -> training_runs.TrainingRunRecord:
    with session_scope(engine) as session:
        return training_runs.insert_training_run(session, run_identity(n, **kwargs))


def count(engine: Engine, model: type) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)))


def best_row(rank: int, run_id: int, backtest_id: int, score: float) -> dict:
    return {"rank": rank, "training_run_id": run_id, "inference_backtest_id": backtest_id,
            "inference_config_hash": f"cfg{backtest_id}", "score": score, "previous_best_score": None,
            "improvement": None, "trade_count": 20, "n_trials": 135, "deflated_sharpe": 0.9}


# ------------------------------------------------------------------------------- training runs


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


# ---------------------------------------------------------------------------------- backtests


def test_batch_insert_round_trip_with_nan_as_null(engine: Engine) -> None:
    run = add_run(engine, 1)
    frame = backtest_frame(seed=3)
    assert frame["sharpe"].isna().any() and len(frame) == 135 * 6
    with session_scope(engine) as session:
        assert inference_backtests.batch_insert_backtests(session, run.id, frame) == 810
    with session_scope(engine) as session:
        nulls = session.scalar(select(func.count()).where(InferenceBacktest.sharpe.is_(None)))
        back = inference_backtests.get_backtests(session, run.id)
    assert nulls == int(frame["sharpe"].isna().sum()) > 0
    assert list(back.columns) == ["id", "training_run_id", *BACKTEST_COLUMNS]
    assert (back["training_run_id"] == run.id).all()
    pd.testing.assert_frame_equal(
        back[list(BACKTEST_COLUMNS)].reset_index(drop=True), frame, check_dtype=False, check_exact=False, rtol=1e-12
    )


def test_batch_insert_rejects_wrong_columns_and_missing_runs(engine: Engine) -> None:
    run = add_run(engine, 1)
    frame = backtest_frame()
    wrong_columns = r"missing \['n_bars'\].*unexpected \['extra'\]"
    with session_scope(engine) as session, pytest.raises(ValueError, match=wrong_columns):
        inference_backtests.batch_insert_backtests(session, run.id, frame.drop(columns="n_bars").assign(extra=1))
    with session_scope(engine) as session, pytest.raises(ValueError, match="regime"):
        inference_backtests.batch_insert_backtests(session, run.id, frame.assign(regime=None))
    with session_scope(engine) as session, pytest.raises(LookupError, match="9999"):
        inference_backtests.batch_insert_backtests(session, 9999, frame)


def test_duplicate_backtest_rows_violate_the_unique_key_and_replace_works(engine: Engine) -> None:
    run = add_run(engine, 1)
    frame = backtest_frame(regimes=("all",))
    with session_scope(engine) as session:
        inference_backtests.batch_insert_backtests(session, run.id, frame)
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        inference_backtests.batch_insert_backtests(session, run.id, frame.iloc[:1])
    with session_scope(engine) as session:
        inference_backtests.batch_insert_backtests(session, run.id, frame.iloc[:10], replace=True)
    assert count(engine, InferenceBacktest) == 10


def test_deleting_a_run_cascades_to_backtests_and_bests(engine: Engine) -> None:
    keep, gone = add_run(engine, 1), add_run(engine, 2)
    with session_scope(engine) as session:
        inference_backtests.batch_insert_backtests(session, keep.id, backtest_frame(seed=1))
        inference_backtests.batch_insert_backtests(session, gone.id, backtest_frame(seed=2))
        test_id = int(inference_backtests.get_backtests(session, gone.id)["id"].iloc[0])
        regime_best_models.replace_regime_bests(session, "bull_trending", [best_row(1, gone.id, test_id, 2.0)])
    with session_scope(engine) as session:
        session.delete(session.get(TrainingRun, gone.id))
    assert count(engine, InferenceBacktest) == 810
    with session_scope(engine) as session:
        assert regime_best_models.current_bests(session).empty
        assert inference_backtests.get_backtests(session, gone.id).empty


def test_a_failed_transaction_leaves_nothing_half_written(engine: Engine) -> None:
    run = add_run(engine, 1)
    with pytest.raises(RuntimeError, match="crash"), session_scope(engine) as session:
        training_runs.mark_run_status(session, run.model_config_hash, "completed", training_seconds=9.0)
        inference_backtests.batch_insert_backtests(session, run.id, backtest_frame())
        training_runs.insert_training_run(session, run_identity(2))
        raise RuntimeError("crash after the writes")
    with session_scope(engine) as session:
        after = training_runs.get_training_run(session, run.id)
        assert after is not None and after.status == "pending" and after.training_seconds is None
    assert count(engine, InferenceBacktest) == 0
    assert count(engine, TrainingRun) == 1


# ------------------------------------------------------------------------------- regime bests


def test_replace_regime_bests_and_current_bests(engine: Engine) -> None:
    runs = [add_run(engine, n) for n in range(3)]
    with session_scope(engine) as session:
        ids = {}
        for run in runs:
            inference_backtests.batch_insert_backtests(session, run.id, backtest_frame(seed=run.id))
            ids[run.id] = inference_backtests.get_backtests(session, run.id)
        first = [best_row(1, runs[0].id, int(ids[runs[0].id]["id"].iloc[0]), 1.0)]
        regime_best_models.replace_regime_bests(session, "calm_ranging", first)
        second = [best_row(1, runs[2].id, int(ids[runs[2].id]["id"].iloc[5]), 2.5),
                  best_row(2, runs[0].id, int(ids[runs[0].id]["id"].iloc[0]), 1.0)]
        second[0].update(previous_best_score=1.0, improvement=1.5)
        regime_best_models.replace_regime_bests(session, "calm_ranging", second)
        to_delete = training_runs.set_kept(session, before=set(), after={runs[0].id, runs[2].id})
    with session_scope(engine) as session:
        bests = regime_best_models.current_bests(session)
    assert list(bests["rank"]) == [1, 2] and set(bests["regime"]) == {"calm_ranging"}
    top = bests.iloc[0]
    source = ids[runs[2].id].iloc[5]
    assert top["model_config_hash"] == runs[2].model_config_hash and top["improvement"] == 1.5
    for column in ("prediction_method", "lookback_window", "confidence_threshold"):
        assert top[column] == source[column], column
    assert list(bests["kept"]) == [True, True] and to_delete == []
    assert bests["updated_at"].iloc[0].tzinfo is not None


def test_replace_regime_bests_validates(engine: Engine) -> None:
    run = add_run(engine, 1)
    with session_scope(engine) as session:
        inference_backtests.batch_insert_backtests(session, run.id, backtest_frame(regimes=("all",)))
        test_id = int(inference_backtests.get_backtests(session, run.id)["id"].iloc[0])
        with pytest.raises(ValueError, match="ranks must be 1..1"):
            regime_best_models.replace_regime_bests(session, "calm_ranging", [best_row(2, run.id, test_id, 1.0)])
        with pytest.raises(ValueError, match="more than once"):
            regime_best_models.replace_regime_bests(session, "calm_ranging", [best_row(1, run.id, test_id, 1.0),
                                                               best_row(2, run.id, test_id, 0.5)])
        with pytest.raises(LookupError, match="'martian'"):
            regime_best_models.replace_regime_bests(session, "martian", [best_row(1, run.id, test_id, 1.0)])


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


# ------------------------------------------------------------------------------ regime definitions


def test_regime_definition_crud(engine: Engine) -> None:
    with session_scope(engine) as session:
        added = regime_definitions.add_regime_definition(session, "quiet_asia", {"volatility_percentile": {"max": 0.2}},
                                           description="Asian session lull")
        assert added.is_builtin is False and added.rules == {"volatility_percentile": {"max": 0.2}}
        regime_definitions.update_regime_definition(session, "quiet_asia", rules={"volatility_percentile": {"max": 0.1}})
        regime_definitions.set_regime_enabled(session, "bull_trending", False)
    with session_scope(engine) as session:
        enabled = {r.name for r in regime_definitions.list_regime_definitions(session, enabled_only=True)}
        assert regime_definitions.get_regime_definition(session, "quiet_asia").rules == {"volatility_percentile": {"max": 0.1}}
    assert enabled == {"bear_trending", "volatile_ranging", "calm_ranging", "quiet_asia"}
    with session_scope(engine) as session:
        with pytest.raises(ValueError, match="already exists"):
            regime_definitions.add_regime_definition(session, "quiet_asia", {"trend_strength": {"min": 0.1}})
        with pytest.raises(ValueError, match="unknown regime rule feature"):
            regime_definitions.add_regime_definition(session, "odd", {"moon_phase": {"min": 0.1}})
        with pytest.raises(ValueError, match="greater than max"):
            regime_definitions.update_regime_definition(session, "quiet_asia", rules={"trend_strength": {"min": 0.9, "max": 0.1}})
        with pytest.raises(ValueError, match="reserved"):
            regime_definitions.add_regime_definition(session, "all", {"trend_strength": {"min": 0.1}})
        with pytest.raises(ValueError, match="built in"):
            regime_definitions.delete_regime_definition(session, "calm_ranging")
        regime_definitions.delete_regime_definition(session, "quiet_asia")
        assert regime_definitions.get_regime_definition(session, "quiet_asia") is None


def test_seed_regime_definitions_is_idempotent(engine: Engine) -> None:
    settings = parse_settings({"regimes": {"definitions": {
        "calm_ranging": {"rules": {"trend_strength": {"max": 0.99}}},
        "breakout": {"description": "new", "rules": {"volatility_percentile": {"min": 0.95}}},
    }}})
    with session_scope(engine) as session:
        regime_definitions.update_regime_definition(session, "calm_ranging", description="edited by hand")
        assert regime_definitions.seed_regime_definitions(session, settings) == ["breakout"]
        assert regime_definitions.seed_regime_definitions(session, settings) == []
        assert regime_definitions.seed_regime_definitions(session) == []
    with session_scope(engine) as session:
        names = [r.name for r in regime_definitions.list_regime_definitions(session)]
        calm = regime_definitions.get_regime_definition(session, "calm_ranging")
    assert sorted(names) == sorted([*get_settings().regimes.definitions, "breakout"])
    yaml_calm = get_settings().regimes.definitions["calm_ranging"].rules
    assert calm.description == "edited by hand"
    assert calm.rules == {feature: bound.model_dump(exclude_none=True) for feature, bound in yaml_calm.items()}


# ------------------------------------------------------------------------------------------ queue


def test_queue_lifecycle(engine: Engine) -> None:
    with session_scope(engine) as session:
        queue = training_queue.create_queue(session, "grid A", {"models": ["ridge"]}, "h" * 64, total_models=4)
    assert (queue.status, queue.completed_models, queue.dagster_run_ids) == ("pending", 0, [])
    with session_scope(engine) as session:
        running = training_queue.set_queue_status(session, queue.id, "running")
        training_queue.add_queue_dagster_run(session, queue.id, "run-1")
        training_queue.add_queue_dagster_run(session, queue.id, "run-1")
        training_queue.update_queue_counts(session, queue.id, failed=1)
        training_queue.update_queue_counts(session, queue.id, failed=1)
        after_failures = training_queue.get_queue(session, queue.id)
        counted = training_queue.update_queue_counts(session, queue.id, completed=1, kept=1)
    assert running.started_at is not None and running.heartbeat_at is not None
    assert after_failures.consecutive_failures == 2
    assert (counted.completed_models, counted.failed_models, counted.kept_models) == (1, 2, 1)
    assert counted.consecutive_failures == 0 and counted.dagster_run_ids == ["run-1"]

    with session_scope(engine) as session:
        flagged = training_queue.request_pause(session, queue.id)
        beat = training_queue.heartbeat(session, queue.id, checkpoint={"done": ["a"], "sharpe": float("nan")})
    assert flagged.status == "running" and flagged.pause_requested and beat.pause_requested
    assert beat.checkpoint == {"done": ["a"], "sharpe": None}
    with session_scope(engine) as session:
        paused = training_queue.set_queue_status(session, queue.id, "paused")
        resumed = training_queue.set_queue_status(session, queue.id, "running")
        cancelling = training_queue.request_cancel(session, queue.id)
        cancelled = training_queue.set_queue_status(session, queue.id, "cancelled")
    assert paused.status == "paused" and not paused.pause_requested
    assert resumed.started_at == running.started_at and cancelling.cancel_requested
    assert cancelled.finished_at is not None
    with session_scope(engine) as session, pytest.raises(ValueError, match="from 'cancelled' to 'running'"):
        training_queue.set_queue_status(session, queue.id, "running")
    with session_scope(engine) as session, pytest.raises(ValueError, match="status 'sleeping'"):
        training_queue.set_queue_status(session, queue.id, "sleeping")


def test_waiting_queues_pause_and_cancel_at_once_and_stale_ones_are_found(engine: Engine) -> None:
    with session_scope(engine) as session:
        a = training_queue.create_queue(session, "a", {}, "a", 1)
        b = training_queue.create_queue(session, "b", {}, "b", 1)
        c = training_queue.create_queue(session, "c", {}, "c", 1)
        assert training_queue.request_pause(session, a.id).status == "paused"
        assert training_queue.request_cancel(session, b.id).status == "cancelled"
        training_queue.set_queue_status(session, c.id, "running")
    with session_scope(engine) as session:
        assert training_queue.find_stale_queues(session, 60) == []
        later = datetime.now(timezone.utc) + timedelta(minutes=5)
        assert [q.id for q in training_queue.find_stale_queues(session, 60, now=later)] == [c.id]
        assert [q.name for q in training_queue.list_queues(session)] == ["c", "b", "a"]
        assert [q.name for q in training_queue.list_queues(session, status="paused")] == ["a"]
        with pytest.raises(LookupError, match="12345"):
            training_queue.heartbeat(session, 12345)


def test_queue_counts_from_its_runs(engine: Engine) -> None:
    with session_scope(engine) as session:
        queue = training_queue.create_queue(session, "q", {}, "q", 3)
        for n, status in enumerate(["completed", "completed", "failed"]):
            run = training_runs.insert_training_run(session, run_identity(n), queue_id=queue.id, status=status)
        training_runs.mark_file_deleted(session, run.id)
        recounted = training_queue.set_queue_counts(session, queue.id, completed=2, failed=1)
        assert len(training_runs.runs_of_queue(session, queue.id)) == 3
    assert (recounted.completed_models, recounted.failed_models, recounted.deleted_models) == (2, 1, 1)
    with session_scope(engine) as session:
        session.delete(session.get(TrainingQueue, queue.id))
    with session_scope(engine) as session:
        assert training_runs.get_training_run(session, run.id).queue_id is None


# ----------------------------------------------------------------------------------------- history


def history_fixture(engine: Engine) -> list[training_runs.TrainingRunRecord]:
    """Four runs: two symbols, two model types, known best Sharpe / drawdown in regime `all`."""
    specs = [(0, "EURUSD", "ridge", 0.5, -0.30), (1, "EURUSD", "rf", 1.5, -0.05),
             (2, "GBPUSD", "rf", 2.5, -0.20), (3, "GBPUSD", "ridge", None, None)]
    runs = []
    with session_scope(engine) as session:
        for n, symbol, model_type, sharpe, drawdown in specs:
            run = training_runs.insert_training_run(session, run_identity(n, symbol=symbol, model_type=model_type))
            runs.append(training_runs.mark_run_status(session, run.model_config_hash, "completed" if sharpe else "failed",
                                             training_seconds=10.0 + n))
            if sharpe is None:
                continue
            frame = backtest_frame(seed=n, regimes=("all", "calm_ranging")).iloc[:4].copy()
            frame["regime"] = ["all", "all", "calm_ranging", "calm_ranging"]
            frame["inference_config_hash"] = ["c1", "c2", "c1", "c2"]
            frame["sharpe"] = [sharpe, sharpe - 1.0, sharpe + 10, np.nan]
            frame["max_drawdown"] = [drawdown, drawdown * 2, -0.01, -0.01]
            inference_backtests.batch_insert_backtests(session, run.id, frame)
    return runs


def page_of(engine: Engine, **filters: object) -> history.HistoryPage:
    with session_scope(engine) as session:
        return history.query_history(session, history.HistoryFilter(**filters))


def test_history_filters_sort_and_pages(engine: Engine) -> None:
    runs = history_fixture(engine)
    everything = page_of(engine)
    assert everything.total == 4 and list(everything.rows["id"]) == [r.id for r in reversed(runs)]
    by_sharpe = page_of(engine, sort="-best_sharpe")
    assert list(by_sharpe.rows["best_sharpe"].iloc[:3]) == [2.5, 1.5, 0.5]
    assert math.isnan(by_sharpe.rows["best_sharpe"].iloc[3])
    assert set(page_of(engine, symbol="gbp/usd").rows["id"]) == {runs[2].id, runs[3].id}
    assert set(page_of(engine, model_type="rf", status="completed").rows["id"]) == {runs[1].id, runs[2].id}
    assert set(page_of(engine, status="failed").rows["id"]) == {runs[3].id}
    assert set(page_of(engine, min_sharpe=1.0).rows["id"]) == {runs[1].id, runs[2].id}
    assert set(page_of(engine, max_drawdown=0.25).rows["id"]) == {runs[1].id, runs[2].id}
    assert set(page_of(engine, min_sharpe=1.0, max_drawdown=0.1).rows["id"]) == {runs[1].id}
    page = page_of(engine, sort="training_seconds", page=2, page_size=3)
    assert (page.total, page.pages, list(page.rows["id"])) == (4, 2, [runs[3].id])


def test_history_date_range_and_bad_input(engine: Engine) -> None:
    runs = history_fixture(engine)
    with session_scope(engine) as session:
        session.get(TrainingRun, runs[0].id).created_at = datetime(2020, 1, 1, tzinfo=timezone.utc)
    old = page_of(engine, until=datetime(2021, 1, 1, tzinfo=timezone.utc))
    recent = page_of(engine, since=datetime(2021, 1, 1, tzinfo=timezone.utc))
    assert list(old.rows["id"]) == [runs[0].id] and recent.total == 3
    with pytest.raises(ValueError, match="sort 'speed'"):
        page_of(engine, sort="speed")
    with pytest.raises(ValueError, match="naive"):
        page_of(engine, since=datetime(2021, 1, 1))
    with pytest.raises(ValueError, match="page"):
        page_of(engine, page=0)


def test_metric_columns_are_nullable_floats() -> None:
    assert set(BACKTEST_METRICS) <= set(BACKTEST_COLUMNS)
    for name in BACKTEST_METRICS:
        assert InferenceBacktest.__table__.c[name].nullable
