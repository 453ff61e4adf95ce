"""A checkpoint in the specification's structure: written on pause, refused when one byte is changed,
and resuming from it ends where an uninterrupted run ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forex_pipeline.queue import checkpoint, lifecycle, worker
from forex_pipeline.settings import get_settings
from forex_pipeline.store import regime_best_models
from forex_pipeline.store.db import get_engine, session_scope
from tests.support import TINY_GRID, plain_batches, run_grid_in_process

pytestmark = pytest.mark.slow

GRID = {**TINY_GRID, "name": "spec-checkpoint", "model_specs": {**TINY_GRID["model_specs"], "horizons": [1, 3]}}  # 4 configurations
SPEC_KEYS = {"queue_uuid", "checkpoint_version", "created_at", "config_grid", "current_index", "total_configs",
             "completed_runs", "failed_runs", "regime_bests", "statistics"}


def _bests(engine) -> list[tuple]:  # noqa: ANN001
    with session_scope(engine) as session:
        frame = regime_best_models.current_bests(session)
    return sorted(zip(frame["regime"], frame["rank"], frame["partition_key"], frame["inference_config_hash"], frame["score"].round(12)))


def test_checkpoint_structure_tamper_refusal_and_resume_to_the_same_result(grid_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, GRID, settings.artifacts_dir)

    def two_then_pause(qid, batch):  # noqa: ANN001, ANN202
        result = worker.process_batch(engine, settings, qid, batch[:2], artifacts_dir=settings.artifacts_dir, sample_dir=None)
        lifecycle.pause(engine, qid)
        return result

    paused = worker.run_queue(engine, settings, queue_id, two_then_pause, artifacts_dir=settings.artifacts_dir)
    assert paused.status == "paused"
    (listing,) = [c for c in checkpoint.list_checkpoints(settings.checkpoints_dir) if c.path.name.endswith("-paused.json")]
    assert listing.problem is None and listing.current_index == 2 and listing.total_configs == 4
    data = json.loads(listing.path.read_text())
    assert SPEC_KEYS <= set(data) and data["checkpoint_version"] == checkpoint.CHECKPOINT_VERSION
    assert data["queue_uuid"] == paused.queue_uuid and data["config_grid"] == paused.grid_spec
    assert len(data["completed_runs"]) == 2 and data["failed_runs"] == []
    assert data["statistics"]["completed_count"] == 2 and data["statistics"]["skipped_count"] == 0
    assert data["regime_bests"] and all(b[0]["rank"] == 1 for b in data["regime_bests"].values())
    assert data["sha256"] == checkpoint.content_sha256(data)

    # one byte changed anywhere in the content: refused with a clear message, nothing imported
    raw = listing.path.read_bytes()
    at = raw.index(b'"current_index": 2') + len(b'"current_index": ')
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(raw[:at] + b"3" + raw[at + 1:])
    with pytest.raises(checkpoint.CheckpointError, match="sha256 does not match"):
        checkpoint.resume_from_checkpoint(engine, tampered, settings)

    lifecycle.cancel(engine, queue_id)  # the original queue is gone: the checkpoint alone carries the work on
    resumed_id = checkpoint.resume_from_checkpoint(engine, listing.path, settings)
    assert resumed_id != queue_id
    final = worker.run_queue(engine, settings, resumed_id, plain_batches(engine, settings), artifacts_dir=settings.artifacts_dir)
    assert final.status == "completed" and final.completed_models == 4 and final.skipped_count == 2
    interrupted_bests = _bests(engine)

    # the same grid, uninterrupted, in a fresh database and artefact store
    from forex_pipeline.store.db import upgrade

    fresh = tmp_path / "fresh"
    monkeypatch.setenv("FOREX_DATABASE_URL", f"sqlite:///{fresh / 'forex.db'}")
    monkeypatch.setenv("FOREX_ARTIFACTS_DIR", str(fresh / "artifacts"))
    fresh_settings = get_settings()
    upgrade(fresh_settings.database_url)
    other = get_engine(fresh_settings.database_url)
    _, whole = run_grid_in_process(other, fresh_settings, GRID)
    assert whole.status == "completed" and whole.completed_models == 4
    assert _bests(other) == interrupted_bests
