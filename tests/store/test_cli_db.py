"""`forex-pipeline db upgrade|downgrade|current` through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect
from typer.testing import CliRunner

from forex_pipeline.cli.db import app
from forex_pipeline.store import db

runner = CliRunner()


def test_db_commands_on_the_default_sqlite_file(isolated_storage: Path) -> None:
    database = isolated_storage / "forex_pipeline.db"
    result = runner.invoke(app, ["current"])
    assert result.exit_code == 0, result.output
    assert "base (no project tables)" in result.output

    result = runner.invoke(app, ["upgrade"])
    assert result.exit_code == 0, result.output
    assert db.head_revision() in result.output and str(database) in result.output
    engine = db.make_engine(f"sqlite:///{database}")
    assert "training_runs" in inspect(engine).get_table_names()
    engine.dispose()

    assert db.head_revision() in runner.invoke(app, ["current"]).output
    result = runner.invoke(app, ["downgrade"])
    assert result.exit_code == 0 and "base" in result.output
    assert db.current(f"sqlite:///{database}") is None
    result = runner.invoke(app, ["upgrade", "--revision", "0001_initial"])
    assert result.exit_code == 0 and db.current(f"sqlite:///{database}") == "0001_initial"


def test_db_is_mounted_on_the_root_command(isolated_storage: Path) -> None:
    from forex_pipeline.cli import app as root

    result = runner.invoke(root, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert db.current(f"sqlite:///{isolated_storage / 'forex_pipeline.db'}") == db.head_revision()


def test_db_errors_are_reported_with_their_exit_codes(isolated_storage: Path) -> None:
    result = runner.invoke(app, ["upgrade", "--revision", "9999_nope"])
    assert result.exit_code == 1
    assert "9999_nope" in result.output and "error:" in result.output
    result = runner.invoke(app, ["current", "--url", "mysql://u@h/d"])
    assert result.exit_code == 2 and "neither SQLite nor PostgreSQL" in result.output


@pytest.mark.postgres
def test_db_upgrade_on_postgresql_by_url(isolated_storage: Path, postgres_url: str) -> None:
    result = runner.invoke(app, ["upgrade", "--url", postgres_url])
    assert result.exit_code == 0, result.output
    assert db.current(postgres_url) == db.head_revision()
    assert runner.invoke(app, ["downgrade", "--url", postgres_url]).exit_code == 0
    assert db.current(postgres_url) is None
