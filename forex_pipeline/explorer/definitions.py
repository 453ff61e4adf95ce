"""Regime definitions view: the built-in and custom regimes with their rules."""

from __future__ import annotations

import json

import dash_ag_grid as dag
from dash import Dash, Input, Output, html

from forex_pipeline.explorer.common import ExplorerContext, banner_slot

GRID_ID = "definitions-grid"
COLUMNS = ("name", "description", "rules", "enabled", "is_builtin")


def layout(context: ExplorerContext) -> html.Div:
    """The regime definitions grid, filled when the tab opens."""
    return html.Div([
        banner_slot("definitions"),
        dag.AgGrid(id=GRID_ID, rowData=[], columnDefs=[{"field": c} for c in COLUMNS], style={"height": "420px"}),
    ])


def register_callbacks(app: Dash, context: ExplorerContext) -> None:
    """Load the definitions (store/regime_definitions.list_regime_definitions) when the tab is shown."""

    @app.callback(Output(GRID_ID, "rowData"), Input("tabs", "value"))
    def _definitions(tab: str) -> list[dict]:
        from forex_pipeline.store.regime_definitions import list_regime_definitions

        with context.read_session() as session:
            records = list_regime_definitions(session)
        return [
            {"name": r.name, "description": r.description, "rules": json.dumps(r.rules), "enabled": r.enabled, "is_builtin": r.is_builtin}
            for r in records
        ]
