"""Shared fixtures: isolated storage per test, and the real FX files from ../shared/data/fx."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def fx_data_dir() -> Path:
    """FOREX_SAMPLE_DATA, else ../shared/data/fx beside the repository."""
    return Path(os.environ.get("FOREX_SAMPLE_DATA") or REPO_ROOT.parent / "shared" / "data" / "fx")


@pytest.fixture(scope="session")
def fx_dir() -> Path:
    path = fx_data_dir()
    if not path.is_dir():
        pytest.fail(f"real FX data not found at {path}; set FOREX_SAMPLE_DATA")
    return path


@pytest.fixture()
def isolated_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DAGSTER_HOME, the project database and the artifacts all inside tmp_path."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FOREX_DATABASE_URL", f"sqlite:///{home / 'forex_pipeline.db'}")
    monkeypatch.setenv("FOREX_ARTIFACTS_DIR", str(home / "artifacts"))
    return home


@pytest.fixture()
def grid_env(isolated_storage: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated storage, test settings via FOREX_SETTINGS, and the project tables created."""
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store.db import dispose_engines, upgrade
    from tests.support import write_test_settings

    settings_file = write_test_settings(isolated_storage / "settings.yaml")
    monkeypatch.setenv("FOREX_SETTINGS", str(settings_file))
    upgrade(get_settings().database_url)
    yield isolated_storage
    dispose_engines()
