"""History view: every training run in a server-side paged grid, with filters, search, details,
compare, export, re-run inference and delete.

Every page comes from the database (store/history.py `query_history`: filtered, sorted, LIMIT/OFFSET),
never the whole table: the grid uses AG Grid's infinite row model, 50 rows a block and a page. The
filter bar writes a filter dict into a store; a change purges the grid's cache (client side), so the
next page request reads the new filters. Actions that change data (delete) ask for confirmation and
run in one transaction (pipeline/keep_or_delete.delete_runs).
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import dash_ag_grid as dag
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from forex_pipeline.explorer.common import (
    EXPECTED_ERRORS,
    ExplorerContext,
    banner,
    banner_slot,
    confirm_dialog,
    error_message,
    run_label,
    section,
)
from forex_pipeline.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from forex_pipeline.store.history import HistoryFilter

VIEW = "history"
PAGE_SIZE = 50
MAX_COMPARE = 5
GRID_ID = "history-grid"
FILTERS_ID = "history-filters"
REFRESH_ID = "history-refresh"
STATUSES = ("pending", "running", "completed", "failed")
NUMBER_FORMAT = {"function": "params.value == null ? '' : d3.format('.3f')(params.value)"}
SECONDS_FORMAT = {"function": "params.value == null ? '' : d3.format('.1f')(params.value)"}
# The grid's columns: (field, header, sortable, extra column definition). Sortable fields are
# store/history.py HISTORY_SORTS; `configuration` is the readable label of the run's configuration.
GRID_COLUMNS: tuple[tuple[str, str, bool, dict[str, Any]], ...] = (
    ("id", "Run", False, {"width": 90}),
    ("configuration", "Configuration", False, {"flex": 3, "minWidth": 320, "tooltipField": "partition_key"}),
    ("symbol", "Symbol", True, {"width": 105}),
    ("base_timeframe", "Timeframe", False, {"width": 105}),
    ("model_type", "Model type", True, {"width": 125}),
    ("horizon", "Horizon", False, {"width": 95}),
    ("status", "Status", True, {"width": 115}),
    ("best_sharpe", "Best Sharpe", True, {"width": 125, "valueFormatter": NUMBER_FORMAT}),
    ("best_max_drawdown", "Max drawdown", False, {"width": 130, "valueFormatter": NUMBER_FORMAT}),
    ("training_seconds", "Training s", True, {"width": 115, "valueFormatter": SECONDS_FORMAT}),
    ("kept", "Kept", False, {"width": 80}),
    ("created_at", "Created (UTC)", True, {"width": 175, "sort": "desc"}),
    ("completed_at", "Completed (UTC)", True, {"width": 175}),
)
METRIC_CHOICES: tuple[str, ...] = ("sharpe", "sortino", "max_drawdown", "total_return", "win_rate", "profit_factor", "trade_count", "exposure")
CONFIG_COLUMNS: tuple[str, ...] = ("prediction_method", "ensemble_method", "confidence_threshold", "lookback_window")


# ---------------------------------------------------------------- filters and pages (pure functions)


def _number(value: Any, name: str) -> float | None:
    """A number typed in a filter box, or None when empty."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InputError(f"{name}: {value!r} is not a finite number")
    return number


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InputError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def filters_from_controls(
    status: str | None = None,
    model_type: str | None = None,
    symbol: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    min_sharpe: Any = None,
    max_drawdown: Any = None,
    search: str | None = None,
) -> dict[str, Any]:
    """The filter bar's values as the JSON the grid's page requests read; InputError names a bad field.
    The date range is inclusive of both days (created_at in [start 00:00, end + 1 day 00:00) UTC)."""
    since, until = _day(start_date, "created from"), _day(end_date, "created to")
    if since and until and until < since:
        raise InputError(f"created to {until} is before created from {since}")
    drawdown = _number(max_drawdown, "max drawdown")
    if drawdown is not None and drawdown < 0:
        drawdown = -drawdown  # drawdowns are stored negative; people type them either way
    filters = {
        "status": status or None, "model_type": model_type or None, "symbol": symbol or None,
        "since": since.isoformat() if since else None,
        "until": (until + timedelta(days=1)).isoformat() if until else None,
        "min_sharpe": _number(min_sharpe, "min Sharpe"), "max_drawdown": drawdown,
        "search": " ".join((search or "").split()) or None,
    }
    if filters["search"]:
        from forex_pipeline.store.history import search_terms

        try:
            search_terms(filters["search"])
        except ValueError as exc:
            raise InputError(str(exc)) from None
    return filters


def _midnight(day: str | None) -> datetime | None:
    return None if day is None else datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=timezone.utc)


def sort_key(sort_model: list[dict[str, Any]] | None) -> str:
    """The store's sort key (`-best_sharpe`) of AG Grid's sort model; newest first when unsorted."""
    from forex_pipeline.store.history import HISTORY_SORTS

    for entry in sort_model or []:
        column = str(entry.get("colId", ""))
        if column in HISTORY_SORTS and entry.get("sort") in ("asc", "desc"):
            return column if entry["sort"] == "asc" else f"-{column}"
    return "-created_at"


def history_filter(filters: dict[str, Any] | None, request: dict[str, Any] | None) -> HistoryFilter:
    """The store's HistoryFilter for a page request of the grid (startRow, sortModel) under `filters`."""
    from forex_pipeline.store.history import HistoryFilter

    filters, request = filters or {}, request or {}
    start = max(0, int(request.get("startRow") or 0))
    return HistoryFilter(
        status=filters.get("status"), model_type=filters.get("model_type"), symbol=filters.get("symbol"),
        since=_midnight(filters.get("since")), until=_midnight(filters.get("until")),
        min_sharpe=filters.get("min_sharpe"), max_drawdown=filters.get("max_drawdown"), search=filters.get("search"),
        sort=sort_key(request.get("sortModel")), page=start // PAGE_SIZE + 1, page_size=PAGE_SIZE,
    )


def _plain_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Frame rows as JSON-able dicts: NaN / NaT -> None, timestamps -> `YYYY-MM-DD HH:MM:SS` (UTC)."""
    import pandas as pd

    def plain(value: Any) -> Any:
        if value is None or (not isinstance(value, (str, bool, dict, list)) and pd.isna(value)):
            return None
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return value.item() if hasattr(value, "item") else value

    return [{str(k): plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def rows_response(context: ExplorerContext, filters: dict[str, Any] | None, request: dict[str, Any] | None) -> dict[str, Any]:
    """One page of runs (rowData) and how many match (rowCount), read from the database."""
    from forex_pipeline.store.history import query_history
    from forex_pipeline.store.training_runs import get_training_runs

    query = history_filter(filters, request)
    with context.read_session() as session:
        page = query_history(session, query)
        runs = {run.id: run for run in get_training_runs(session, [int(i) for i in page.rows["id"]])}
    rows = _plain_records(page.rows)
    for row in rows:
        run = runs.get(int(row["id"]))
        row["configuration"] = run_label(run.feature_set, run.model_spec, run.partition_key) if run else row["partition_key"]
    return {"rowData": rows, "rowCount": page.total}


# ---------------------------------------------------------------- details, compare, export (pure functions)


def results_table(backtests: pd.DataFrame, segment: str, metric: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The inference results of one segment as one row per inference configuration and one column per
    regime holding `metric` (`all` first); returns (rows, regime columns)."""
    from forex_pipeline.keys import REGIME_ALL

    rows = backtests[backtests["segment"] == segment]
    if rows.empty:
        return [], []
    table = rows.pivot_table(index=list(CONFIG_COLUMNS), columns="regime", values=metric, aggfunc="first", dropna=False)
    regimes = sorted(table.columns, key=lambda r: (r != REGIME_ALL, str(r)))
    table = table.loc[:, regimes].reset_index()
    table.columns = [str(c) for c in table.columns]
    return _plain_records(table), [str(r) for r in regimes]


def best_configuration(backtests: pd.DataFrame, segment: str) -> dict[str, Any] | None:
    """The inference configuration with the best `all`-regime Sharpe on `segment` (None without one)."""
    from forex_pipeline.keys import REGIME_ALL

    rows = backtests[(backtests["segment"] == segment) & (backtests["regime"] == REGIME_ALL) & backtests["sharpe"].notna()]
    if rows.empty:
        return None
    return rows.sort_values(["sharpe", "inference_config_hash"], ascending=[False, True]).iloc[0][list(CONFIG_COLUMNS)].to_dict()


def _config_value(row: dict[str, Any]) -> str:
    """An inference configuration as a dropdown value (JSON of its four fields)."""
    return json.dumps({c: row[c] for c in CONFIG_COLUMNS}, sort_keys=True)


def compare_rows(runs: list[Any], bests: pd.DataFrame) -> tuple[list[dict[str, Any]], list[str]]:
    """Side by side: one row per field (configuration, training, best Sharpe per regime), one column per run."""
    if not 2 <= len(runs) <= MAX_COMPARE:
        raise InputError(f"select 2 to {MAX_COMPARE} runs to compare ({len(runs)} selected)")
    names = [f"run {run.id}" for run in runs]
    fields: list[tuple[str, list[Any]]] = [
        ("configuration", [run_label(r.feature_set, r.model_spec, r.partition_key) for r in runs]),
        ("symbol", [r.symbol for r in runs]), ("timeframe", [r.base_timeframe for r in runs]),
        ("days_history", [r.feature_set.get("days_history") for r in runs]),
        ("indicators", [json.dumps(r.feature_set.get("indicator_timeframes", {})) for r in runs]),
        ("model_type", [r.model_type for r in runs]), ("encoder", [r.encoder for r in runs]),
        ("horizon", [r.horizon for r in runs]),
        ("hyperparameters", [json.dumps(r.model_spec.get("hyperparameters", {}), sort_keys=True) for r in runs]),
        ("status", [r.status for r in runs]), ("kept", [r.kept for r in runs]),
        ("training_seconds", [None if r.training_seconds is None else round(r.training_seconds, 2) for r in runs]),
    ]
    if not bests.empty:
        for regime in sorted(bests["regime"].unique(), key=lambda g: (g != "all", g)):
            per_run = bests[bests["regime"] == regime].set_index("model")["sharpe"]
            fields.append((f"best Sharpe: {regime}", [_rounded(per_run.get(r.partition_key)) for r in runs]))
    metric_names = sorted({name for r in runs for name in (r.metrics or {})})
    fields += [(f"metric: {name}", [_significant((r.metrics or {}).get(name)) for r in runs]) for name in metric_names]
    rows = [{"field": name, **dict(zip(names, values))} for name, values in fields]
    return rows, names


def _significant(value: Any) -> Any:
    """A training metric to 6 significant digits (other values as they are)."""
    return float(f"{value:.6g}") if isinstance(value, float) else value


def _rounded(value: Any) -> float | None:
    return None if value is None or value != value else round(float(value), 4)


def configurations_of(runs: list[Any]) -> list[Any]:
    """The ModelConfiguration of each run, rebuilt from its stored specs (and checked against its hash)."""
    from forex_pipeline.features.spec import FeatureSetSpec
    from forex_pipeline.models.spec import ModelConfiguration, ModelSpec

    configurations = []
    for run in runs:
        configuration = ModelConfiguration.of(FeatureSetSpec.model_validate(run.feature_set), ModelSpec.model_validate(run.model_spec))
        if configuration.model_config_hash != run.model_config_hash:
            raise InputError(f"run {run.id}: its stored configuration no longer hashes to {run.model_config_hash[:12]}; not exported")
        configurations.append(configuration)
    return configurations


def export_file(runs: list[Any], fmt: str, name: str = "explorer-export") -> tuple[str, bytes]:
    """(file name, content) of the runs' configurations as grid specs: one `.yaml`/`.json` grid file when
    they form one grid, else a `.zip` of exact grid files (grid/export.py); `grid plan` reads each."""
    import yaml

    from forex_pipeline.grid.export import configuration_grids

    if not runs:
        raise InputError("select the runs whose configurations to export")
    grids = configuration_grids(configurations_of(runs), name)
    suffix = "json" if fmt == "json" else "yaml"

    def text(grid: dict[str, Any]) -> str:
        return json.dumps(grid, indent=2) + "\n" if suffix == "json" else yaml.safe_dump(grid, sort_keys=False)

    if len(grids) == 1:
        return f"{name}.{suffix}", text(grids[0]).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for grid in grids:
            archive.writestr(f"{grid['name']}.{suffix}", text(grid))
    return f"{name}.zip", buffer.getvalue()


def inference_grid_from_inputs(prediction_methods: list[str] | None, ensemble_methods: list[str] | None,
                               thresholds: str | None, lookbacks: str | None) -> Any:
    """The inference grid typed in the re-run form (comma-separated thresholds and lookbacks); InputError names the field."""
    from pydantic import ValidationError

    from forex_pipeline.settings import InferenceGridSettings

    def numbers(text: str | None, name: str, cast: type) -> list[Any]:
        try:
            return [cast(part) for part in (text or "").replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise InputError(f"{name}: {text!r} is not a comma-separated list of {'integers' if cast is int else 'numbers'}") from None

    try:
        return InferenceGridSettings(
            prediction_methods=list(prediction_methods or []), ensemble_methods=list(ensemble_methods or []),
            confidence_thresholds=numbers(thresholds, "confidence thresholds", float),
            lookback_windows=numbers(lookbacks, "lookback windows", int),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "inference grid"
        raise InputError(f"{where}: {str(first['msg']).removeprefix('Value error, ')}") from None


def rerun_rows(frame: pd.DataFrame, segment: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Re-run results: per inference configuration, Sharpe per regime on `segment` plus trades and drawdown in `all`."""
    from forex_pipeline.keys import REGIME_ALL

    rows, regimes = results_table(frame, segment, "sharpe")
    overall = frame[(frame["segment"] == segment) & (frame["regime"] == REGIME_ALL)].set_index(list(CONFIG_COLUMNS))
    for row in rows:
        key = tuple(row[c] for c in CONFIG_COLUMNS)
        found = overall.loc[key] if key in overall.index else None
        row["trades (all)"] = None if found is None else int(found["trade_count"])
        row["max drawdown (all)"] = None if found is None else _rounded(found["max_drawdown"])
    return rows, regimes


# ---------------------------------------------------------------- layout


def _grid_columns() -> list[dict[str, Any]]:
    return [{"field": f, "headerName": h, "sortable": s, **extra} for f, h, s, extra in GRID_COLUMNS]


def _filter_bar(context: ExplorerContext) -> html.Div:
    from forex_pipeline.models.spec import MODEL_TYPES

    box = {"marginRight": "8px"}
    return html.Div(
        [
            dcc.Dropdown(id="history-status", options=list(STATUSES), placeholder="Status", style={"width": "140px", **box}),
            dcc.Dropdown(id="history-model-type", options=list(MODEL_TYPES), placeholder="Model type", style={"width": "160px", **box}),
            dcc.Dropdown(id="history-symbol", options=[], placeholder="Symbol", style={"width": "130px", **box}),
            dcc.DatePickerRange(id="history-dates", start_date_placeholder_text="Created from", end_date_placeholder_text="Created to",
                                display_format="YYYY-MM-DD", clearable=True, style=box),
            dcc.Input(id="history-min-sharpe", type="number", placeholder="Min Sharpe", debounce=True, style={"width": "150px", **box}),
            dcc.Input(id="history-max-drawdown", type="number", placeholder="Max drawdown", debounce=True, style={"width": "170px", **box}),
            dcc.Input(id="history-search", type="text", placeholder="Search configuration, e.g. rf max_depth=4", debounce=True,
                      style={"width": "300px", **box}),
            html.Button("Clear filters", id="history-clear", n_clicks=0),
        ],
        style={"display": "flex", "flexWrap": "wrap", "alignItems": "center", "gap": "4px", "margin": "8px 0"},
    )


def _action_bar() -> html.Div:
    return html.Div(
        [
            html.Button("Details", id="history-details-button", n_clicks=0),
            html.Button("Compare", id="history-compare-button", n_clicks=0),
            dcc.RadioItems(id="history-export-format", options=[{"label": "YAML", "value": "yaml"}, {"label": "JSON", "value": "json"}],
                           value="yaml", inline=True, style={"marginLeft": "12px"}),
            html.Button("Export configurations", id="history-export-button", n_clicks=0),
            html.Button("Delete", id="history-delete-button", n_clicks=0, style={"marginLeft": "12px", "color": "#8b0000"}),
            html.Span(id="history-selection", style={"marginLeft": "12px", "color": "#555"}),
        ],
        style={"display": "flex", "alignItems": "center", "gap": "6px", "margin": "8px 0"},
    )


def layout(context: ExplorerContext) -> html.Div:
    """Filter bar, the paged grid (50 rows a page, multi-row selection), actions, details and compare panels."""
    return html.Div(
        [
            banner_slot(VIEW),
            _filter_bar(context),
            dcc.Store(id=FILTERS_ID, data=filters_from_controls()),
            dcc.Store(id=REFRESH_ID, data=0),
            dcc.Store(id="history-open-run", data=None),
            dag.AgGrid(
                id=GRID_ID,
                rowModelType="infinite",
                columnDefs=_grid_columns(),
                defaultColDef={"resizable": True, "suppressHeaderMenuButton": True},
                getRowId="params.data.id.toString()",
                dashGridOptions={
                    "pagination": True, "paginationPageSize": PAGE_SIZE, "paginationPageSizeSelector": False,
                    "cacheBlockSize": PAGE_SIZE, "maxBlocksInCache": 6, "infiniteInitialRowCount": PAGE_SIZE,
                    "rowSelection": {"mode": "multiRow", "headerCheckbox": False},
                    "tooltipShowDelay": 300, "suppressColumnVirtualisation": True,
                },
                style={"height": "560px"},
            ),
            _action_bar(),
            dcc.Download(id="history-download"),
            confirm_dialog("history-delete-confirm"),
            dcc.Loading(html.Div(id="history-compare")),
            dcc.Loading(html.Div(id="history-details")),
        ]
    )


# ---------------------------------------------------------------- details panel


def _definition_list(values: dict[str, Any]) -> html.Table:
    cell = {"padding": "2px 10px", "borderBottom": "1px solid #eee", "verticalAlign": "top"}
    return html.Table(
        [html.Tr([html.Td(str(k), style={**cell, "color": "#555"}), html.Td(_shown(v), style=cell)]) for k, v in values.items()],
        style={"borderCollapse": "collapse", "fontSize": "13px"},
    )


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)


def details_panel(context: ExplorerContext, run_id: int) -> html.Div:
    """Configuration, training metrics, the inference results per regime, the equity curve and re-run (kept models)."""
    from forex_pipeline.pipeline.kept_models import model_file_problem
    from forex_pipeline.store.inference_backtests import get_backtests
    from forex_pipeline.store.regime_best_models import best_regimes_of_runs
    from forex_pipeline.store.training_runs import get_training_run

    with context.read_session() as session:
        run = get_training_run(session, run_id)
        if run is None:
            raise InputError(f"training run {run_id} does not exist (deleted?)")
        backtests = get_backtests(session, run_id)
        best_in = best_regimes_of_runs(session, [run_id]).get(run_id, [])
    segments = sorted(backtests["segment"].unique()) if not backtests.empty else []
    segment = "selection" if "selection" in segments else (segments[0] if segments else None)
    summary = {
        "run": run.id, "status": run.status, "partition key": run.partition_key, "model_config_hash": run.model_config_hash,
        "queue": run.queue_id, "created (UTC)": run.created_at, "completed (UTC)": run.completed_at,
        "training seconds": run.training_seconds, "backtest seconds": run.backtest_seconds,
        "kept": run.kept, "regime best in": ", ".join(best_in) or "none", "model file": run.model_path if run.kept else "deleted",
    }
    if run.error_message:
        summary["error"] = run.error_message.splitlines()[0]
    children: list[Any] = [
        html.H3(f"Run {run.id}: {run_label(run.feature_set, run.model_spec, run.partition_key)}", id="history-details-title"),
        _definition_list(summary),
        html.Div([
            section("Feature set", html.Pre(json.dumps(run.feature_set, indent=2, sort_keys=True), className="config")),
            section("Model spec", html.Pre(json.dumps(run.model_spec, indent=2, sort_keys=True), className="config")),
            section("Training metrics", _definition_list(run.metrics or {}) if run.metrics else html.P("no training metrics (not trained)")),
        ], style={"display": "flex", "gap": "32px", "flexWrap": "wrap"}),
    ]
    if segment is None:
        children.append(html.P("no inference results recorded for this run"))
        return html.Div(children, id="history-details-body")
    n_configs = backtests["inference_config_hash"].nunique()
    children.append(section(
        f"Inference results: {n_configs} configurations x regimes",
        html.Div([
            dcc.Dropdown(id="history-results-segment", options=segments, value=segment, clearable=False, style={"width": "180px"}),
            dcc.Dropdown(id="history-results-metric", options=list(METRIC_CHOICES), value="sharpe", clearable=False, style={"width": "180px"}),
        ], style={"display": "flex", "gap": "8px", "margin": "4px 0"}),
        dag.AgGrid(id="history-results-grid", rowData=[], columnDefs=[], defaultColDef={"sortable": True, "resizable": True},
                   dashGridOptions={"pagination": True, "paginationPageSize": 25, "paginationPageSizeSelector": False}, style={"height": "420px"}),
    ))
    problem = model_file_problem(run)
    if problem is not None:
        children.append(section("Equity curve and re-run inference", html.P(f"not available: {problem}", className="muted")))
        return html.Div(children, id="history-details-body")
    best = best_configuration(backtests, segment)
    options = [
        {"label": _config_label(row), "value": _config_value(row)}
        for row in backtests.drop_duplicates("inference_config_hash")[list(CONFIG_COLUMNS)].to_dict("records")
    ]
    children.append(section(
        "Equity curve (test segment, after costs)",
        dcc.Dropdown(id="history-equity-config", options=options, value=_config_value(best) if best else options[0]["value"],
                     clearable=False, style={"width": "420px"}),
        dcc.Loading(dcc.Graph(id="history-equity-graph", style={"height": "360px"})),
    ))
    children.append(_rerun_form())
    return html.Div(children, id="history-details-body")


def _config_label(row: dict[str, Any]) -> str:
    from forex_pipeline.reporting.charts import inference_config_label

    return inference_config_label(row)


def _rerun_form() -> html.Section:
    from forex_pipeline.models.base import ENSEMBLE_METHODS, PREDICTION_METHODS

    return section(
        "Re-run inference with another inference grid (results shown, not recorded)",
        html.Div([
            dcc.Checklist(id="history-rerun-methods", options=list(PREDICTION_METHODS), value=["direct"], inline=True),
            dcc.Checklist(id="history-rerun-ensembles", options=list(ENSEMBLE_METHODS), value=["mean"], inline=True),
            html.Label(["Confidence thresholds ", dcc.Input(id="history-rerun-thresholds", type="text", value="0.0, 0.5, 0.8",
                                                            placeholder="e.g. 0.0, 0.5", style={"width": "160px"})]),
            html.Label(["Lookback windows ", dcc.Input(id="history-rerun-lookbacks", type="text", value="20, 100",
                                                       placeholder="e.g. 20, 100", style={"width": "120px"})]),
            html.Button("Run inference", id="history-rerun-button", n_clicks=0),
            html.Button("Download CSV", id="history-rerun-csv", n_clicks=0),
        ], style={"display": "flex", "gap": "10px", "alignItems": "center", "flexWrap": "wrap"}),
        dcc.Loading(html.Div(id="history-rerun-status")),
        dag.AgGrid(id="history-rerun-grid", rowData=[], columnDefs=[], defaultColDef={"sortable": True, "resizable": True},
                   csvExportParams={"fileName": "rerun_inference.csv"}, style={"height": "320px"}),
    )


def equity_figure(context: ExplorerContext, run_id: int, config: dict[str, Any]) -> Any:
    """The equity curve of one inference configuration of a kept model, as a plotly figure."""
    import plotly.graph_objects as go

    from forex_pipeline.backtest.inference_grid import InferenceConfig
    from forex_pipeline.data.sources import default_sample_dir
    from forex_pipeline.pipeline.kept_models import kept_model_equity, open_kept_model

    kept = open_kept_model(context.engine, context.settings, context.artifacts_dir, run_id, default_sample_dir())
    choice = InferenceConfig(config["prediction_method"], config["ensemble_method"], float(config["confidence_threshold"]), int(config["lookback_window"]))
    curve = kept_model_equity(kept, choice, context.settings)
    figure = go.Figure(go.Scatter(x=curve.index, y=curve.to_numpy(), mode="lines", name=_config_label(config)))
    figure.update_layout(title=f"Run {run_id}, {_config_label(config)}", yaxis_title="cumulative return", xaxis_title="bar open (UTC)",
                         margin={"l": 60, "r": 20, "t": 50, "b": 40}, template="plotly_white")
    return figure


# ---------------------------------------------------------------- callbacks


def _selected_ids(rows: list[dict[str, Any]] | None) -> list[int]:
    return [int(row["id"]) for row in rows or [] if row and row.get("id") is not None]


def _runs(context: ExplorerContext, ids: list[int]) -> list[Any]:
    from forex_pipeline.store.training_runs import get_training_runs

    with context.read_session() as session:
        return get_training_runs(session, ids)


def register_callbacks(app: Dash, context: ExplorerContext) -> None:  # noqa: C901 - one closure per control
    """Page requests, filters, selection actions, details, equity, re-run and delete."""

    @app.callback(Output(GRID_ID, "getRowsResponse"), Input(GRID_ID, "getRowsRequest"), State(FILTERS_ID, "data"), prevent_initial_call=True)
    def _rows(request: dict[str, Any] | None, filters: dict[str, Any] | None) -> dict[str, Any]:
        return rows_response(context, filters, request)

    @app.callback(
        Output(FILTERS_ID, "data"), Output("history-banner", "children", allow_duplicate=True),
        Input("history-status", "value"), Input("history-model-type", "value"), Input("history-symbol", "value"),
        Input("history-dates", "start_date"), Input("history-dates", "end_date"), Input("history-min-sharpe", "value"),
        Input("history-max-drawdown", "value"), Input("history-search", "value"),
        prevent_initial_call=True,
    )
    def _filters(*values: Any) -> tuple[Any, Any]:
        try:
            return filters_from_controls(*values), banner()
        except InputError as exc:
            return no_update, banner(f"filter not applied: {exc}", "error")

    @app.callback(
        Output("history-status", "value"), Output("history-model-type", "value"), Output("history-symbol", "value"),
        Output("history-dates", "start_date"), Output("history-dates", "end_date"), Output("history-min-sharpe", "value"),
        Output("history-max-drawdown", "value"), Output("history-search", "value"),
        Input("history-clear", "n_clicks"), prevent_initial_call=True,
    )
    def _clear(_: int) -> tuple[None, ...]:
        return (None,) * 8

    # A new filter or a refresh after a change: drop the cached pages and go back to page 1.
    app.clientside_callback(
        """function(filters, refresh) {
            const api = window.dash_ag_grid && dash_ag_grid.getApi("%s");
            if (api) { api.purgeInfiniteCache(); api.paginationGoToFirstPage(); }
            return window.dash_clientside.no_update;
        }""" % GRID_ID,
        Output(GRID_ID, "id"), Input(FILTERS_ID, "data"), Input(REFRESH_ID, "data"), prevent_initial_call=True,
    )

    @app.callback(Output("history-symbol", "options"), Input("tabs", "value"), Input(REFRESH_ID, "data"))
    def _symbols(_tab: str, _refresh: int) -> list[str]:
        from forex_pipeline.store.history import history_symbols

        with context.read_session() as session:
            return history_symbols(session)

    @app.callback(Output("history-selection", "children"), Input(GRID_ID, "selectedRows"))
    def _selection(rows: list[dict[str, Any]] | None) -> str:
        ids = _selected_ids(rows)
        return f"{len(ids)} selected" + (f": runs {', '.join(map(str, ids[:8]))}{' ...' if len(ids) > 8 else ''}" if ids else "")

    @app.callback(
        Output("history-open-run", "data"), Output("history-banner", "children", allow_duplicate=True),
        Input("history-details-button", "n_clicks"), Input(GRID_ID, "cellDoubleClicked"), Input("url", "search"),
        State(GRID_ID, "selectedRows"), prevent_initial_call="initial_duplicate",
    )
    def _open(_clicks: int, double: dict[str, Any] | None, search: str | None, rows: list[dict[str, Any]] | None) -> tuple[Any, Any]:
        trigger = ctx.triggered_id
        if trigger in (None, "url"):
            return _run_from_link(context, search)
        if trigger == GRID_ID and double and double.get("rowId") is not None:
            return int(double["rowId"]), banner()
        ids = _selected_ids(rows)
        if len(ids) != 1:
            return no_update, banner(f"select exactly one run to see its details ({len(ids)} selected)", "error")
        return ids[0], banner()

    @app.callback(Output("history-details", "children"), Output("history-banner", "children", allow_duplicate=True),
                  Input("history-open-run", "data"), prevent_initial_call=True)
    def _details(run_id: int | None) -> tuple[Any, Any]:
        if run_id is None:
            return html.Div(), no_update
        try:
            return details_panel(context, int(run_id)), banner()
        except EXPECTED_ERRORS as exc:
            return html.Div(), banner(error_message(exc), "error")

    @app.callback(Output("history-results-grid", "rowData"), Output("history-results-grid", "columnDefs"),
                  Input("history-results-segment", "value"), Input("history-results-metric", "value"), State("history-open-run", "data"))
    def _results(segment: str, metric: str, run_id: int | None) -> tuple[Any, Any]:
        from forex_pipeline.store.inference_backtests import get_backtests

        if run_id is None:
            return [], []
        with context.read_session() as session:
            backtests = get_backtests(session, int(run_id), [segment])
        rows, regimes = results_table(backtests, segment, metric)
        fmt = NUMBER_FORMAT if metric != "trade_count" else None
        columns = [{"field": c, "headerName": c.replace("_", " "), "pinned": "left", "width": 140} for c in CONFIG_COLUMNS]
        columns += [{"field": r, "headerName": f"{metric}: {r}", **({"valueFormatter": fmt} if fmt else {})} for r in regimes]
        return rows, columns

    @app.callback(Output("history-equity-graph", "figure"), Output("history-banner", "children", allow_duplicate=True),
                  Input("history-equity-config", "value"), State("history-open-run", "data"), prevent_initial_call="initial_duplicate")
    def _equity(value: str | None, run_id: int | None) -> tuple[Any, Any]:
        if not value or run_id is None:
            return no_update, no_update
        try:
            return equity_figure(context, int(run_id), json.loads(value)), no_update
        except EXPECTED_ERRORS as exc:
            return no_update, banner(f"equity curve: {error_message(exc)}", "error")

    @app.callback(
        Output("history-rerun-grid", "rowData"), Output("history-rerun-grid", "columnDefs"), Output("history-rerun-status", "children"),
        Input("history-rerun-button", "n_clicks"),
        State("history-rerun-methods", "value"), State("history-rerun-ensembles", "value"), State("history-rerun-thresholds", "value"),
        State("history-rerun-lookbacks", "value"), State("history-open-run", "data"), prevent_initial_call=True,
    )
    def _rerun(_: int, methods: list[str], ensembles: list[str], thresholds: str, lookbacks: str, run_id: int | None) -> tuple[Any, Any, Any]:
        from forex_pipeline.data.sources import default_sample_dir
        from forex_pipeline.pipeline.kept_models import open_kept_model, rerun_inference
        from forex_pipeline.pipeline.trust import ranking_segments

        try:
            grid = inference_grid_from_inputs(methods, ensembles, thresholds, lookbacks)
            kept = open_kept_model(context.engine, context.settings, context.artifacts_dir, int(run_id), default_sample_dir())
            frame = rerun_inference(context.engine, kept, grid, context.settings)
        except EXPECTED_ERRORS as exc:
            return no_update, no_update, banner(f"re-run not done: {error_message(exc)}", "error")
        segment = ranking_segments(context.settings.evaluation)[0]
        rows, regimes = rerun_rows(frame, segment)
        columns = [{"field": c, "headerName": c.replace("_", " "), "pinned": "left", "width": 140} for c in CONFIG_COLUMNS]
        columns += [{"field": r, "headerName": f"Sharpe: {r}", "valueFormatter": NUMBER_FORMAT} for r in regimes]
        columns += [{"field": "trades (all)"}, {"field": "max drawdown (all)", "valueFormatter": NUMBER_FORMAT}]
        n = frame["inference_config_hash"].nunique()
        return rows, columns, banner(f"{n} inference configurations backtested on run {run_id} ({segment} segment shown; not recorded)", "success")

    @app.callback(Output("history-rerun-grid", "exportDataAsCsv"), Input("history-rerun-csv", "n_clicks"), prevent_initial_call=True)
    def _rerun_csv(_: int) -> bool:
        return True

    @app.callback(Output("history-compare", "children"), Output("history-banner", "children", allow_duplicate=True),
                  Input("history-compare-button", "n_clicks"), State(GRID_ID, "selectedRows"), prevent_initial_call=True)
    def _compare(_: int, rows: list[dict[str, Any]] | None) -> tuple[Any, Any]:
        from forex_pipeline.store.history import best_sharpe_by_model_and_regime

        ids = _selected_ids(rows)
        try:
            runs = _runs(context, ids)
            with context.read_session() as session:
                bests = best_sharpe_by_model_and_regime(session, ids, context.settings.regimes.min_trades)
            table, names = compare_rows(runs, bests)
        except EXPECTED_ERRORS as exc:
            return no_update, banner(error_message(exc), "error")
        columns = [{"field": "field", "headerName": "", "pinned": "left", "width": 330}]
        columns += [{"field": name, "headerName": name, "flex": 1, "wrapText": True, "autoHeight": True} for name in names]
        return html.Div([
            html.H3(f"Compare runs {', '.join(str(r.id) for r in runs)}", id="history-compare-title"),
            dag.AgGrid(id="history-compare-grid", rowData=table, columnDefs=columns, defaultColDef={"resizable": True},
                       dashGridOptions={"domLayout": "autoHeight"}),
            _compare_chart(bests, runs),
        ]), banner()

    @app.callback(Output("history-download", "data"), Output("history-banner", "children", allow_duplicate=True),
                  Input("history-export-button", "n_clicks"), State(GRID_ID, "selectedRows"), State("history-export-format", "value"),
                  prevent_initial_call=True)
    def _export(_: int, rows: list[dict[str, Any]] | None, fmt: str) -> tuple[Any, Any]:
        try:
            name, content = export_file(_runs(context, _selected_ids(rows)), fmt)
        except EXPECTED_ERRORS as exc:
            return no_update, banner(f"export not done: {error_message(exc)}", "error")
        files = "one grid file" if not name.endswith(".zip") else "a zip of grid files (the selection is not one grid)"
        return dcc.send_bytes(content, name), banner(f"exported {len(_selected_ids(rows))} configuration(s) as {files}: {name}", "success")

    @app.callback(Output("history-delete-confirm", "message"), Output("history-delete-confirm", "displayed"),
                  Output("history-banner", "children", allow_duplicate=True),
                  Input("history-delete-button", "n_clicks"), State(GRID_ID, "selectedRows"), prevent_initial_call=True)
    def _ask_delete(_: int, rows: list[dict[str, Any]] | None) -> tuple[Any, Any, Any]:
        ids = _selected_ids(rows)
        if not ids:
            return no_update, False, banner("select the runs to delete", "error")
        message = (f"Delete {len(ids)} run(s) ({', '.join(map(str, ids[:10]))}{' ...' if len(ids) > 10 else ''}) with their backtests "
                   "and model files? Regime bests are refused. This cannot be undone.")
        return message, True, no_update

    @app.callback(Output("history-banner", "children", allow_duplicate=True), Output(REFRESH_ID, "data"),
                  Output(GRID_ID, "deselectAll"), Output("history-details", "children", allow_duplicate=True),
                  Input("history-delete-confirm", "submit_n_clicks"), State(GRID_ID, "selectedRows"), State(REFRESH_ID, "data"),
                  prevent_initial_call=True)
    def _delete(_: int, rows: list[dict[str, Any]] | None, refresh: int) -> tuple[Any, Any, Any, Any]:
        from forex_pipeline.pipeline.keep_or_delete import delete_runs

        try:
            deleted = delete_runs(context.engine, context.settings, _selected_ids(rows))
        except EXPECTED_ERRORS as exc:
            return banner(error_message(exc), "error"), no_update, no_update, no_update
        return (banner(f"deleted run(s) {', '.join(map(str, deleted))} with their backtests and model files", "success"),
                (refresh or 0) + 1, True, html.Div())


def _run_from_link(context: ExplorerContext, search: str | None) -> tuple[Any, Any]:
    """`?config=<model_config_hash>` (Dagster's trained_model link) or `?run=<id>` opens that run's details."""
    from urllib.parse import parse_qs

    from forex_pipeline.store.training_runs import get_training_run_by_hash

    query = parse_qs((search or "").lstrip("?"))
    if "run" in query and query["run"][0].isdigit():
        return int(query["run"][0]), banner()
    if "config" in query:
        with context.read_session() as session:
            run = get_training_run_by_hash(session, query["config"][0])
        if run is None:
            return no_update, banner(f"no training run with configuration hash {query['config'][0][:16]}", "error")
        return run.id, banner()
    return no_update, no_update


def _compare_chart(bests: pd.DataFrame, runs: list[Any]) -> Any:
    """Best Sharpe per regime, one bar per run (grouped), labelled by run id."""
    import plotly.graph_objects as go

    if bests.empty:
        return html.P("no backtests to chart")
    figure = go.Figure()
    for run in runs:
        rows = bests[bests["model"] == run.partition_key].sort_values("regime")
        figure.add_bar(x=rows["regime"], y=rows["sharpe"], name=f"run {run.id}")
    figure.update_layout(barmode="group", title="Best Sharpe per regime (selection rows, min trades)", yaxis_title="Sharpe",
                         template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 40})
    return dcc.Graph(figure=figure, style={"height": "360px"})
