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
