"""`forex-pipeline db ...`: migrate the project database up or down and show its revision."""

from __future__ import annotations

from typing import Optional

import typer

from forex_pipeline.cli.common import fail
from forex_pipeline.errors import EXIT_FAILED

app = typer.Typer(no_args_is_help=True, help="Project database: Alembic migrations (SQLite or PostgreSQL).")

URL_HELP = "Database URL (default: FOREX_DATABASE_URL, settings, else SQLite under DAGSTER_HOME)."


def _run(action: str, url: Optional[str], revision: Optional[str]) -> None:
    """Run one migration command and report where the database ended up."""
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from forex_pipeline.store import db

    try:
        where = db.describe_url(url)
    except ValueError as exc:
        fail(str(exc))
    try:
        if action == "upgrade":
            result = db.upgrade(url, revision or "head")
        elif action == "downgrade":
            result = db.downgrade(url, revision or "base")
        else:
            result = db.current(url)
    except (CommandError, SQLAlchemyError, ValueError, OSError) as exc:
        fail(f"{action} of {where} failed: {exc}", EXIT_FAILED)
    typer.echo(f"{where}: {result or 'base (no project tables)'}")


@app.command()
def upgrade(
    revision: str = typer.Option("head", "--revision", "-r", help="Target revision."),
    url: Optional[str] = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Create or update the project tables (default: to the newest revision)."""
    _run("upgrade", url, revision)


@app.command()
def downgrade(
    revision: str = typer.Option("base", "--revision", "-r", help="Target revision; base drops every table."),
    url: Optional[str] = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Revert migrations (default: to base, dropping every project table and its data)."""
    _run("downgrade", url, revision)


@app.command()
def current(url: Optional[str] = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """Show the revision the database is at."""
    _run("current", url, None)
