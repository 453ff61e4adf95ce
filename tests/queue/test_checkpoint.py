"""Checkpoint files without training: structure and checksum, version refusal, pruning, listing,
skipped_count, and the `settings check` / `queue checkpoints` commands."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forex_pipeline.cli import app
from forex_pipeline.queue import checkpoint, lifecycle
from forex_pipeline.settings import get_settings
from forex_pipeline.store import training_runs
from forex_pipeline.store.db import get_engine, session_scope
from tests.support import TINY_GRID

runner = CliRunner()
SPEC_FILE = Path(__file__).resolve().parents[2] / "examples" / "specification_training_pipeline.yaml"


def test_an_untrained_queue_exports_the_spec_structure_and_one_changed_byte_is_refused(grid_env: Path, tmp_path: Path) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir, priority=4, max_parallel=2)
    path = checkpoint.write_checkpoint_file(engine, queue_id, tmp_path, "manual")
    data = json.loads(path.read_text())
    assert data["current_index"] == 0 and data["total_configs"] == 6 and data["completed_runs"] == [] and data["regime_bests"] == {}
    assert data["queue"]["priority"] == 4 and data["queue"]["max_parallel"] == 2
    valid = checkpoint.validate_checkpoint(checkpoint.read_checkpoint(path))
    assert valid.total_configs == 6 and valid.priority == 4
    text = path.read_text()
    for old, new in (('"total_configs": 6', '"total_configs": 7'), ('"priority": 4', '"priority": 5')):
        edited = tmp_path / "edited.json"
        edited.write_text(text.replace(old, new))
        with pytest.raises(checkpoint.CheckpointError, match="sha256 does not match the content"):
            checkpoint.validate_checkpoint(checkpoint.read_checkpoint(edited))
    with pytest.raises(checkpoint.CheckpointError, match="version 1 is not supported"):
        checkpoint.validate_checkpoint({"version": 1, "queue": {}})


def test_old_checkpoints_are_pruned_and_the_listing_validates_each(grid_env: Path, tmp_path: Path) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    old = checkpoint.write_checkpoint_file(engine, queue_id, tmp_path, "auto")
    fresh = checkpoint.write_checkpoint_file(engine, queue_id, tmp_path, "paused")
    broken = tmp_path / "queue-9-broken.json"
    broken.write_text("{}")
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))
    listing = checkpoint.list_checkpoints(tmp_path)
    assert {item.path for item in listing} == {old, fresh, broken}
    assert [item.problem is None for item in listing if item.path != broken] == [True, True]
    assert "checkpoint_version" in next(item.problem for item in listing if item.path == broken)
    assert checkpoint.prune_checkpoints(tmp_path, max_age_days=30) == [old]
    assert fresh.exists() and not old.exists()


def test_skipped_count_counts_configurations_trained_by_another_queue(grid_env: Path) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    configurations = lifecycle.configurations_of(TINY_GRID | {"name": "tiny"})
    with session_scope(engine) as session:
        for configuration in configurations[:2]:
            run = training_runs.insert_training_run(session, training_runs.training_run_fields(configuration), status="completed")
            assert run.run_uuid and run.created_by
        lifecycle.recount(session, queue_id)
        queue = lifecycle._queue(session, queue_id)
    assert queue.completed_models == 2 and queue.skipped_count == 2


def test_settings_check_prints_each_key_and_refuses_a_typo(tmp_path: Path) -> None:
    result = runner.invoke(app, ["settings", "check", str(SPEC_FILE)], env={"COLUMNS": "200"})  # one table row per key, whatever the terminal
    assert result.exit_code == 0, result.output
    assert "recovery.stale_after_seconds" in result.output and "accepted, inert" in result.output
    assert "26 keys: 25 take effect, 1 accepted but inert" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("training_pipeline:\n  recovery: {auto_resume_on_crsh: true}\n")
    refused = runner.invoke(app, ["settings", "check", str(bad)])
    assert refused.exit_code == 2 and "auto_resume_on_crsh: not a key" in refused.output


def test_queue_checkpoints_lists_the_files_a_pause_leaves(grid_env: Path) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir, name="listed")
    assert runner.invoke(app, ["queue", "pause", str(queue_id)]).exit_code == 0  # a waiting queue pauses at once
    result = runner.invoke(app, ["queue", "checkpoints", str(queue_id)])
    assert result.exit_code == 0, result.output
    assert "listed" in result.output and "0/6" in result.output and "yes" in result.output
    (path,) = settings.checkpoints_dir.glob(f"queue-{queue_id}-*-paused.json")
    resumed = runner.invoke(app, ["queue", "resume", "--checkpoint", str(path), "--detach"])
    assert resumed.exit_code == 0, resumed.output
    assert f"continuing queue {queue_id}" in resumed.output
