"""settings: the explorer section (where Dagster's links point)."""

from __future__ import annotations

import pytest

from forex_pipeline.settings import SettingsError, parse_settings


def test_explorer_url_is_an_http_url_without_trailing_slash() -> None:
    assert parse_settings({}).explorer.url == "http://127.0.0.1:8050"
    assert parse_settings({"explorer": {"url": "https://research.example:9000/"}}).explorer.url == "https://research.example:9000"
    with pytest.raises(SettingsError, match="explorer.url"):
        parse_settings({"explorer": {"url": "127.0.0.1:8050"}})
