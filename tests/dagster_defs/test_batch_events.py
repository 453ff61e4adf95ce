"""batch_events: a recorded configuration's materialization metadata links to its details in the explorer."""

from __future__ import annotations

from types import SimpleNamespace

import dagster as dg

from forex_pipeline.dagster_defs.batch_events import outcome_metadata


def test_outcome_metadata_links_to_the_explorer_details() -> None:
    outcome = SimpleNamespace(status="completed", model_config_hash="ab12" * 16, training_seconds=1.23456,
                              backtest_seconds=0.5, model_bytes=1000, kept=True, record=None)
    metadata = outcome_metadata(outcome, "SYNTH 1h 150d | ridge h1", "http://research.example:9000")
    assert metadata["explorer"] == dg.MetadataValue.url(f"http://research.example:9000/?tab=history&config={'ab12' * 16}")
    assert metadata["training_seconds"] == 1.235
