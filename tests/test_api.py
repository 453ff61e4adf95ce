"""forex_pipeline.api: the specification's names over the functions the CLI calls (no training here;
tests/integration/test_spec_checkpoint.py and examples/api_example.py run a grid end to end)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forex_pipeline import api
from forex_pipeline.grid.spec import GridSpecError
from forex_pipeline.queue.checkpoint import CheckpointError
from tests.support import TINY_GRID


def test_grid_hash_existence_queue_and_checkpoint(grid_env: Path, tmp_path: Path) -> None:
    grid = api.generate_config_grid(TINY_GRID)
    assert len(grid) == 6 and len(set(grid.config_hashes)) == 6
    first = grid.configurations[0]
    assert api.compute_config_hash({"feature_set": first.feature_set_hash, "model_spec": first.model_spec_hash}) == grid.config_hashes[0]
    assert api.compute_config_hash(first.feature_set) == first.feature_set_hash
    assert not any(api.config_exists_in_db(h) for h in grid.config_hashes)
    with pytest.raises(GridSpecError, match="days_history"):
        api.generate_config_grid({**TINY_GRID, "feature_sets": {**TINY_GRID["feature_sets"], "days_history": [0]}})

    queue_id = api.submit_queue(grid, name="from-api", priority=7, max_parallel=3)
    queue = api.queue_status(queue_id)
    assert (queue.name, queue.priority, queue.max_parallel, queue.total_models) == ("from-api", 7, 3, 6)
    assert api.pause_queue(queue_id).status == "paused"

    path = api.save_checkpoint(queue_id, tmp_path / "cp.json")
    assert json.loads(path.read_text())["queue_uuid"] == queue.queue_uuid
    listed = api.list_checkpoints(queue_id)
    assert listed and all(item.problem is None for item in listed)  # the pause left one too
    bad = tmp_path / "bad.json"
    bad.write_text(path.read_text().replace('"from-api"', '"from-apj"'))
    with pytest.raises(CheckpointError, match="sha256"):
        api.resume_from_checkpoint(bad)
    assert api.resume_from_checkpoint(path) == queue_id
    assert api.training_history().empty and api.evaluate_regime_improvements().empty


def test_classify_regime_labels_every_bar_with_a_scored_regime(grid_env: Path) -> None:
    from forex_pipeline.data.resample import resample_bars
    from forex_pipeline.data.synthetic import generate_synthetic_bars

    bars = resample_bars(generate_synthetic_bars(60, seed=3).bars, "1h")
    labels = api.classify_regime(bars, timeframe="1h", train_end=len(bars) // 2)
    assert len(labels) == len(bars) and labels.index.equals(bars.index)
    assert set(labels.unique()) <= {"bull_trending", "bear_trending", "volatile_ranging", "calm_ranging", "unclassified"}
    assert labels.iloc[len(bars) // 2 :].nunique() >= 2
