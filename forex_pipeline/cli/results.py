"""`forex-pipeline bests` and `forex-pipeline history`: regime bests and training history from the project DB."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from forex_pipeline.errors import EXIT_FAILED
from forex_pipeline.cli.common import DatabaseUnavailable, console, errors, fail, read_session, reading
from forex_pipeline.io import atomic_write_text

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

IS_ROOT_COMMANDS = True
FORMATS: tuple[str, ...] = ("table", "csv", "json")
EXPORT_PAGE_SIZE = 1000
BESTS_TABLE: tuple[tuple[str, str], ...] = (
    ("regime", "regime"),
    ("rank", "rank"),
    ("partition_key", "model"),
    ("inference_config", "inference config"),
    ("score", "selection Sharpe"),
    ("improvement", "improvement"),
    ("trade_count", "trades"),
    ("holdout_score", "holdout Sharpe"),
    ("holdout_trades", "holdout trades"),
    ("deflated_sharpe", "deflated Sharpe"),
    ("n_trials", "trials"),
    ("null_p_value", "noise p"),
    ("pbo", "PBO"),
    ("improvement_over_baseline", "vs baseline"),
    ("significant", "significant"),
    ("updated_at", "updated"),
)
# The trust figures every best carries (docs/regimes.md); `bests --format json` objects have these keys.
TRUST_KEYS: tuple[str, ...] = (
    "selection_score", "holdout_score", "holdout_trades", "deflated_sharpe", "n_trials", "null_p_value", "pbo",
    "baseline_score", "improvement_over_baseline", "significant",
)
# Columns current_bests carries for the pipeline's own use (re-deflating), not shown to people.
INTERNAL_BEST_COLUMNS: tuple[str, ...] = ("feature_set_hash", "segment", "sharpe_per_bar", "n_bars", "skewness", "kurtosis")
HISTORY_TABLE: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("partition_key", "model"),
    ("status", "status"),
    ("best_sharpe", "best Sharpe"),
    ("best_max_drawdown", "best max DD"),
    ("training_seconds", "train s"),
    ("backtest_seconds", "backtest s"),
    ("kept", "kept"),
    ("created_at", "created"),
)









# ---------------------------------------------------------------- database access






# ---------------------------------------------------------------- formatting


# How a table shows a column's numbers; improvement = score - previous rank-1 score (a Sharpe difference).
NUMBER_FORMATS: dict[str, str] = {
    "score": "{:.3f}",
    "best_sharpe": "{:.3f}",
    "deflated_sharpe": "{:.3f}",
    "improvement": "{:+.3f}",
    "holdout_score": "{:.3f}",
    "null_p_value": "{:.3f}",
    "pbo": "{:.2f}",
    "baseline_score": "{:.3f}",
    "improvement_over_baseline": "{:+.3f}",
    "best_max_drawdown": "{:.2%}",
    "training_seconds": "{:.1f}",
    "backtest_seconds": "{:.1f}",
}


Record = dict[str, Any]


def _missing(value: Any) -> bool:
    """None or a float NaN: shown as '-' and written as null / an empty CSV cell."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(value: Any, column: str = "") -> str:
    """A table cell: numbers per NUMBER_FORMATS, missing values as '-', times to the minute (UTC)."""
    if _missing(value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        stamp = value.astimezone(timezone.utc) if value.tzinfo else value
        return stamp.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return NUMBER_FORMATS.get(column, "{:.4g}").format(value)
    return str(value)


def render_table(records: list[Record], columns: tuple[tuple[str, str], ...], title: str) -> Table:
    """A rich table of `records` with (key, header) pairs."""
    table = Table(title=title, title_justify="left")
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for record in records:
        table.add_row(*(_cell(record.get(name), name) for name, _ in columns))
    return table


def to_json_records(records: list[Record]) -> list[Record]:
    """Records as plain JSON values: NaN -> null, datetimes -> ISO 8601 UTC."""
    return [
        {str(k): None if _missing(v) else v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}
        for record in records
    ]


def serialise(records: list[Record], fmt: str) -> str:
    """CSV (header + rows; missing values empty) or JSON (a list of objects) text of `records`."""
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        names = list(records[0]) if records else []
        writer.writerow(names)
        writer.writerows(["" if _missing(r[n]) else r[n] for n in names] for r in records)
        return buffer.getvalue()
    if fmt == "json":
        return json.dumps(to_json_records(records), indent=2) + "\n"
    raise ValueError(f"format {fmt!r} is not csv or json")


def _check_format(fmt: str, output: Path | None) -> str:
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if output is not None and fmt == "table":
        raise typer.BadParameter("--output writes csv or json; add --format csv or --format json")
    return fmt


def emit(records: list[Record], fmt: str, output: Path | None, table: Callable[[], Table], footer: str = "") -> None:
    """Print a rich table, or CSV/JSON to stdout or (atomically) to `output`."""
    if fmt == "table":
        console().print(table())
        if footer:
            console().print(footer, highlight=False)
        return
    text = serialise(records, fmt)
    if output is None:
        typer.echo(text, nl=False)
        return
    atomic_write_text(output.expanduser(), text)
    errors().print(f"wrote {len(records)} row(s) to {output}", highlight=False)


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO date or datetime option as timezone-aware UTC (naive values are read as UTC)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{option} {value!r} is not an ISO date or datetime (e.g. 2026-01-31 or 2026-01-31T12:00Z)") from exc
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


# ---------------------------------------------------------------- commands


@reading
def bests(
    regime: str | None = typer.Option(None, "--regime", help="only this regime"),
    fmt: str = typer.Option("table", "--format", help="table, csv or json"),
    output: Path | None = typer.Option(None, "--output", help="write csv/json to this file instead of stdout"),
) -> None:
    """Current best models per regime: rank, model, inference config, selection and holdout Sharpe, deflated
    Sharpe, trials, noise p-value, PBO, improvement over the best baseline and the `significant` verdict."""
    from forex_pipeline.reporting.charts import inference_config_label
    from forex_pipeline.store.regime_best_models import best_records

    fmt = _check_format(fmt, output)
    try:
        with read_session() as session:
            rows = best_records(session, regime)
    except DatabaseUnavailable as exc:
        fail(str(exc), EXIT_FAILED)
    records = []
    for row in rows:
        record: Record = {}
        for key, value in row.items():
            if key == "inference_config_hash":
                record["inference_config"] = inference_config_label(row)
            if key not in INTERNAL_BEST_COLUMNS:
                record[key] = value
        records.append(record)
    if fmt == "table" and not records:
        console().print("no regime bests yet" + (f" for regime {regime!r}" if regime else ""), highlight=False)
        return
    emit(records, fmt, output, lambda: render_table(records, BESTS_TABLE, "Regime bests"))


@reading
def history(
    status: str | None = typer.Option(None, "--status", help="pending, running, completed or failed"),
    model_type: str | None = typer.Option(None, "--model-type", help="e.g. ridge, rf, lightgbm"),
    symbol: str | None = typer.Option(None, "--symbol", help="e.g. EURUSD or EUR/USD"),
    since: str | None = typer.Option(None, "--since", help="created at or after (ISO date/time, UTC)"),
    until: str | None = typer.Option(None, "--until", help="created before (ISO date/time, UTC)"),
    min_sharpe: float | None = typer.Option(None, "--min-sharpe", help="some inference config reached this Sharpe (regime all)"),
    max_drawdown: float | None = typer.Option(None, "--max-drawdown", help="some inference config kept |max drawdown| at most this"),
    search: str | None = typer.Option(None, "--search", help="words that must all appear in the configuration, e.g. 'rf max_depth=4'"),
    sort: str | None = typer.Option(None, "--sort", help="created_at, completed_at, training_seconds, best_sharpe, symbol, model_type, status"),
    desc: bool | None = typer.Option(None, "--desc/--asc", help="sort order (default: newest first, else ascending)"),
    page: int = typer.Option(1, "--page", min=1, help="page number, from 1"),
    page_size: int = typer.Option(50, "--page-size", min=1, help="rows per page"),
    all_pages: bool = typer.Option(False, "--all", help="every matching row (ignores --page/--page-size)"),
    fmt: str = typer.Option("table", "--format", help="table, csv or json"),
    output: Path | None = typer.Option(None, "--output", help="write csv/json to this file instead of stdout"),
) -> None:
    """Training history with filters, sorting and paging; export as CSV or JSON."""
    from forex_pipeline.store.history import HistoryFilter, history_records

    fmt = _check_format(fmt, output)
    field = sort or "created_at"
    descending = desc if desc is not None else sort is None
    filters = HistoryFilter(
        status=status, model_type=model_type, symbol=symbol,
        since=parse_time(since, "--since"), until=parse_time(until, "--until"),
        min_sharpe=min_sharpe, max_drawdown=max_drawdown, search=search,
        sort=f"-{field}" if descending else field, page=page, page_size=page_size,
    )
    try:
        with read_session() as session:
            if all_pages:
                records, total = _all_history(session, filters, history_records)
                footer = f"{total} run(s)"
            else:
                result = history_records(session, filters)
                records, total = result.rows, result.total
                footer = f"page {result.page} of {result.pages} ({total} matching run(s), {page_size} per page)"
    except DatabaseUnavailable as exc:
        fail(str(exc), EXIT_FAILED)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    emit(records, fmt, output, lambda: render_table(records, HISTORY_TABLE, "Training history"), footer)


def _all_history(session: Session, filters: Any, query: Callable[..., Any]) -> tuple[list[Record], int]:
    """Every page of a history query, concatenated in order."""
    from dataclasses import replace

    records: list[Record] = []
    number = 1
    while True:
        result = query(session, replace(filters, page=number, page_size=EXPORT_PAGE_SIZE))
        records.extend(result.rows)
        if number >= result.pages:
            return records, result.total
        number += 1


def register(app: typer.Typer) -> None:
    """Add `bests` and `history` to the root `forex-pipeline` command."""
    app.command("bests")(bests)
    app.command("history")(history)
