"""training_run_summaries: per run and regime (`all` included), what history, the plan estimate and the
dashboards read, computed from a model's backtest rows when they are written (inference_backtests).

Definitions, over the ranked rows (every segment but the holdouts, `not_confirming`):
- `configurations`: how many rows there are;
- `best_sharpe`: the highest Sharpe; `best_max_drawdown`: the smallest |max drawdown| of any row;
- `best_config_*`: the hash, max drawdown, total return and trades of the best-Sharpe row (ties: lower id).
A run written in several calls (without replace) gets the merge of its summaries: the same figures as
one summary over all its rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from forex_pipeline.store.tables import CONFIRMING_SEGMENT_PREFIX, TrainingRunSummary

SUMMARY_FIELDS: tuple[str, ...] = (
    "regime",
    "configurations",
    "best_sharpe",
    "best_max_drawdown",
    "best_config_hash",
    "best_config_max_drawdown",
    "best_config_total_return",
    "best_config_trade_count",
)
_BEST_CONFIG = ("best_config_hash", "best_config_max_drawdown", "best_config_total_return", "best_config_trade_count")


def _number(value: Any) -> float | None:
    """A finite float or None (NaN and NULL alike)."""
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def summarise(frame: pd.DataFrame, ids: np.ndarray) -> list[dict[str, Any]]:
    """One summary per regime of a model's backtest rows (`frame` with the contract columns, `ids` the
    rows' ids in frame order), by the definitions of this module."""
    ranked = np.array([not str(s).startswith(CONFIRMING_SEGMENT_PREFIX) for s in frame["segment"].tolist()], dtype=bool)
    if not ranked.any():
        return []

    def column(name: str) -> np.ndarray:
        return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)[ranked]

    row_ids = np.asarray(ids, dtype=np.int64)[ranked]
    regimes = np.array([str(r) for r in frame["regime"].tolist()], dtype=object)[ranked]
    sharpe, drawdown, total_return = column("sharpe"), column("max_drawdown"), column("total_return")
    trades = frame["trade_count"].to_numpy(dtype=np.int64)[ranked]
    configs = np.array([str(c) for c in frame["inference_config_hash"].tolist()], dtype=object)[ranked]
    out = []
    for regime in sorted(set(regimes.tolist())):
        rows = np.flatnonzero(regimes == regime)
        scored = rows[~np.isnan(sharpe[rows])]
        top = scored[np.lexsort((row_ids[scored], -sharpe[scored]))[0]] if len(scored) else None
        drawdowns = np.abs(drawdown[rows])
        out.append({
            "regime": regime,
            "configurations": int(len(rows)),
            "best_sharpe": _number(sharpe[scored].max()) if len(scored) else None,
            "best_max_drawdown": _number(np.nanmin(drawdowns)) if (~np.isnan(drawdowns)).any() else None,
            "best_config_hash": None if top is None else str(configs[top]),
            "best_config_max_drawdown": None if top is None else _number(drawdown[top]),
            "best_config_total_return": None if top is None else _number(total_return[top]),
            "best_config_trade_count": None if top is None else int(trades[top]),
        })
    return out


def merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The summary of the union of two sets of rows of one run and regime (`old` holds the lower ids)."""
    sharpes = [s for s in (old["best_sharpe"], new["best_sharpe"]) if s is not None]
    drawdowns = [d for d in (old["best_max_drawdown"], new["best_max_drawdown"]) if d is not None]
    top = new if new["best_sharpe"] is not None and (old["best_sharpe"] is None or new["best_sharpe"] > old["best_sharpe"]) else old
    return {
        "regime": old["regime"],
        "configurations": int(old["configurations"]) + int(new["configurations"]),
        "best_sharpe": max(sharpes) if sharpes else None,
        "best_max_drawdown": min(drawdowns) if drawdowns else None,
        **{name: top[name] for name in _BEST_CONFIG},
    }


def get_summaries(session: Session, training_run_id: int) -> dict[str, dict[str, Any]]:
    """A run's summaries by regime (empty when it has no ranked backtest rows)."""
    table = TrainingRunSummary
    statement = select(*(getattr(table, f) for f in SUMMARY_FIELDS)).where(table.training_run_id == training_run_id)
    return {row.regime: dict(row._mapping) for row in session.execute(statement)}


def delete_summaries(session: Session, training_run_id: int) -> None:
    """Forget a run's summaries (its backtest rows are being replaced)."""
    session.execute(delete(TrainingRunSummary).where(TrainingRunSummary.training_run_id == training_run_id))


def merge_summaries(
    session: Session, training_run_id: int, summaries: list[dict[str, Any]], existing: dict[str, dict[str, Any]] | None = None
) -> None:
    """Store a run's summaries of newly written rows, merged with the ones it already has (`existing`:
    get_summaries, read here when not given; {} right after its rows were replaced)."""
    if not summaries:
        return
    if existing is None:
        existing = get_summaries(session, training_run_id)
    rows = [merged(existing[s["regime"]], s) if s["regime"] in existing else s for s in summaries]
    if existing:
        regimes = [s["regime"] for s in summaries if s["regime"] in existing]
        session.execute(
            delete(TrainingRunSummary).where(
                TrainingRunSummary.training_run_id == training_run_id, TrainingRunSummary.regime.in_(regimes)
            )
        )
    session.execute(insert(TrainingRunSummary.__table__), [{"training_run_id": training_run_id, **row} for row in rows])
