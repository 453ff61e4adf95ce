"""The explorer app: one Dash page with a tab per view, over the project database.

`create_app` assembles the views (history, regimes, definitions, queues: one module each, each with
`layout(context)` and `register_callbacks(app, context)`); `serve` runs it on a host and port.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from dash import Dash, Input, Output, dcc, html, no_update

from forex_pipeline.explorer import definitions, history, queues, regimes
from forex_pipeline.explorer.common import ExplorerContext

# (tab value, tab label, view module), in page order.
VIEWS: tuple[tuple[str, str, ModuleType], ...] = (
    ("history", "History", history),
    ("regimes", "Regimes", regimes),
    ("definitions", "Regime definitions", definitions),
    ("queues", "Queues", queues),
)
TITLE = "forex_pipeline explorer"


def create_app(database_url: str | None = None, artifacts_dir: str | Path | None = None) -> Dash:
    """The explorer over `database_url` and `artifacts_dir` (default: the configured ones)."""
    from forex_pipeline.settings import get_settings

    settings = get_settings()
    context = ExplorerContext(
        database_url=database_url or settings.database_url,
        artifacts_dir=Path(artifacts_dir) if artifacts_dir is not None else settings.artifacts_dir,
        settings=settings,
    )
    app = Dash(__name__, title=TITLE, suppress_callback_exceptions=True)
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh=False),
            html.H2(TITLE, style={"margin": "8px 0"}),
            dcc.Tabs(
                id="tabs", value=VIEWS[0][0],
                children=[dcc.Tab(label=label, value=value, children=module.layout(context)) for value, label, module in VIEWS],
            ),
        ],
        style={"fontFamily": "system-ui, sans-serif", "margin": "0 16px"},
    )
    for _value, _label, module in VIEWS:
        module.register_callbacks(app, context)

    @app.callback(Output("tabs", "value"), Input("url", "search"))
    def _tab_from_link(search: str | None) -> str:
        """`?tab=regimes` (Dagster's links) opens that tab; views read their own query keys (e.g. `config`)."""
        return tab_of(search) or no_update

    return app


def tab_of(search: str | None) -> str | None:
    """The tab a link's query names (`?tab=history&config=...`), None when it names no known tab."""
    from urllib.parse import parse_qs

    tab = parse_qs((search or "").lstrip("?")).get("tab", [None])[0]
    return tab if tab in {value for value, _label, _module in VIEWS} else None


def serve(host: str = "127.0.0.1", port: int = 8050, database_url: str | None = None, artifacts_dir: str | Path | None = None) -> None:
    """Run the explorer until interrupted (Flask's threaded server: one page, a few users)."""
    app = create_app(database_url, artifacts_dir)
    app.run(host=host, port=port, debug=False)
