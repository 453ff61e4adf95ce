"""Dagster resources: where the project's settings, database and artifacts live for a run."""


import os
from pathlib import Path

import dagster as dg

from forex_pipeline.settings import Settings, get_settings


class ForexStorage(dg.ConfigurableResource):
    """Settings and storage locations; empty fields fall back to the environment and settings file."""

    database_url: str = ""
    artifacts_dir: str = ""
    sample_data_dir: str = ""

    @property
    def settings(self) -> Settings:
        return get_settings()

    @property
    def db_url(self) -> str:
        return self.database_url or self.settings.database_url

    @property
    def artifacts(self) -> Path:
        return Path(self.artifacts_dir).resolve() if self.artifacts_dir else self.settings.artifacts_dir

    @property
    def sample_dir(self) -> Path | None:
        """FOREX_SAMPLE_DATA (or the configured folder) holding real bar files, if any."""
        path = self.sample_data_dir or os.environ.get("FOREX_SAMPLE_DATA", "")
        return Path(path) if path else None
