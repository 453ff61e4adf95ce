"""regime_best_models: the ranked best models of each regime, and the lock that serialises their update."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from forex_pipeline.store.common import is_nan, select_frame
from forex_pipeline.store.tables import (
    InferenceBacktest,
    RegimeBestModel,
    RegimeDefinitionRow,
    TrainingRun,
    utcnow,
)

if TYPE_CHECKING:
    pass


BEST_COLUMNS: tuple[str, ...] = (
    "regime",
    "rank",
    "training_run_id",
    "model_config_hash",
    "partition_key",
    "symbol",
    "base_timeframe",
    "model_type",
    "encoder",
    "horizon",
    "inference_backtest_id",
    "inference_config_hash",
    "prediction_method",
    "ensemble_method",
    "confidence_threshold",
    "lookback_window",
    "score",
    "previous_best_score",
    "improvement",
    "trade_count",
    "n_trials",
    "deflated_sharpe",
    "updated_at",
    "kept",
    "model_path",
)
BEST_REQUIRED_FIELDS: tuple[str, ...] = (
    "rank",
    "training_run_id",
    "inference_backtest_id",
    "inference_config_hash",
    "score",
    "trade_count",
    "n_trials",
)
BEST_ROW_FIELDS: tuple[str, ...] = (
    "rank",
    "training_run_id",
    "inference_backtest_id",
    "inference_config_hash",
    "score",
    "previous_best_score",
    "improvement",
    "trade_count",
    "n_trials",
    "deflated_sharpe",
)


def current_bests(session: Session) -> pd.DataFrame:
    """Every regime's ranked best models with their configuration and inference settings."""
    run, best, test = TrainingRun, RegimeBestModel, InferenceBacktest
    statement = (
        select(
            best.regime, best.rank, best.training_run_id, run.model_config_hash, run.partition_key, run.symbol,
            run.base_timeframe, run.model_type, run.encoder, run.horizon, best.inference_backtest_id,
            best.inference_config_hash, test.prediction_method, test.ensemble_method, test.confidence_threshold,
            test.lookback_window, best.score, best.previous_best_score, best.improvement, best.trade_count,
            best.n_trials, best.deflated_sharpe, best.updated_at, run.kept, run.model_path,
        )
        .join(run, run.id == best.training_run_id)
        .join(test, test.id == best.inference_backtest_id)
        .order_by(best.regime, best.rank)
    )
    floats = ("confidence_threshold", "score", "previous_best_score", "improvement", "deflated_sharpe")
    return select_frame(session, statement, BEST_COLUMNS, float_columns=floats)


def lock_regime(session: Session, regime: str) -> None:
    """Serialize updates of one regime's bests: row lock on PostgreSQL (SQLite's write lock suffices)."""
    found = session.scalar(
        select(RegimeDefinitionRow.id).where(RegimeDefinitionRow.name == regime).with_for_update()
    )
    if found is None:
        raise LookupError(f"regime {regime!r} is not defined in regime_definitions")


def _best_rows(regime: str, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validated rows of one regime's bests: known fields, ranks exactly 1..N, one row per run."""
    for i, row in enumerate(rows):
        missing = [f for f in BEST_REQUIRED_FIELDS if row.get(f) is None]
        unknown = sorted(set(row) - set(BEST_ROW_FIELDS))
        if missing or unknown:
            raise ValueError(f"regime {regime!r} best row {i}: missing {missing}, unknown {unknown}")
        if is_nan(float(row["score"])):
            raise ValueError(f"regime {regime!r} best row {i}: score is NaN")
    ranks = sorted(int(row["rank"]) for row in rows)
    if ranks != list(range(1, len(rows) + 1)):
        raise ValueError(f"regime {regime!r}: ranks must be 1..{len(rows)} without gaps, got {ranks}")
    runs = [row["training_run_id"] for row in rows]
    if len(set(runs)) != len(runs):
        raise ValueError(f"regime {regime!r}: a training run appears more than once in {runs}")
    now = utcnow()
    return [{**{f: row.get(f) for f in BEST_ROW_FIELDS}, "regime": regime, "updated_at": now} for row in rows]


def replace_regime_bests(session: Session, regime: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Replace a regime's ranked bests with `rows` (fields BEST_ROW_FIELDS); call inside one transaction."""
    values = _best_rows(regime, rows)
    lock_regime(session, regime)
    session.execute(delete(RegimeBestModel).where(RegimeBestModel.regime == regime))
    if values:
        session.execute(insert(RegimeBestModel), values)
    return len(values)
