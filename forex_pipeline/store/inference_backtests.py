"""inference_backtests: one row per inference configuration and regime of a trained model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from forex_pipeline.store.common import is_nan, select_frame
from forex_pipeline.store.tables import (
    BACKTEST_COLUMNS,
    BACKTEST_METRICS,
    InferenceBacktest,
    TrainingRun,
    utcnow,
)

if TYPE_CHECKING:
    pass


def _backtest_rows(training_run_id: int, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for executemany: exactly the contract columns, NaN -> None, integers as int."""
    missing = [c for c in BACKTEST_COLUMNS if c not in frame.columns]
    extra = [c for c in frame.columns if c not in BACKTEST_COLUMNS]
    if missing or extra:
        raise ValueError(
            f"backtest frame columns: missing {missing}, unexpected {extra}; expected {list(BACKTEST_COLUMNS)}"
        )
    nulls = [c for c in BACKTEST_COLUMNS if c not in BACKTEST_METRICS and frame[c].isna().any()]
    if nulls:
        raise ValueError(f"backtest frame has missing values in required column(s) {nulls}")
    now = utcnow()
    metrics = set(BACKTEST_METRICS)
    rows = []
    for record in frame.loc[:, list(BACKTEST_COLUMNS)].to_dict("records"):
        row = {k: (None if k in metrics and is_nan(v) else v) for k, v in record.items()}
        row["trade_count"], row["n_bars"] = int(row["trade_count"]), int(row["n_bars"])
        row["lookback_window"] = int(row["lookback_window"])
        row["confidence_threshold"] = float(row["confidence_threshold"])
        row["training_run_id"], row["created_at"] = training_run_id, now
        rows.append(row)
    return rows




def batch_insert_backtests(
    session: Session, training_run_id: int, frame: pd.DataFrame, *, replace: bool = False
) -> int:
    """Insert one model's backtest results in one executemany (NaN metrics stored as NULL).

    `frame` has exactly the columns of docs/architecture.md "Backtest results". With replace=True
    the run's earlier rows (and any regime bests pointing at them) are deleted first.
    """
    rows = _backtest_rows(training_run_id, frame)
    if session.get(TrainingRun, training_run_id) is None:
        raise LookupError(f"no training run with id {training_run_id}")
    if replace:
        session.execute(delete(InferenceBacktest).where(InferenceBacktest.training_run_id == training_run_id))
    if rows:
        session.execute(insert(InferenceBacktest.__table__), rows)
    return len(rows)


def get_backtests(session: Session, training_run_id: int) -> pd.DataFrame:
    """A run's backtest rows as a DataFrame (id, training_run_id and the contract columns; NULL -> NaN)."""
    columns = ["id", "training_run_id", *BACKTEST_COLUMNS]
    statement = (
        select(*(getattr(InferenceBacktest, c) for c in columns))
        .where(InferenceBacktest.training_run_id == training_run_id)
        .order_by(InferenceBacktest.id)
    )
    return select_frame(session, statement, columns, float_columns=BACKTEST_METRICS)
