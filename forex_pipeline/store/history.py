"""The training history: runs filtered, sorted and paged with their best `all`-regime figures."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Select, String, and_, cast, func, or_, select
from sqlalchemy.orm import Session

from forex_pipeline.keys import REGIME_ALL
from forex_pipeline.store.common import aware_utc, check_status, select_frame
from forex_pipeline.store.inference_backtests import not_confirming
from forex_pipeline.store.tables import (
    RUN_STATUSES,
    InferenceBacktest,
    TrainingRun,
)

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class HistoryFilter:
    """Filters of the training history; None means "any". Dates bound created_at, [since, until).
    `search`: words that must all appear in the run's configuration (see `search_terms`)."""

    status: str | None = None
    model_type: str | None = None
    symbol: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_sharpe: float | None = None
    max_drawdown: float | None = None
    search: str | None = None
    sort: str = "-created_at"
    page: int = 1
    page_size: int = 50


@dataclass(frozen=True)
class HistoryPage:
    """One page of history rows, and how many rows match in all."""

    rows: pd.DataFrame
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


HISTORY_COLUMNS: tuple[str, ...] = (
    "id",
    "model_config_hash",
    "partition_key",
    "symbol",
    "base_timeframe",
    "model_type",
    "encoder",
    "horizon",
    "status",
    "training_seconds",
    "backtest_seconds",
    "kept",
    "file_deleted_at",
    "queue_id",
    "error_message",
    "created_at",
    "completed_at",
    "best_sharpe",
    "best_max_drawdown",
)
HISTORY_SORTS: tuple[str, ...] = (
    "created_at",
    "completed_at",
    "training_seconds",
    "best_sharpe",
    "symbol",
    "model_type",
    "status",
)


def _best_backtests(filters: HistoryFilter) -> Any:
    """Per run over the `all` regime: best Sharpe and the smallest drawdown among rows passing the metric filters."""
    test = InferenceBacktest
    drawdown = func.abs(test.max_drawdown)
    statement = select(
        test.training_run_id.label("training_run_id"),
        func.max(test.sharpe).label("best_sharpe"),
        func.min(drawdown).label("best_max_drawdown"),
    ).where(test.regime == REGIME_ALL, not_confirming(test))
    if filters.min_sharpe is not None:
        statement = statement.where(test.sharpe >= filters.min_sharpe)
    if filters.max_drawdown is not None:
        statement = statement.where(drawdown <= abs(filters.max_drawdown))
    return statement.group_by(test.training_run_id).subquery("best")


MAX_SEARCH_TERMS = 8


def search_terms(text: str) -> list[str]:
    """The words of a history search, lower case; every word must match (`_search_condition`)."""
    words = text.split()
    if len(words) > MAX_SEARCH_TERMS:
        raise ValueError(f"history search has {len(words)} words; use at most {MAX_SEARCH_TERMS}")
    return [word.lower() for word in words]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search_condition(word: str) -> Any:
    """One search word over the run's configuration text: the partition key and the feature-set and
    model-spec JSON (case-insensitive). Words written as a configuration's name writes them match that
    field exactly: `max_depth=4` (JSON `"max_depth": 4` followed by `,` or `}`), `365d` (days_history,
    `-d365-` in the partition key), `rsi:1h,4h` (indicator_timeframes `"rsi": ["1h", "4h"]`); any other
    word matches anywhere."""
    texts = [func.lower(TrainingRun.partition_key), func.lower(cast(TrainingRun.feature_set, String)),
             func.lower(cast(TrainingRun.model_spec, String))]
    key, equals, value = word.partition("=")
    value = value.strip("\"'")
    indicator, colon, timeframes = word.partition(":")
    if equals and key and value:
        literal = value if _is_json_number(value) or value in ("true", "false", "null") else f'"{value}"'
        field = _escape_like(f'"{key}": {literal}')
        patterns = [f"%{field},%", f"%{field}}}%"]
    elif re.fullmatch(r"\d+d", word):
        patterns = [f"%-d{word[:-1]}-%"]
    elif colon and re.fullmatch(r"[a-z_]+", indicator) and re.fullmatch(r"\w+(,\w+)*", timeframes):
        patterns = ["%" + _escape_like(f'"{indicator}": [{", ".join(json.dumps(t) for t in timeframes.split(","))}]') + "%"]
    else:
        patterns = [f"%{_escape_like(word)}%"]
    return or_(*(text.like(pattern, escape="\\") for text in texts for pattern in patterns))


def _is_json_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _history_where(statement: Select[Any], filters: HistoryFilter) -> Select[Any]:
    """Apply the run-level filters of `filters`."""
    run = TrainingRun
    if filters.status is not None:
        check_status(filters.status, RUN_STATUSES, "training run")
        statement = statement.where(run.status == filters.status)
    if filters.model_type is not None:
        statement = statement.where(run.model_type == filters.model_type)
    if filters.symbol is not None:
        from forex_pipeline.settings import normalize_symbol

        statement = statement.where(run.symbol == normalize_symbol(filters.symbol))
    if filters.since is not None:
        statement = statement.where(run.created_at >= aware_utc(filters.since, "since"))
    if filters.until is not None:
        statement = statement.where(run.created_at < aware_utc(filters.until, "until"))
    if filters.search:
        statement = statement.where(and_(*(_search_condition(word) for word in search_terms(filters.search))))
    return statement


def _history_order(sort: str, best: Any) -> list[Any]:
    """ORDER BY for a sort key like `-best_sharpe` (descending) or `symbol`; ties broken by id."""
    name = sort.lstrip("-")
    if name not in HISTORY_SORTS:
        raise ValueError(
            f"history sort {sort!r} is unknown; use one of {list(HISTORY_SORTS)} (prefix '-' for descending)"
        )
    column = best.c.best_sharpe if name == "best_sharpe" else getattr(TrainingRun, name)
    ordered = column.desc() if sort.startswith("-") else column.asc()
    tie = TrainingRun.id.desc() if sort.startswith("-") else TrainingRun.id.asc()
    return [ordered.nulls_last(), tie]


def query_history(session: Session, filters: HistoryFilter = HistoryFilter()) -> HistoryPage:
    """One page of training runs matching `filters`, with each run's best `all`-regime Sharpe and drawdown."""
    if filters.page < 1 or filters.page_size < 1:
        raise ValueError(f"history page {filters.page} / page_size {filters.page_size} must both be >= 1")
    best = _best_backtests(filters)
    metric_filter = filters.min_sharpe is not None or filters.max_drawdown is not None
    run_columns = [getattr(TrainingRun, c) for c in HISTORY_COLUMNS[:-2]]
    base = select(*run_columns, best.c.best_sharpe, best.c.best_max_drawdown).join(
        best, best.c.training_run_id == TrainingRun.id, isouter=not metric_filter
    )
    base = _history_where(base, filters)
    total = int(session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    offset = (filters.page - 1) * filters.page_size
    statement = base.order_by(*_history_order(filters.sort, best)).limit(filters.page_size).offset(offset)
    floats = ("training_seconds", "backtest_seconds", "best_sharpe", "best_max_drawdown")
    rows = select_frame(session, statement, HISTORY_COLUMNS, float_columns=floats)
    return HistoryPage(rows=rows, total=total, page=filters.page, page_size=filters.page_size)


def history_symbols(session: Session) -> list[str]:
    """The symbols that have training runs, sorted (the history filter's choices)."""
    return [str(s) for s in session.scalars(select(TrainingRun.symbol).distinct().order_by(TrainingRun.symbol))]


def best_sharpe_by_model_and_regime(session: Session, run_ids: list[int], min_trades: int) -> pd.DataFrame:
    """Best Sharpe per (model partition key, regime) among configurations with at least `min_trades` trades."""
    statement = (
        select(TrainingRun.partition_key, InferenceBacktest.regime, func.max(InferenceBacktest.sharpe))
        .join(TrainingRun, TrainingRun.id == InferenceBacktest.training_run_id)
        .where(
            InferenceBacktest.training_run_id.in_(run_ids),
            InferenceBacktest.trade_count >= min_trades,
            not_confirming(InferenceBacktest),
        )
        .group_by(TrainingRun.partition_key, InferenceBacktest.regime)
    )
    return select_frame(session, statement, ["model", "regime", "sharpe"], float_columns=["sharpe"])


def best_backtest_per_run(session: Session) -> pd.DataFrame:
    """Per completed model, its best-Sharpe configuration over the whole test segment (risk vs return)."""
    statement = (
        select(
            InferenceBacktest.training_run_id, InferenceBacktest.sharpe, InferenceBacktest.max_drawdown,
            InferenceBacktest.total_return, TrainingRun.kept,
        )
        .join(TrainingRun, TrainingRun.id == InferenceBacktest.training_run_id)
        .where(InferenceBacktest.regime == REGIME_ALL, InferenceBacktest.sharpe.is_not(None), not_confirming(InferenceBacktest))
    )
    rows = select_frame(session, statement, ["run", "sharpe", "max_drawdown", "total_return", "kept"])
    if rows.empty:
        return rows
    return rows.sort_values("sharpe", ascending=False).drop_duplicates("run")
