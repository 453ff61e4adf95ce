"""The deployment profile's deploy/dagster.yaml gives a working Dagster instance whose runs and events land in PostgreSQL."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import create_engine, make_url, text

from forex_pipeline.dagster_defs.assets.market_data import raw_bars
from forex_pipeline.data.bar_store import raw_bars_path, read_bars
from forex_pipeline.dagster_defs.resources import ForexStorage
from tests.conftest import REPO_ROOT
from tests.store.conftest import postgres_database

POSTGRES_YAML = REPO_ROOT / "deploy" / "dagster.yaml"


def pg_env(database_url: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables deploy/dagster.yaml reads, for the database at `database_url`."""
    url = make_url(database_url)
    return {
        "DAGSTER_PG_USERNAME": url.username or "",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_HOST": url.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_DB": url.database or "",
    }


def postgres_dagster_home(home: Path) -> Path:
    """A DAGSTER_HOME folder whose dagster.yaml is the project's PostgreSQL instance file."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(POSTGRES_YAML, home / "dagster.yaml")
    return home


@pytest.fixture()
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test's own (created, then dropped); fails, never skips, without a server."""
    with postgres_database() as url:
        yield url


@pytest.fixture()
def pg_instance(pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance of a temporary DAGSTER_HOME holding deploy/dagster.yaml, on its own database."""
    home = postgres_dagster_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name, value in pg_env(pg_database).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FOREX_DATABASE_URL", f"sqlite:///{tmp_path / 'forex.db'}")
    monkeypatch.setenv("FOREX_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    instance = dg.DagsterInstance.get()
    try:
        yield instance
    finally:
        instance.dispose()


@pytest.mark.postgres
def test_postgres_yaml_is_the_instance_config(pg_instance: dg.DagsterInstance) -> None:
    """The file configures PostgreSQL run/event storage and the queued run coordinator, nothing on SQLite."""
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    assert isinstance(pg_instance.run_storage, PostgresRunStorage)
    assert isinstance(pg_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(pg_instance.run_coordinator, QueuedRunCoordinator)


@pytest.mark.postgres
def test_materialization_is_recorded_in_postgres(
    pg_instance: dg.DagsterInstance, pg_database: str, tmp_path: Path
) -> None:
    """Materializing raw_bars[SYNTH] stores the run, its success and the materialization in the database."""
    artifacts = tmp_path / "shared_artifacts"
    result = dg.materialize(
        [raw_bars],
        partition_key="SYNTH",
        instance=pg_instance,
        resources={"storage": ForexStorage(artifacts_dir=str(artifacts))},
    )
    assert result.success

    written = read_bars(raw_bars_path(artifacts, "SYNTH"))
    engine = create_engine(make_url(pg_database).set(drivername="postgresql+psycopg2"))
    try:
        with engine.connect() as connection:
            status = connection.execute(
                text("SELECT status FROM runs WHERE run_id = :run_id"), {"run_id": result.run_id}
            ).scalar_one()
            rows = connection.execute(
                text(
                    "SELECT asset_key, partition, event FROM event_logs "
                    "WHERE run_id = :run_id AND dagster_event_type = 'ASSET_MATERIALIZATION'"
                ),
                {"run_id": result.run_id},
            ).all()
    finally:
        engine.dispose()
    assert status == "SUCCESS"
    assert [(json.loads(key), partition) for key, partition, _ in rows] == [(["raw_bars"], "SYNTH")]
    assert str(len(written)) in rows[0].event  # the rows metadata matches the file actually written
    assert not (Path(pg_instance.root_directory) / "history").exists()  # no SQLite run storage beside it

    latest = pg_instance.get_latest_materialization_event(dg.AssetKey("raw_bars"))
    assert latest is not None and latest.run_id == result.run_id
    assert latest.asset_materialization.partition == "SYNTH"
    assert latest.asset_materialization.metadata["rows"].value == len(written)


@pytest.mark.postgres
def test_missing_pg_variable_is_named(pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without DAGSTER_PG_DB the instance refuses to load and says which variable is missing."""
    home = postgres_dagster_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name, value in pg_env(pg_database).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DAGSTER_PG_DB")
    with pytest.raises(Exception, match="DAGSTER_PG_DB"):
        dg.DagsterInstance.get()
