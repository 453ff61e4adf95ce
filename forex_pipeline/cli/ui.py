"""`forex-pipeline ui`: the results explorer (forex_pipeline/explorer) on the project database."""

from __future__ import annotations

import typer

from forex_pipeline.cli.common import DatabaseUnavailable, console, read_session

IS_ROOT_COMMANDS = True


def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind (127.0.0.1: this machine only)"),
    port: int = typer.Option(8050, "--port", min=1, max=65535, help="port to listen on"),
) -> None:
    """Serve the results explorer (history, regime analysis, regime definitions, queues) until Ctrl-C."""
    from sqlalchemy import inspect

    from forex_pipeline.settings import get_settings

    settings = get_settings()
    with read_session(settings.database_url) as session:  # refuses a missing database with what to run
        tables = inspect(session.connection()).get_table_names()
    if "training_runs" not in tables:
        raise DatabaseUnavailable("the project database has no tables yet; run `forex-pipeline db upgrade` first")
    from forex_pipeline.explorer.app import serve

    console().print(f"explorer on http://{host}:{port} (Ctrl-C to stop)", highlight=False)
    serve(host=host, port=port, database_url=settings.database_url, artifacts_dir=settings.artifacts_dir)


def register(app: typer.Typer) -> None:
    """Add `ui` to the root `forex-pipeline` command."""
    app.command("ui")(ui)
