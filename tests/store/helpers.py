"""Helpers shared by the store repository tests: a training run, row counts, a regime-best row."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from forex_pipeline.store import training_runs
from forex_pipeline.store.db import session_scope

from .conftest import run_identity


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
