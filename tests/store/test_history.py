"""history: filters, sort and paging of the training history."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
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
