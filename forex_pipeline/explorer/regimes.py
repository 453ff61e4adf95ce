"""Regime analysis view: the regime bests with every trust figure, their actions and the three charts.

The grid is reporting.tables.bests_table: the very columns (names, types, descriptions) of the
`regime_bests` table in the Dagster UI. Actions on the selected best: view details (configuration,
inference settings, trust figures and the verdict in plain words), backtest (replay its inference
configuration on its test segment from the kept model file: the equity curve), deploy (download the
bundle of the bests of its market: pipeline/bundle.py). Charts: regime detection over time (the
selected best's feature set), model x regime heatmap, risk vs return by regime.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import dash_ag_grid as dag
import pandas as pd
from dash import Dash, Input, Output, State, dcc, html, no_update

from forex_pipeline.explorer.common import EXPECTED_ERRORS, ExplorerContext, banner, banner_slot, error_message, section, toolbar

GRID_ID = "regimes-grid"
FLOAT_FORMAT = {"function": "params.value == null ? '' : d3.format('.3f')(params.value)"}


def grid_columns() -> list[dict[str, Any]]:
    """AG Grid columns of the bests table: one per reporting.tables.BESTS_COLUMNS column, its description as tooltip."""
    from forex_pipeline.reporting.tables import BESTS_COLUMNS

    columns = []
    for column in BESTS_COLUMNS:
        spec: dict[str, Any] = {"field": column.name, "headerName": column.name, "headerTooltip": column.description}
        if column.type == "float":
            spec["valueFormatter"] = FLOAT_FORMAT
            spec["filter"] = "agNumberColumnFilter"
        if column.name in ("model", "partition_key"):
            spec["width"] = 320
        columns.append(spec)
    return columns


def layout(context: ExplorerContext) -> html.Div:
    """Bests grid with its actions, the details panel, and the three charts."""
    return html.Div(
        [
            banner_slot("regimes"),
            toolbar(
                [("Refresh", "regimes-refresh"), ("View details", "regimes-details-button"),
                 ("Backtest", "regimes-backtest-button"), ("Deploy (download bundle)", "regimes-deploy-button")],
                html.Span("select a best, then act on it; deploy bundles every regime's best of that market",
                          style={"color": "#555"}),
                dcc.Download(id="regimes-download"),
            ),
            dag.AgGrid(
                id=GRID_ID, rowData=[], columnDefs=grid_columns(),
                defaultColDef={"sortable": True, "resizable": True, "filter": True},
                dashGridOptions={
                    "rowSelection": {"mode": "singleRow", "enableClickSelection": True}, "tooltipShowDelay": 300,
                    "suppressColumnVirtualisation": True,   # 20 columns: render them all (and let a browser test see them)
                },
                getRowId="params.data.regime + ':' + params.data.rank",
                style={"height": "360px"},
            ),
            dcc.Loading(html.Div(id="regimes-details")),
            section("Regime detection over time", dcc.Loading(dcc.Graph(id="regimes-timeline"))),
            html.Div(
                [
                    html.Div(section("Model x regime", dcc.Graph(id="regimes-heatmap")), style={"flex": "1 1 50%"}),
                    html.Div(section("Risk vs return by regime", dcc.Graph(id="regimes-risk")), style={"flex": "1 1 50%"}),
                ],
                style={"display": "flex", "gap": "12px", "flexWrap": "wrap"},
            ),
        ]
    )


# ----------------------------------------------------------------------------------------------- data
def load_bests(context: ExplorerContext) -> tuple[pd.DataFrame, list[str]]:
    """(current_bests, the scored regimes in order)."""
    from forex_pipeline.store.regime_best_models import current_bests
    from forex_pipeline.store.regime_definitions import active_regimes

    with context.read_session() as session:
        return current_bests(session), list(active_regimes(session, context.settings).definitions)


def grid_rows(context: ExplorerContext) -> list[dict[str, Any]]:
    """The records of reporting.tables.bests_table (every trust figure, one typed value per cell)."""
    from forex_pipeline.reporting.tables import bests_table

    bests, regimes = load_bests(context)
    return [dict(record) for record in bests_table(bests, regimes, context.artifacts_dir).records]


def find_best(context: ExplorerContext, regime: str, rank: int) -> dict[str, Any]:
    """The current_bests row of (regime, rank); LookupError when it is gone (the bests moved on)."""
    bests, _ = load_bests(context)
    match = bests[(bests["regime"] == regime) & (bests["rank"] == int(rank))]
    if match.empty:
        raise LookupError(f"regime {regime} has no rank {rank} any more; refresh the grid")
    return {key: None if value is pd.NA else value for key, value in match.iloc[0].to_dict().items()}


def heatmap(context: ExplorerContext):  # noqa: ANN201 - plotly Figure
    """The model x regime heatmap over the models holding a best."""
    from forex_pipeline.explorer.figures import heatmap_figure
    from forex_pipeline.reporting.dashboard import model_regime_pivot
    from forex_pipeline.store.history import best_sharpe_by_model_and_regime

    bests, _ = load_bests(context)
    run_ids = sorted({int(r) for r in bests["training_run_id"]}) if not bests.empty else []
    if not run_ids:
        return heatmap_figure(pd.DataFrame())
    with context.read_session() as session:
        rows = best_sharpe_by_model_and_regime(session, run_ids, context.settings.regimes.min_trades)
    return heatmap_figure(model_regime_pivot(rows, context.artifacts_dir))


def risk_return(context: ExplorerContext):  # noqa: ANN201 - plotly Figure
    """Every best's drawdown and return in its regime, labelled per regime and rank."""
    from forex_pipeline.explorer.figures import risk_return_figure
    from forex_pipeline.reporting.tables import model_label
    from forex_pipeline.store.regime_best_models import best_risk_return

    with context.read_session() as session:
        points = best_risk_return(session)
    if not points.empty:
        points["model"] = [model_label(context.artifacts_dir, str(k)) for k in points["partition_key"]]
    return risk_return_figure(points)


def timeline(context: ExplorerContext, partition_key: str | None):  # noqa: ANN201 - plotly Figure
    """Regime labels over the closes of a best's feature set (the first best's when none is selected)."""
    from forex_pipeline.explorer.figures import empty_figure, timeline_figure
    from forex_pipeline.keys import split_model_config_key
    from forex_pipeline.reporting.dashboard import feature_set_regimes
    from forex_pipeline.store.regime_definitions import active_regimes

    if partition_key is None:
        bests, _ = load_bests(context)
        if bests.empty:
            return empty_figure("no regime bests yet")
        partition_key = str(bests.iloc[0]["partition_key"])
    fs_key, _ = split_model_config_key(partition_key)
    with context.read_session() as session:
        scored = active_regimes(session, context.settings)
    labelled = feature_set_regimes(fs_key, scored, context.settings, context.artifacts_dir)
    if labelled is None:
        return empty_figure(f"the feature matrix of {fs_key} is not on disk")
    timestamps, close, labels = labelled
    return timeline_figure(timestamps, close, labels, f"Regimes of {fs_key} ({scored.detector} detector)")


TRUST_ROWS: tuple[tuple[str, str], ...] = (
    ("score", "Sharpe on the selection segment (where it was chosen)"),
    ("holdout_score", "Sharpe on the holdout segment (confirmation)"),
    ("holdout_trades", "trades on the holdout segment"),
    ("trade_count", "trades in the regime"),
    ("n_trials", "inference configurations tried in the regime"),
    ("deflated_sharpe", "deflated Sharpe ratio"),
    ("null_p_value", "noise p-value"),
    ("pbo", "probability of backtest overfitting"),
    ("baseline", "best baseline"),
    ("baseline_score", "baseline Sharpe"),
    ("improvement_over_baseline", "Sharpe over the baseline"),
    ("improvement", "Sharpe over the previous rank-1"),
    ("significant", "significant"),
)


def _cell(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def details(context: ExplorerContext, best: dict[str, Any]) -> html.Div:
    """The configuration, inference settings and trust figures of one best, with the verdict in words."""
    from forex_pipeline.pipeline.trust import plain_words
    from forex_pipeline.reporting.charts import inference_config_label
    from forex_pipeline.reporting.tables import model_label
    from forex_pipeline.store import training_runs

    with context.read_session() as session:
        run = training_runs.get_training_run(session, int(best["training_run_id"]))
    verdict = plain_words(best, context.settings.regimes.significance)
    rows = [html.Tr([html.Td(label), html.Td(_cell(best.get(key)), id=f"regimes-detail-{key}")]) for key, label in TRUST_ROWS]
    return html.Div(
        [
            html.H4(f"{best['regime']} #{best['rank']}: {model_label(context.artifacts_dir, str(best['partition_key']))}"),
            html.P(f"inference: {inference_config_label(best)}; partition {best['partition_key']}; "
                   f"model file {'kept' if best['kept'] else 'deleted'}"),
            html.P(verdict, id="regimes-verdict", style={"fontWeight": "bold"}),
            html.Table(rows, style={"borderCollapse": "collapse"}),
            html.Details([html.Summary("configuration (feature set and model spec)"),
                          html.Pre(_json({"feature_set": run.feature_set, "model_spec": run.model_spec, "metrics": run.metrics}))]),
        ],
        style={"border": "1px solid #ddd", "padding": "8px 12px", "margin": "8px 0"},
    )


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=True, default=str)


def backtest(context: ExplorerContext, best: dict[str, Any]) -> html.Div:
    """Replay the best's inference configuration on its test segment from its kept model file
    (pipeline/kept_models.py): its equity curve and final return."""
    from forex_pipeline.backtest.inference_grid import InferenceConfig
    from forex_pipeline.data.sources import default_sample_dir
    from forex_pipeline.explorer.figures import equity_figure
    from forex_pipeline.pipeline.kept_models import kept_model_equity, open_kept_model

    kept = open_kept_model(context.engine, context.settings, context.artifacts_dir, int(best["training_run_id"]), default_sample_dir())
    config = InferenceConfig(
        str(best["prediction_method"]), str(best["ensemble_method"]), float(best["confidence_threshold"]), int(best["lookback_window"])
    )
    curve = kept_model_equity(kept, config, context.settings)
    title = f"Backtest of {best['regime']} #{best['rank']} on its test segment (after costs)"
    return html.Div(
        [
            html.P(f"final return {curve.iloc[-1]:+.4f} over {len(curve)} bars ({curve.index[0]:%Y-%m-%d} to {curve.index[-1]:%Y-%m-%d})",
                   id="regimes-backtest-summary"),
            dcc.Graph(figure=equity_figure(curve, title)),
        ]
    )


def bundle_bytes(context: ExplorerContext, symbol: str | None, base_timeframe: str | None) -> tuple[bytes, str]:
    """The deploy bundle of the bests of (symbol, base_timeframe) as bytes, and its file name."""
    from forex_pipeline.pipeline.bundle import bundle_file_name, export_bundle

    with tempfile.TemporaryDirectory(prefix="forex-explorer-") as folder:
        path = Path(folder) / "bundle.zip"
        manifest = export_bundle(
            context.engine, context.settings, path, symbol=symbol, base_timeframe=base_timeframe, artifacts_dir=context.artifacts_dir
        )
        return path.read_bytes(), bundle_file_name(manifest)


# ------------------------------------------------------------------------------------------ callbacks
def _selected(rows: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    return rows[0] if rows else None


def register_callbacks(app: Dash, context: ExplorerContext) -> None:
    """Grid and charts on tab/refresh; details, backtest and deploy on their buttons."""

    @app.callback(
        Output(GRID_ID, "rowData"), Output("regimes-heatmap", "figure"), Output("regimes-risk", "figure"),
        Input("tabs", "value"), Input("regimes-refresh", "n_clicks"),
    )
    def _load(tab: str, _clicks: int | None):  # noqa: ANN202
        if tab != "regimes":
            return no_update, no_update, no_update
        return grid_rows(context), heatmap(context), risk_return(context)

    @app.callback(Output("regimes-timeline", "figure"), Input("tabs", "value"), Input(GRID_ID, "selectedRows"))
    def _timeline(tab: str, rows: list[dict[str, Any]] | None):  # noqa: ANN202
        if tab != "regimes":
            return no_update
        row = _selected(rows)
        return timeline(context, None if row is None else str(row["partition_key"]))

    @app.callback(
        Output("regimes-details", "children"), Output("regimes-banner", "children"),
        Input("regimes-details-button", "n_clicks"), Input("regimes-backtest-button", "n_clicks"),
        State(GRID_ID, "selectedRows"), prevent_initial_call=True,
    )
    def _act(_details: int | None, _backtest: int | None, rows: list[dict[str, Any]] | None):  # noqa: ANN202
        from dash import ctx

        row = _selected(rows)
        if row is None:
            return no_update, banner("select a best in the grid first", "error")
        try:
            best = find_best(context, str(row["regime"]), int(row["rank"]))
            if ctx.triggered_id == "regimes-backtest-button":
                return backtest(context, best), banner(f"backtest of {row['regime']} #{row['rank']} replayed", "success")
            return details(context, best), banner()
        except EXPECTED_ERRORS as exc:
            return no_update, banner(error_message(exc), "error")

    @app.callback(
        Output("regimes-download", "data"), Output("regimes-banner", "children", allow_duplicate=True),
        Input("regimes-deploy-button", "n_clicks"), State(GRID_ID, "selectedRows"), prevent_initial_call=True,
    )
    def _deploy(_clicks: int | None, rows: list[dict[str, Any]] | None):  # noqa: ANN202
        row = _selected(rows)
        symbol = timeframe = None
        try:
            if row is not None:
                best = find_best(context, str(row["regime"]), int(row["rank"]))
                symbol, timeframe = str(best["symbol"]), str(best["base_timeframe"])
            data, name = bundle_bytes(context, symbol, timeframe)
        except EXPECTED_ERRORS as exc:
            return no_update, banner(error_message(exc), "error")
        return dcc.send_bytes(data, name), banner(f"bundle {name} written ({len(data):,} bytes)", "success")
