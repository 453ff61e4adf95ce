"""Regime analysis view: the current regime bests with their trust figures."""

from __future__ import annotations

import dash_ag_grid as dag
from dash import Dash, Input, Output, html

from forex_pipeline.explorer.common import ExplorerContext, banner_slot

GRID_ID = "regimes-grid"


def layout(context: ExplorerContext) -> html.Div:
    """The regime bests grid, filled when the tab opens."""
    return html.Div([banner_slot("regimes"), dag.AgGrid(id=GRID_ID, rowData=[], columnDefs=[], style={"height": "520px"})])


def register_callbacks(app: Dash, context: ExplorerContext) -> None:
    """Load the bests (store/regime_best_models.current_bests) when the tab is shown."""

    @app.callback(Output(GRID_ID, "rowData"), Output(GRID_ID, "columnDefs"), Input("tabs", "value"))
    def _bests(tab: str) -> tuple[list[dict], list[dict]]:
        from forex_pipeline.store.regime_best_models import current_bests

        with context.read_session() as session:
            frame = current_bests(session)
        frame = frame.astype(object).where(frame.notna(), None)
        columns = [{"field": str(c)} for c in frame.columns]
        return frame.to_dict("records"), columns
