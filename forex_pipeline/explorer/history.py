"""History view: the training runs in a server-side paged grid (every page from the database)."""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
from dash import Dash, Input, Output, html

from forex_pipeline.explorer.common import ExplorerContext, banner_slot

PAGE_SIZE = 50
GRID_ID = "history-grid"
# (field, header) of the grid, in order; the fields are store/history.py HISTORY_COLUMNS.
GRID_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "Run"),
    ("partition_key", "Configuration"),
    ("symbol", "Symbol"),
    ("base_timeframe", "Timeframe"),
    ("model_type", "Model type"),
    ("encoder", "Encoder"),
    ("horizon", "Horizon"),
    ("status", "Status"),
    ("best_sharpe", "Best Sharpe"),
    ("best_max_drawdown", "Max drawdown"),
    ("training_seconds", "Training s"),
    ("kept", "Kept"),
    ("created_at", "Created"),
)


def layout(context: ExplorerContext) -> html.Div:
    """The history grid: 50 rows a page, each page read from the database."""
    return html.Div(
        [
            banner_slot("history"),
            dag.AgGrid(
                id=GRID_ID,
                rowModelType="infinite",
                columnDefs=[{"field": name, "headerName": header} for name, header in GRID_COLUMNS],
                defaultColDef={"sortable": False, "resizable": True},
                dashGridOptions={
                    "pagination": True, "paginationPageSize": PAGE_SIZE, "cacheBlockSize": PAGE_SIZE,
                    "maxBlocksInCache": 4, "paginationPageSizeSelector": False,
                },
                style={"height": "620px"},
            ),
        ]
    )


def rows_response(context: ExplorerContext, request: dict[str, Any]) -> dict[str, Any]:
    """The block of rows AG Grid asked for (startRow..endRow) and the total row count."""
    from forex_pipeline.store.history import HistoryFilter, query_history

    start = int(request.get("startRow") or 0)
    page = start // PAGE_SIZE + 1
    with context.read_session() as session:
        result = query_history(session, HistoryFilter(page=page, page_size=PAGE_SIZE))
    frame = result.rows.astype(object).where(result.rows.notna(), None)
    for column in ("created_at", "completed_at", "file_deleted_at"):
        frame[column] = [None if v is None else v.isoformat(timespec="seconds") for v in frame[column]]
    return {"rowData": frame.to_dict("records"), "rowCount": result.total}


def register_callbacks(app: Dash, context: ExplorerContext) -> None:
    """Serve the grid's row requests."""

    @app.callback(Output(GRID_ID, "getRowsResponse"), Input(GRID_ID, "getRowsRequest"), prevent_initial_call=True)
    def _rows(request: dict[str, Any] | None) -> dict[str, Any]:
        return rows_response(context, request or {})
