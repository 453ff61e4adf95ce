"""regime_best_models: the ranked best models of each regime, and the lock that serialises their update."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:   # pandas loads with current_bests: the CLI reads best_records without it
    import pandas as pd


# The trust figures of a best (regimes/significance.py TRUST_BEST_COLUMNS; docs/regimes.md); NULL on
# rows recorded before they existed. n_trials and deflated_sharpe are older columns.
TRUST_FIELDS: tuple[str, ...] = (
    "selection_score",
    "holdout_score",
    "holdout_trades",
    "null_p_value",
    "pbo",
    "baseline",
    "baseline_score",
    "improvement_over_baseline",
    "significant",
)
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
    *TRUST_FIELDS,
    "updated_at",
    "kept",
    "model_path",
    # what re-deflating a standing best and grouping its trials need (from its backtest row and run)
    "feature_set_hash",
    "segment",
    "sharpe_per_bar",
    "n_bars",
    "skewness",
    "kurtosis",
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
    *TRUST_FIELDS,
)
FLOAT_FIELDS: tuple[str, ...] = (
    "confidence_threshold", "score", "previous_best_score", "improvement", "deflated_sharpe", "selection_score",
    "holdout_score", "null_p_value", "pbo", "baseline_score", "improvement_over_baseline", "sharpe_per_bar",
    "skewness", "kurtosis",
)


def _bests_statement(regime: str | None = None) -> Any:
    """The bests joined with their run and backtest row, columns BEST_COLUMNS, by regime then rank."""
    run, best, test = TrainingRun, RegimeBestModel, InferenceBacktest
    statement = (
        select(
            best.regime, best.rank, best.training_run_id, run.model_config_hash, run.partition_key, run.symbol,
            run.base_timeframe, run.model_type, run.encoder, run.horizon, best.inference_backtest_id,
            best.inference_config_hash, test.prediction_method, test.ensemble_method, test.confidence_threshold,
            test.lookback_window, best.score, best.previous_best_score, best.improvement, best.trade_count,
            best.n_trials, best.deflated_sharpe, *(getattr(best, f) for f in TRUST_FIELDS), best.updated_at,
            run.kept, run.model_path, run.feature_set_hash, test.segment, test.sharpe_per_bar, test.n_bars,
            test.skewness, test.kurtosis,
        )
        .join(run, run.id == best.training_run_id)
        .join(test, test.id == best.inference_backtest_id)
        .order_by(best.regime, best.rank)
    )
    return statement if regime is None else statement.where(best.regime == regime)


def best_records(session: Session, regime: str | None = None) -> list[dict[str, Any]]:
    """current_bests as plain dicts (keys BEST_COLUMNS; NULL is None), optionally of one regime: what the
    CLI prints without loading pandas."""
    return [dict(zip(BEST_COLUMNS, row)) for row in session.execute(_bests_statement(regime))]


def current_bests(session: Session) -> pd.DataFrame:
    """Every regime's ranked best models with their configuration, inference settings and trust figures
    (holdout_trades as Int64 and significant as boolean, both nullable: NULL on rows from before them)."""
    frame = select_frame(session, _bests_statement(), BEST_COLUMNS, float_columns=FLOAT_FIELDS)
    frame["holdout_trades"] = frame["holdout_trades"].astype("Int64")
    frame["significant"] = frame["significant"].astype("boolean")
    return frame


def best_regimes_of_runs(session: Session, training_run_ids: Sequence[int]) -> dict[int, list[str]]:
    """For each given run that is a regime best, the regimes it holds (sorted); runs that hold none are absent."""
    statement = (
        select(RegimeBestModel.training_run_id, RegimeBestModel.regime)
        .where(RegimeBestModel.training_run_id.in_(list(training_run_ids)))
        .order_by(RegimeBestModel.training_run_id, RegimeBestModel.regime)
    )
    found: dict[int, list[str]] = {}
    for run_id, regime in session.execute(statement):
        found.setdefault(int(run_id), []).append(str(regime))
    return found


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
    return [{**{f: _plain(row.get(f)) for f in BEST_ROW_FIELDS}, "regime": regime, "updated_at": now} for row in rows]


def _plain(value: Any) -> Any:
    """A value the drivers take: numpy scalars -> Python, NaN / pd.NA -> None."""
    import pandas as pd

    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    return None if is_nan(value) else value


# The figures beside the score, gathered under the specification's secondary_metrics.
SECONDARY_FIELDS: tuple[str, ...] = tuple(
    f for f in BEST_ROW_FIELDS if f not in ("rank", "training_run_id", "inference_backtest_id", "inference_config_hash", "score")
)


def replace_regime_bests(session: Session, regime: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Replace a regime's ranked bests with `rows` (fields BEST_ROW_FIELDS) under its lock; call inside
    one transaction. A model that stays in the top N keeps its achieved_at (when it entered); a newcomer gets now."""
    _best_rows(regime, rows)
    lock_regime(session, regime)
    return replace_bests(session, {regime: rows})


def replace_bests(session: Session, rows_by_regime: Mapping[str, Sequence[Mapping[str, Any]]]) -> int:
    """replace_regime_bests for every regime of `rows_by_regime` at once (three statements: read the
    achieved_at of the standing rows, delete, insert); the caller holds those regimes' locks (keep-or-delete
    locks every regime first). Returns how many rows were written."""
    values = {regime: _best_rows(regime, rows) for regime, rows in rows_by_regime.items()}
    if not values:
        return 0
    best = RegimeBestModel
    entered = {
        (str(regime), int(run)): at
        for regime, run, at in session.execute(
            select(best.regime, best.training_run_id, best.achieved_at).where(best.regime.in_(list(values)))
        )
    }
    flat = []
    for regime, rows in values.items():
        for value in rows:
            value["achieved_at"] = entered.get((regime, int(value["training_run_id"]))) or value["updated_at"]
            value["secondary_metrics"] = {name: value[name] for name in SECONDARY_FIELDS}
            flat.append(value)
    session.execute(delete(best).where(best.regime.in_(list(values))))
    if flat:
        session.execute(insert(best.__table__), flat)
    return len(flat)


RISK_RETURN_COLUMNS: tuple[str, ...] = (
    "regime", "rank", "training_run_id", "partition_key", "score", "max_drawdown", "total_return", "trade_count", "kept",
)


def best_risk_return(session: Session) -> pd.DataFrame:
    """Every current best with the risk and return of its winning backtest in its own regime (the row it
    was ranked on): max drawdown and total return of the trades attributed to the regime (RISK_RETURN_COLUMNS)."""
    run, best, test = TrainingRun, RegimeBestModel, InferenceBacktest
    statement = (
        select(
            best.regime, best.rank, best.training_run_id, run.partition_key, best.score, test.max_drawdown,
            test.total_return, best.trade_count, run.kept,
        )
        .join(run, run.id == best.training_run_id)
        .join(test, test.id == best.inference_backtest_id)
        .order_by(best.regime, best.rank)
    )
    return select_frame(
        session, statement, RISK_RETURN_COLUMNS, float_columns=("score", "max_drawdown", "total_return")
    )
