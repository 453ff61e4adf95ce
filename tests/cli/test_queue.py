"""`forex-pipeline grid submit` and `queue ...` through the CLI, on an isolated storage."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from forex_pipeline.cli import app
from tests.support import TINY_GRID

runner = CliRunner()


@pytest.mark.slow
def test_submit_run_status_export_import(grid_env, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({**TINY_GRID, "model_specs": {**TINY_GRID["model_specs"], "horizons": [1]}}))
    submitted = runner.invoke(app, ["grid", "submit", str(grid), "--no-run"])
    assert submitted.exit_code == 0, submitted.output
    queue_id = submitted.output.split("queue_id=")[1].split()[0]

    listed = runner.invoke(app, ["queue", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "tiny" in listed.output and "pending" in listed.output

    ran = runner.invoke(app, ["queue", "run", queue_id])
    assert ran.exit_code == 0, ran.output
    status = json.loads(runner.invoke(app, ["queue", "status", queue_id]).output)
    assert status["status"] == "completed" and status["completed"] == 2 and status["total"] == 2

    exported = tmp_path / "checkpoint.json"
    assert runner.invoke(app, ["queue", "export", queue_id, "-o", str(exported)]).exit_code == 0
    checkpoint = json.loads(exported.read_text())
    assert len(checkpoint["completed_runs"]) == 2 and checkpoint["failed_runs"] == [] and checkpoint["current_index"] == 2
    imported = runner.invoke(app, ["queue", "import", str(exported)])
    assert imported.exit_code == 0, imported.output

    refused = runner.invoke(app, ["queue", "pause", queue_id])
    assert refused.exit_code == 1
    missing = runner.invoke(app, ["queue", "status", "999"])
    assert missing.exit_code == 2  # an id that names no queue is bad input


def test_invalid_grid_lists_every_problem_and_queues_nothing(grid_env, tmp_path):
    bad = {**TINY_GRID, "feature_sets": {**TINY_GRID["feature_sets"], "days_history": [0]}}
    bad["model_specs"] = {**TINY_GRID["model_specs"], "model_types": ["ridge", "xgboost"]}
    grid = tmp_path / "bad.yaml"
    grid.write_text(yaml.safe_dump(bad))
    result = runner.invoke(app, ["grid", "submit", str(grid)])
    assert result.exit_code == 2
    assert "days_history" in result.output and "xgboost" in result.output
    listed = runner.invoke(app, ["queue", "list"], env={"COLUMNS": "200"})
    assert "tiny" not in listed.output


def test_submit_expands_its_grid_once(grid_env, tmp_path, monkeypatch):
    """Validation, the grid hash, spec files, the queue row and its first count share one expansion."""
    from forex_pipeline.grid import expand
    from forex_pipeline.queue import lifecycle
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store import training_queue
    from forex_pipeline.store.db import get_engine, session_scope

    calls = []
    real = expand.expand_grid

    def counted(spec):
        calls.append(spec.name)
        return real(spec)

    monkeypatch.setattr(expand, "expand_grid", counted)
    monkeypatch.setattr(lifecycle, "_expanded", type(lifecycle._expanded)())
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump(TINY_GRID))
    submitted = runner.invoke(app, ["grid", "submit", str(grid), "--no-run"])
    assert submitted.exit_code == 0, submitted.output
    assert calls == [TINY_GRID["name"]]
    queue_id = int(submitted.output.split("queue_id=")[1].split()[0])
    with session_scope(get_engine(get_settings().database_url)) as session:
        queue = training_queue.get_queue(session, queue_id)
    expected = real(expand.parse_grid_spec(TINY_GRID))
    assert (queue.total_models, queue.grid_hash) == (expected.size, expand.grid_hash(expected))
    assert [c.model_config_hash for c in lifecycle.configurations_of(queue.grid_spec)] == [c.model_config_hash for c in expected.configurations]
    assert calls == [TINY_GRID["name"]]   # the queue's own grid spec reads back from the same expansion


def test_register_partitions_brings_every_queue_into_the_instance(grid_env, tmp_path):
    """An instance of the former scheme: queues exist, no `model_config` partitions, old `model_spec` ones."""
    import dagster as dg

    from forex_pipeline.keys import MODEL_CONFIG_PARTITIONS
    from forex_pipeline.queue.lifecycle import configurations_of

    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump(TINY_GRID))
    assert runner.invoke(app, ["grid", "submit", str(grid), "--no-run"]).exit_code == 0
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("model_spec", ["ridge-none-h1-00000000"])
    first = runner.invoke(app, ["queue", "register-partitions"], env={"COLUMNS": "200"})  # one line, whatever the terminal
    again = runner.invoke(app, ["queue", "register-partitions"], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "6 configuration partition(s) added; 1 former model_spec partition(s) dropped" in first.output
    assert "0 configuration partition(s) added; 0 former" in again.output
    with dg.DagsterInstance.get() as instance:
        keys = instance.get_dynamic_partitions(MODEL_CONFIG_PARTITIONS)
    assert keys == [c.partition_key for c in configurations_of(TINY_GRID)]
