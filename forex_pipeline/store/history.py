"""The training history: runs filtered, searched, sorted and paged with their best figures in one regime.

Every read here is served from `training_runs` and `training_run_summaries` (store/run_summaries.py),
never from the backtest rows, so a page costs the same at 50 runs and at 49,000 with 33 million
backtest rows. Filters, sort, LIMIT and OFFSET run in SQL; the count is one `COUNT(*)` over the
same filters (joining the summaries only when a metric filter needs them).

The API (what the CLI `history`, the dashboards and the results explorer use):
- `HistoryFilter`: the filters, sort key and page; `HISTORY_SORTS` the sort keys;
- `history_records(session, filters)`: one page as plain dicts (no pandas: the CLI's fast path);
- `query_history(session, filters)`: the same page with a DataFrame (`HistoryPage.rows`);
- `risk_return_points`: the dashboard's scatter, bounded (top K plus an even sample);
- `best_sharpe_by_model_and_regime`: the dashboard's heatmap over the bests' runs (bounded by them).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, String, and_, cast, func, or_, select
from sqlalchemy.orm import Session

from forex_pipeline.keys import REGIME_ALL
from forex_pipeline.store.common import aware_utc, check_status, in_chunks
from forex_pipeline.store.tables import (
    RUN_STATUSES,
    InferenceBacktest,
    RegimeBestModel,
    TrainingRun,
    TrainingRunSummary,
)

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class HistoryFilter:
    """Filters of the training history; None means "any". Dates bound created_at, [since, until).

    `regime` picks the summary whose figures are shown, filtered (min_sharpe: best Sharpe at least
    this; max_drawdown: some configuration kept |max drawdown| at most this) and sorted on.
    `search`: words that must all appear in the run's configuration (see `search_terms`).
    """

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
    encoder: str | None = None
    base_timeframe: str | None = None
    horizon: int | None = None
    kept: bool | None = None
    queue_id: int | None = None
    search: str | None = None
    regime: str = REGIME_ALL


@dataclass(frozen=True)
class HistoryRecords:
    """One page of history rows as plain dicts (keys HISTORY_COLUMNS), and how many rows match in all."""

    rows: list[dict[str, Any]]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


@dataclass(frozen=True)
class HistoryPage(HistoryRecords):
    """One page of history rows as a DataFrame (columns HISTORY_COLUMNS), and how many rows match in all."""

    rows: pd.DataFrame  # type: ignore[assignment]


RUN_COLUMNS: tuple[str, ...] = (
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
)
SUMMARY_COLUMNS: tuple[str, ...] = ("best_sharpe", "best_max_drawdown")
HISTORY_COLUMNS: tuple[str, ...] = (*RUN_COLUMNS, *SUMMARY_COLUMNS, "configurations", "best_config_hash", "regimes_in_top")
FLOAT_COLUMNS: tuple[str, ...] = ("training_seconds", "backtest_seconds", "best_sharpe", "best_max_drawdown")
HISTORY_SORTS: tuple[str, ...] = (
    "created_at",
    "completed_at",
    "training_seconds",
    "backtest_seconds",
    "best_sharpe",
    "best_max_drawdown",
    "symbol",
    "base_timeframe",
    "model_type",
    "encoder",
    "horizon",
    "status",
    "id",
)


def _summary_join(filters: HistoryFilter) -> Any:
    """The join condition of a run with its summary in the filter's regime."""
    return and_(TrainingRunSummary.training_run_id == TrainingRun.id, TrainingRunSummary.regime == filters.regime)


def _metric_filtered(filters: HistoryFilter) -> bool:
    return filters.min_sharpe is not None or filters.max_drawdown is not None


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
    """Apply every filter of `filters` (the summary must be joined when a metric filter is set)."""
    run, summary = TrainingRun, TrainingRunSummary
    if filters.status is not None:
        check_status(filters.status, RUN_STATUSES, "training run")
        statement = statement.where(run.status == filters.status)
    if filters.symbol is not None:
        from forex_pipeline.settings import normalize_symbol

        statement = statement.where(run.symbol == normalize_symbol(filters.symbol))
    for name in ("model_type", "encoder", "base_timeframe", "horizon", "kept", "queue_id"):
        value = getattr(filters, name)
        if value is not None:
            statement = statement.where(getattr(run, name) == value)
    if filters.since is not None:
        statement = statement.where(run.created_at >= aware_utc(filters.since, "since"))
    if filters.until is not None:
        statement = statement.where(run.created_at < aware_utc(filters.until, "until"))
    if filters.search:
        statement = statement.where(and_(*(_search_condition(word) for word in search_terms(filters.search))))
    if filters.min_sharpe is not None:
        statement = statement.where(summary.best_sharpe >= filters.min_sharpe)
    if filters.max_drawdown is not None:
        statement = statement.where(summary.best_max_drawdown <= abs(filters.max_drawdown))
    return statement


def _history_order(sort: str) -> list[Any]:
    """ORDER BY for a sort key like `-best_sharpe` (descending) or `symbol`; ties broken by id, NULLs last."""
    name = sort.lstrip("-")
    if name not in HISTORY_SORTS:
        raise ValueError(
            f"history sort {sort!r} is unknown; use one of {list(HISTORY_SORTS)} (prefix '-' for descending)"
        )
    column = getattr(TrainingRunSummary if name in SUMMARY_COLUMNS else TrainingRun, name)
    descending = sort.startswith("-")
    ordered = column.desc() if descending else column.asc()
    if name == "id":
        return [ordered]
    return [ordered.nulls_last(), TrainingRun.id.desc() if descending else TrainingRun.id.asc()]


def count_history(session: Session, filters: HistoryFilter = HistoryFilter()) -> int:
    """How many runs match `filters` (one COUNT; the summaries are joined only for a metric filter)."""
    statement = select(func.count()).select_from(TrainingRun)
    if _metric_filtered(filters):
        statement = statement.join(TrainingRunSummary, _summary_join(filters))
    return int(session.scalar(_history_where(statement, filters)) or 0)


def history_records(session: Session, filters: HistoryFilter = HistoryFilter()) -> HistoryRecords:
    """One page of training runs matching `filters`, with their summary in `filters.regime` and how many
    regimes' top N hold them; plain dicts (NULL figures are None)."""
    if filters.page < 1 or filters.page_size < 1:
        raise ValueError(f"history page {filters.page} / page_size {filters.page_size} must both be >= 1")
    summary, order = TrainingRunSummary, _history_order(filters.sort)
    # The page's run ids first, from the columns filters and sort read (PostgreSQL serves them from the
    # narrow indexes of migration 0006), then those runs whole: the wide rows are read 50 at a time.
    page = (
        _history_where(select(TrainingRun.id).join(summary, _summary_join(filters), isouter=not _metric_filtered(filters)), filters)
        .order_by(*order).limit(filters.page_size).offset((filters.page - 1) * filters.page_size)
    ).subquery("page")
    statement = (
        select(
            *(getattr(TrainingRun, c) for c in RUN_COLUMNS),
            summary.best_sharpe, summary.best_max_drawdown, summary.configurations, summary.best_config_hash,
        )
        .join(page, page.c.id == TrainingRun.id)
        .join(summary, _summary_join(filters), isouter=True)
        .order_by(*order)
    )
    rows = [dict(row._mapping) for row in session.execute(statement)]
    in_top = _regimes_in_top(session, [row["id"] for row in rows])
    for row in rows:
        row["regimes_in_top"] = in_top.get(row["id"], 0)
    short_first_page = filters.page == 1 and len(rows) < filters.page_size
    total = len(rows) if short_first_page else count_history(session, filters)
    return HistoryRecords(rows=rows, total=total, page=filters.page, page_size=filters.page_size)


def _regimes_in_top(session: Session, run_ids: list[int]) -> dict[int, int]:
    """Per run id, how many regimes hold it among their bests (regime_best_models is small: regimes x N)."""
    if not run_ids:
        return {}
    best = RegimeBestModel
    statement = select(best.training_run_id, func.count()).where(best.training_run_id.in_(run_ids)).group_by(best.training_run_id)
    return {int(run_id): int(n) for run_id, n in session.execute(statement)}


def query_history(session: Session, filters: HistoryFilter = HistoryFilter()) -> HistoryPage:
    """history_records as a DataFrame with columns HISTORY_COLUMNS (NULL figures as NaN)."""
    import pandas as pd

    records = history_records(session, filters)
    frame = pd.DataFrame(records.rows, columns=list(HISTORY_COLUMNS))
    for name in FLOAT_COLUMNS:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return HistoryPage(rows=frame, total=records.total, page=records.page, page_size=records.page_size)


RISK_RETURN_COLUMNS: tuple[str, ...] = ("run", "sharpe", "max_drawdown", "total_return", "kept")


def risk_return_points(session: Session, *, limit: int = 5000, top: int = 500) -> pd.DataFrame:
    """Per model with a best configuration over its ranked `all` rows: that configuration's Sharpe, max
    drawdown and total return, and whether the model is kept (the risk/return scatter), best first.

    Bounded: with more than `limit` models, the `top` best by Sharpe plus an even sample of the rest
    (every k-th run id) up to about `limit` points, so the chart costs the same at any grid size.
    """
    import pandas as pd

    summary, run = TrainingRunSummary, TrainingRun
    base = (
        select(summary.training_run_id, summary.best_sharpe, summary.best_config_max_drawdown,
               summary.best_config_total_return, run.kept)
        .join(run, run.id == summary.training_run_id)
        .where(summary.regime == REGIME_ALL, summary.best_sharpe.is_not(None))
    )
    total = int(session.scalar(
        select(func.count()).select_from(summary).where(summary.regime == REGIME_ALL, summary.best_sharpe.is_not(None))
    ) or 0)
    ordered = [summary.best_sharpe.desc(), summary.training_run_id.asc()]
    if total <= limit:
        rows = list(session.execute(base.order_by(*ordered)))
    else:
        best = list(session.execute(base.order_by(*ordered).limit(top)))
        step = max(1, math.ceil(total / max(1, limit - top)))
        sample = list(session.execute(base.where(summary.training_run_id % step == 0).order_by(*ordered).limit(limit - top)))
        seen = {row[0] for row in best}
        rows = best + [row for row in sample if row[0] not in seen]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(RISK_RETURN_COLUMNS))
    for name in ("sharpe", "max_drawdown", "total_return"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame.sort_values("sharpe", ascending=False, kind="mergesort").reset_index(drop=True)


def history_symbols(session: Session) -> list[str]:
    """The symbols that have training runs, sorted (the history filter's choices)."""
    return [str(s) for s in session.scalars(select(TrainingRun.symbol).distinct().order_by(TrainingRun.symbol))]


def best_sharpe_by_model_and_regime(session: Session, run_ids: list[int], min_trades: int) -> pd.DataFrame:
    """Best Sharpe per (model partition key, regime) among ranked configurations with at least `min_trades`
    trades, over the given runs (the bests' runs: at most regimes x N, read through the run id index)."""
    import pandas as pd

    from forex_pipeline.store.inference_backtests import not_confirming

    test = InferenceBacktest
    rows: list[tuple[Any, ...]] = []
    for chunk in in_chunks(sorted(set(run_ids))):
        statement = (
            select(TrainingRun.partition_key, test.regime, func.max(test.sharpe))
            .join(TrainingRun, TrainingRun.id == test.training_run_id)
            .where(test.training_run_id.in_(list(chunk)), test.trade_count >= min_trades, not_confirming(test))
            .group_by(TrainingRun.partition_key, test.regime)
        )
        rows.extend(tuple(r) for r in session.execute(statement))
    frame = pd.DataFrame(rows, columns=["model", "regime", "sharpe"])
    frame["sharpe"] = pd.to_numeric(frame["sharpe"], errors="coerce").astype("float64")
    return frame
