"""history: filters, sort and paging of the training history."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from forex_pipeline.store import history, inference_backtests, training_runs
from forex_pipeline.store.db import session_scope
from forex_pipeline.store.tables import (
    BACKTEST_COLUMNS,
    BACKTEST_METRICS,
    InferenceBacktest,
    TrainingRun,
)

from .conftest import backtest_frame, run_identity


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


def brute_force_fixture(engine: Engine) -> pd.DataFrame:
    """30 runs over 3 symbols, 3 model types and both statuses, each with a few `all` / holdout /
    calm_ranging rows; returns the runs with their figures computed here in pandas from the raw rows."""
    rng = np.random.default_rng(7)
    runs = []
    with session_scope(engine) as session:
        for n in range(30):
            symbol, model_type = ["EURUSD", "GBPUSD", "USDJPY"][n % 3], ["ridge", "rf", "lasso"][(n // 3) % 3]
            run = training_runs.insert_training_run(session, run_identity(n, symbol=symbol, model_type=model_type))
            status = "failed" if n % 7 == 3 else "completed"
            run = training_runs.mark_run_status(session, run.model_config_hash, status, training_seconds=float(rng.integers(1, 6)))
            runs.append(run)
            if status == "failed":
                continue
            frame = backtest_frame(seed=n, regimes=("all", "calm_ranging")).iloc[:8].copy()
            frame["segment"] = ["selection"] * 6 + ["holdout"] * 2
            frame["sharpe"] = np.round(rng.normal(0.5, 1.0, 8), 1)   # rounded: ties in the sort break by id
            if n % 5 == 0:
                frame.loc[frame["regime"] == "all", "sharpe"] = np.nan
            inference_backtests.batch_insert_backtests(session, run.id, frame)
    with session_scope(engine) as session:
        raw = pd.concat([inference_backtests.get_backtests(session, r.id) for r in runs], ignore_index=True)
    ranked = raw[(raw["regime"] == "all") & ~raw["segment"].str.startswith("holdout")]
    figures = ranked.groupby("training_run_id").agg(
        best_sharpe=("sharpe", "max"), best_max_drawdown=("max_drawdown", lambda d: d.abs().min())
    )
    table = pd.DataFrame([{"id": r.id, "symbol": r.symbol, "model_type": r.model_type, "status": r.status,
                           "training_seconds": r.training_seconds, "partition_key": r.partition_key} for r in runs])
    return table.join(figures, on="id")


def expected_ids(table: pd.DataFrame, sort: str, page: int, page_size: int, **where: object) -> tuple[list[int], int]:
    """Filter, sort (NULLs last, ties by id in the sort's direction) and page in pandas."""
    rows = table
    for key, value in where.items():
        if key == "min_sharpe":
            rows = rows[rows["best_sharpe"] >= value]
        elif key == "max_drawdown":
            rows = rows[rows["best_max_drawdown"] <= value]
        elif key == "search":
            rows = rows[rows["partition_key"].str.lower().str.contains(str(value).lower(), regex=False)]
        else:
            rows = rows[rows[key] == value]
    name, descending = sort.lstrip("-"), sort.startswith("-")
    rows = rows.sort_values([name, "id"], ascending=[not descending, not descending], na_position="last", kind="mergesort")
    start = (page - 1) * page_size
    return list(rows["id"].iloc[start : start + page_size]), len(rows)


PAGES = (
        ("-best_sharpe", 1, 7, {}),
        ("-best_sharpe", 4, 7, {}),
        ("best_sharpe", 2, 5, {"status": "completed"}),
        ("-training_seconds", 2, 4, {"model_type": "rf"}),
        ("symbol", 3, 6, {"min_sharpe": 0.5}),
        ("-best_max_drawdown", 1, 50, {"max_drawdown": 0.1, "symbol": "GBPUSD"}),
        ("model_type", 2, 3, {"search": "usdjpy"}),
        ("-best_sharpe", 9, 10, {}),
)


def test_history_pages_match_a_brute_force_pandas_computation(engine: Engine) -> None:
    table = brute_force_fixture(engine)
    for sort, page, page_size, where in PAGES:
        want, total = expected_ids(table, sort, page, page_size, **where)
        got = page_of(engine, sort=sort, page=page, page_size=page_size, **where)
        assert (list(got.rows["id"]), got.total) == (want, total), (sort, page, page_size, where)
        figures = table.set_index("id").loc[want]
        for column in ("best_sharpe", "best_max_drawdown"):
            np.testing.assert_allclose(got.rows[column].to_numpy(dtype=float), figures[column].to_numpy(dtype=float))


def test_risk_return_points_are_the_best_configurations_bounded_by_a_sample(engine: Engine) -> None:
    table = brute_force_fixture(engine)
    with session_scope(engine) as session:
        raw = pd.concat([inference_backtests.get_backtests(session, int(i)) for i in table["id"]], ignore_index=True)
        every = history.risk_return_points(session)
        bounded = history.risk_return_points(session, limit=8, top=3)
    ranked = raw[(raw["regime"] == "all") & ~raw["segment"].str.startswith("holdout") & raw["sharpe"].notna()]
    best = ranked.sort_values(["sharpe", "id"], ascending=[False, True]).drop_duplicates("training_run_id")
    assert list(every["run"]) == list(best["training_run_id"])
    np.testing.assert_allclose(every["max_drawdown"], best["max_drawdown"])
    np.testing.assert_allclose(every["total_return"], best["total_return"])
    assert len(best) > 8 and 3 < len(bounded) <= 8
    assert list(bounded["run"].iloc[:3]) == list(best["training_run_id"].iloc[:3])
    assert set(bounded["run"]) <= set(best["training_run_id"])


def test_history_search_over_configuration_fields(engine: Engine) -> None:
    """Every word must match; `key=value` matches that field exactly (4 is not 40); LIKE wildcards are literal."""
    with session_scope(engine) as session:
        ids = {}
        for n, (symbol, model_type, depth) in enumerate([("EURUSD", "rf", 4), ("EURUSD", "rf", 40), ("GBPUSD", "ridge", None)]):
            identity = run_identity(n, symbol=symbol, model_type=model_type)
            if depth is not None:
                identity["model_spec"] = {**identity["model_spec"], "hyperparameters": {"max_depth": depth, "n_estimators": 50}}
            ids[(symbol, depth)] = training_runs.insert_training_run(session, identity).id
    found = lambda text: set(page_of(engine, search=text).rows["id"])  # noqa: E731
    assert found("gbpusd") == {ids[("GBPUSD", None)]}
    assert found("RF eurusd") == {ids[("EURUSD", 4)], ids[("EURUSD", 40)]}
    assert found("max_depth=4") == {ids[("EURUSD", 4)]}
    assert found("max_depth=40 n_estimators=50") == {ids[("EURUSD", 40)]}
    assert found("d366") == {ids[("EURUSD", 40)]}
    assert found('encoder="none" model_type=ridge') == found("encoder=none ridge") == {ids[("GBPUSD", None)]}
    assert found("366d rf") == {ids[("EURUSD", 40)]} and found("36d") == set()       # as a name writes days_history
    assert found("%") == set() and found("max_depth=4 ridge") == set()
    assert page_of(engine, search="rf", symbol="EURUSD").total == 2
    with pytest.raises(ValueError, match="at most"):
        page_of(engine, search=" ".join("w" * 9))
