"""Live progress of a batch (the model in flight, "inference k of 135", throttled so a fast model costs no
event) and a recorded configuration's metadata, which links to its details in the explorer."""

from __future__ import annotations

from types import SimpleNamespace

import dagster as dg
import pytest

from forex_pipeline.dagster_defs import batch_events
from forex_pipeline.dagster_defs.batch_events import PROGRESS_ASSET, BatchReporter, outcome_metadata

FIGURES = {"id": 7, "name": "grid", "status": "running", "summary": "running 3/10", "total": 10, "completed": 2, "failed": 1,
           "kept": 2, "deleted": 0, "elapsed_seconds": 30.0, "remaining_seconds": 70.0}
CONFIGURATION = SimpleNamespace(label="SYNTH 1h 150d | ridge h1 alpha=1.0", partition_key="SYNTH-1h-d150-0000abcd|ridge-none-h1-1111abcd")


def _progress_observations(throttle_seconds: float, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Run one op that starts a model and reports its inference blocks; the progress observations, oldest first."""
    monkeypatch.setattr(batch_events, "PROGRESS_EVERY_SECONDS", throttle_seconds)

    @dg.op
    def reporting(context) -> None:  # noqa: ANN001 - dagster reads the annotation, which `annotations` turns into text
        reporter = BatchReporter(context, queue_id=7, batch_size=2, explorer_url="http://127.0.0.1:8050")
        reporter.started_model(0, CONFIGURATION, FIGURES)
        for done in (45, 90, 135):
            reporter.working("inference", done, 135)
        reporter.working("recording")

    with dg.instance_for_test() as instance:
        assert dg.GraphDefinition("progress", node_defs=[reporting]).to_job().execute_in_process(instance=instance).success
        records = instance.fetch_observations(dg.AssetKey(PROGRESS_ASSET), limit=100).records
        return [{k: v.value for k, v in r.asset_observation.metadata.items()} for r in reversed(records)]


def test_a_fast_model_costs_one_progress_event(monkeypatch: pytest.MonkeyPatch) -> None:
    observed = _progress_observations(3600.0, monkeypatch)
    assert len(observed) == 1  # the start; every later stage came within the throttle interval
    start = observed[0]
    assert start["model"] == "4 of 10" and start["in_flight"] == CONFIGURATION.label and start["stage"] == "starting"
    assert start["inference"] == "-" and start["eta_seconds"] == 70.0


def test_a_slow_model_shows_inference_k_of_135(monkeypatch: pytest.MonkeyPatch) -> None:
    observed = _progress_observations(0.0, monkeypatch)
    assert [(o["stage"], o["inference"]) for o in observed] == [
        ("starting", "-"), ("inference", "45 of 135"), ("inference", "90 of 135"), ("inference", "135 of 135"), ("recording", "-"),
    ]
    assert all(o["in_flight_partition"] == CONFIGURATION.partition_key for o in observed)
    assert observed[-1]["elapsed_seconds"] >= observed[0]["elapsed_seconds"] >= 30.0  # elapsed goes on within the model



def test_outcome_metadata_links_to_the_explorer_details() -> None:
    outcome = SimpleNamespace(status="completed", model_config_hash="ab12" * 16, training_seconds=1.23456,
                              backtest_seconds=0.5, model_bytes=1000, kept=True, record=None)
    configuration = SimpleNamespace(label="SYNTH 1h 150d | ridge h1", feature_set_key="SYNTH-1h-d150-0000abcd",
                                    model_spec_key="ridge-none-h1-1111abcd", model_spec=SimpleNamespace(hyperparameters={"alpha": 1.0}))
    metadata = outcome_metadata(outcome, configuration, "http://research.example:9000")
    assert metadata["explorer"] == dg.MetadataValue.url(f"http://research.example:9000/?tab=history&config={'ab12' * 16}")
    assert metadata["training_seconds"] == 1.235
