"""Queue panel: the training queues with live progress, and pause / resume / cancel on the selected one.

The buttons call the functions the CLI calls (queue/lifecycle.py: `pause`, `cancel`, `resume`), each
after a confirmation, each in its own transaction; a resumed queue is handed to the Dagster daemon
(`hand_to_daemon`, as `queue resume --detach` and the launchpad's resume_queue job do), whose
training_queue_sensor runs its batches. Progress refreshes every REFRESH_MS while the tab is open.
"""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from forex_pipeline.explorer.common import ExplorerContext, banner, banner_slot, confirm_dialog, outcome_banner, toolbar

GRID_ID = "queues-grid"
REFRESH_MS = 2000
ACTIONS: dict[str, str] = {
    "pause": "Pause queue {id} ({name})? The model in flight finishes, then the queue stops.",
    "resume": "Resume queue {id} ({name})? It continues with what is missing; the Dagster daemon (dagster dev) runs it.",
    "cancel": "Cancel queue {id} ({name})? It stops now; finished models stay. A cancelled queue cannot be resumed.",
}
PROGRESS_STYLE = {
    "function": "({background: `linear-gradient(90deg, #b9e4c2 ${params.data.percent}%, transparent ${params.data.percent}%)`})"
}
COLUMNS: tuple[dict[str, Any], ...] = (
    {"field": "id", "headerName": "queue", "width": 90},
    {"field": "name", "headerName": "name"},
    {"field": "status", "headerName": "status", "width": 110},
    {"field": "progress", "headerName": "progress", "cellStyle": PROGRESS_STYLE, "width": 170},
    {"field": "summary", "headerName": "summary", "flex": 1, "minWidth": 260},
    {"field": "failed", "headerName": "failed", "width": 90},
    {"field": "kept", "headerName": "kept", "width": 90},
    {"field": "elapsed", "headerName": "elapsed", "width": 110},
    {"field": "remaining", "headerName": "time left", "width": 110},
)


def layout(context: ExplorerContext) -> html.Div:
    """The queues grid (refreshed while shown) and the three control buttons."""
    return html.Div(
        [
            banner_slot("queues"),
            toolbar(
                [("Pause", "queues-pause"), ("Resume", "queues-resume"), ("Cancel", "queues-cancel")],
                dcc.Checklist(id="queues-show-finished", options=[{"label": " show finished queues", "value": "finished"}],
                              value=[], inline=True, style={"display": "inline-block", "marginLeft": "16px"}),
            ),
            dag.AgGrid(
                id=GRID_ID, rowData=[], columnDefs=list(COLUMNS), getRowId="'' + params.data.id",
                defaultColDef={"sortable": True, "resizable": True},
                dashGridOptions={"rowSelection": {"mode": "singleRow", "enableClickSelection": True}},
                style={"height": "360px"},
            ),
            dcc.Interval(id="queues-interval", interval=REFRESH_MS),
            confirm_dialog("queues-confirm"),
            dcc.Store(id="queues-pending"),
        ]
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def queue_rows(context: ExplorerContext, show_finished: bool) -> list[dict[str, Any]]:
    """One row per queue (unfinished ones unless `show_finished`) from queue/lifecycle.progress, after
    marking queues whose worker died as interrupted (as `queue status` does)."""
    from forex_pipeline.keys import FINISHED_QUEUE_STATUSES
    from forex_pipeline.queue.lifecycle import detect_interrupted, progress
    from forex_pipeline.store.training_queue import list_queues

    detect_interrupted(context.engine, context.settings)
    with context.read_session() as session:
        queues = list_queues(session)
    rows = []
    for queue in queues:
        if queue.status in FINISHED_QUEUE_STATUSES and not show_finished:
            continue
        figures = progress(queue)
        done = figures["completed"] + figures["failed"]
        percent = round(100.0 * done / figures["total"], 1) if figures["total"] else 0.0
        rows.append(
            {
                "id": queue.id, "name": queue.name, "status": str(queue.status),
                "progress": f"{done}/{figures['total']} ({percent:.0f}%)", "percent": percent,
                "summary": figures["summary"], "failed": figures["failed"], "kept": figures["kept"],
                "elapsed": _duration(figures["elapsed_seconds"]), "remaining": _duration(figures["remaining_seconds"]),
            }
        )
    return rows


def control(context: ExplorerContext, action: str, queue_id: int) -> str:
    """Pause, resume or cancel a queue with the CLI's lifecycle functions; the outcome in words.

    QueueError (a finished queue, a queue that cannot resume) and LookupError propagate with their message.
    """
    from forex_pipeline.queue import lifecycle

    if action == "pause":
        record = lifecycle.pause(context.engine, queue_id)
        return f"queue {queue_id}: {'pause requested' if record.pause_requested else record.status}"
    if action == "cancel":
        record = lifecycle.cancel(context.engine, queue_id)
        return f"queue {queue_id}: {'cancel requested' if record.cancel_requested else record.status}"
    if action == "resume":
        lifecycle.resume(context.engine, queue_id, context.settings)
        record = lifecycle.hand_to_daemon(context.engine, queue_id)
        return f"queue {queue_id} resumed: {record.status}, handed to the Dagster daemon's training_queue_sensor"
    raise ValueError(f"unknown queue action {action!r}")


def register_callbacks(app: Dash, context: ExplorerContext) -> None:
    """Refresh the grid; ask before an action; act when confirmed."""

    @app.callback(
        Output(GRID_ID, "rowData"),
        Input("tabs", "value"), Input("queues-interval", "n_intervals"), Input("queues-show-finished", "value"),
        Input("queues-banner", "children"),
    )
    def _rows(tab: str, _ticks: int | None, finished: list[str] | None, _banner: Any):  # noqa: ANN202
        if tab != "queues":
            return no_update
        return queue_rows(context, bool(finished))

    @app.callback(
        Output("queues-confirm", "message"), Output("queues-confirm", "displayed"), Output("queues-pending", "data"),
        Output("queues-banner", "children"),
        Input("queues-pause", "n_clicks"), Input("queues-resume", "n_clicks"), Input("queues-cancel", "n_clicks"),
        State(GRID_ID, "selectedRows"), prevent_initial_call=True,
    )
    def _ask(_p: int | None, _r: int | None, _c: int | None, rows: list[dict[str, Any]] | None):  # noqa: ANN202
        action = str(ctx.triggered_id).removeprefix("queues-")
        if not rows:
            return no_update, False, None, banner("select a queue in the grid first", "error")
        row = rows[0]
        return ACTIONS[action].format(id=row["id"], name=row["name"]), True, {"action": action, "queue": int(row["id"])}, banner()

    @app.callback(
        Output("queues-banner", "children", allow_duplicate=True),
        Input("queues-confirm", "submit_n_clicks"), State("queues-pending", "data"), prevent_initial_call=True,
    )
    def _act(_submitted: int | None, pending: dict[str, Any] | None):  # noqa: ANN202
        if not pending:
            return no_update
        return outcome_banner(lambda: control(context, str(pending["action"]), int(pending["queue"])))
