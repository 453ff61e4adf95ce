"""Queue panel: the training queues with their progress."""

from __future__ import annotations

import dash_ag_grid as dag
from dash import Dash, Input, Output, html

from forex_pipeline.explorer.common import ExplorerContext, banner_slot

GRID_ID = "queues-grid"
COLUMNS = ("id", "name", "status", "total_models", "completed_models", "failed_models", "kept_models", "created_at")


def layout(context: ExplorerContext) -> html.Div:
    """The queues grid, filled when the tab opens."""
    return html.Div([
        banner_slot("queues"),
        dag.AgGrid(id=GRID_ID, rowData=[], columnDefs=[{"field": c} for c in COLUMNS], style={"height": "420px"}),
    ])


def register_callbacks(app: Dash, context: ExplorerContext) -> None:
    """Load the queues (store/training_queue.list_queues) when the tab is shown."""

    @app.callback(Output(GRID_ID, "rowData"), Input("tabs", "value"))
    def _queues(tab: str) -> list[dict]:
        from forex_pipeline.store.training_queue import list_queues

        with context.read_session() as session:
            records = list_queues(session)
        return [{c: (str(getattr(q, c)) if c == "created_at" else getattr(q, c)) for c in COLUMNS} for q in records]
