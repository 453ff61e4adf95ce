"""The Alembic migration: creates the five tables and seeds the regimes, drops them, and runs again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from forex_pipeline.settings import get_settings
from forex_pipeline.store import db
from forex_pipeline.store.tables import Base

TABLES = {"training_runs", "inference_backtests", "regime_definitions", "regime_best_models", "training_queue"}


def table_names(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def seeded_regimes(url: str) -> dict[str, tuple[dict, bool, bool]]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT name, rules, is_builtin, enabled FROM regime_definitions"))
            return {
                name: (rules if isinstance(rules, dict) else json.loads(rules), bool(builtin), bool(enabled))
                for name, rules, builtin, enabled in rows
            }
    finally:
        engine.dispose()


def schema_differences(url: str) -> list:
    """What autogenerate would change to make the migrated schema match the SQLAlchemy models."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert db.current(db_url) is None
    assert db.upgrade(db_url) == db.head_revision() == "0001_initial"
    assert table_names(db_url) == TABLES
    expected = {
        name: ({f: b.model_dump(exclude_none=True) for f, b in d.rules.items()}, True, True)
        for name, d in get_settings().regimes.definitions.items()
    }
    assert set(expected) == {"bull_trending", "bear_trending", "volatile_ranging", "calm_ranging"}
    assert seeded_regimes(db_url) == expected
    assert schema_differences(db_url) == []

    assert db.downgrade(db_url) is None
    assert table_names(db_url) == set()
    assert db.current(db_url) is None

    assert db.upgrade(db_url) == "0001_initial"
    assert table_names(db_url) == TABLES
    assert set(seeded_regimes(db_url)) == set(expected)


def test_upgrade_seeds_the_regimes_of_the_settings_file(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_file = tmp_path / "custom.yaml"
    settings_file.write_text(
        "regimes:\n  definitions:\n    quiet:\n      description: low vol\n"
        "      rules: {volatility_percentile: {max: 0.2}}\n"
    )
    monkeypatch.setenv("FOREX_SETTINGS", str(settings_file))
    db.upgrade(db_url)
    assert seeded_regimes(db_url) == {"quiet": ({"volatility_percentile": {"max": 0.2}}, True, True)}


def test_upgrade_is_idempotent_and_current_reports_head(sqlite_url: str) -> None:
    db.upgrade(sqlite_url)
    db.upgrade(sqlite_url)
    assert db.current(sqlite_url) == db.head_revision()
    assert len(seeded_regimes(sqlite_url)) == len(get_settings().regimes.definitions)


def test_sqlite_parent_directory_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'forex.db'}"
    db.upgrade(url)
    assert (tmp_path / "a" / "b" / "forex.db").is_file()


def test_migration_files_are_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    migrations = db.MIGRATIONS_DIR
    shipped = [migrations / "alembic.ini", migrations / "env.py", migrations / "script.py.mako",
               *sorted((migrations / "versions").glob("*.py"))]
    assert all(path.is_file() for path in shipped) and len(shipped) >= 4
    for glob in ("migrations/*.ini", "migrations/*.py", "migrations/versions/*.py", "migrations/*.mako"):
        assert f'"{glob}"' in pyproject, glob
