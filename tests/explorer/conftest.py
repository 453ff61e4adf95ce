"""An ExplorerContext over a fresh project database (tables created, built-in regimes seeded)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def context(grid_env: Path):
    from forex_pipeline.explorer.common import ExplorerContext
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store.db import session_scope
    from forex_pipeline.store.regime_definitions import seed_regime_definitions

    settings = get_settings()
    explorer = ExplorerContext(database_url=settings.database_url, artifacts_dir=settings.artifacts_dir, settings=settings)
    with session_scope(explorer.engine) as session:
        seed_regime_definitions(session, settings)
    yield explorer
    explorer.engine.dispose()
