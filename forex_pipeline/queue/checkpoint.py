"""Queue checkpoints as JSON: export a queue's grid, counts and the state of every configuration;
import one as a paused queue (completed work is found again by configuration hash).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from forex_pipeline.grid.expand import grid_hash, parse_grid_spec
from forex_pipeline.keys import QueueStatus, RunStatus
from forex_pipeline.queue.lifecycle import QueueError, _queue, configurations_of, submit_grid
from forex_pipeline.store import training_queue, training_runs
from forex_pipeline.store.db import session_scope

CHECKPOINT_VERSION = 1


def export_checkpoint(engine: Engine, queue_id: int) -> dict[str, Any]:
    """The queue as JSON: grid, status, counts, and the state of every configuration."""
    with session_scope(engine) as session:
        queue = _queue(session, queue_id)
        configurations = configurations_of(queue.grid_spec)
        done = training_runs.find_completed_hashes(session, [c.model_config_hash for c in configurations])
        failed = {r.model_config_hash: r.error_message for r in training_runs.runs_of_queue(session, queue_id) if r.status == RunStatus.FAILED}
    return {
        "version": CHECKPOINT_VERSION,
        "exported_at": datetime.now(timezone.utc).isoformat(),
        "queue": {
            "id": queue.id,
            "name": queue.name,
            "status": queue.status,
            "grid_hash": queue.grid_hash,
            "grid_spec": queue.grid_spec,
            "total_models": queue.total_models,
            "completed_models": queue.completed_models,
            "failed_models": queue.failed_models,
            "kept_models": queue.kept_models,
            "deleted_models": queue.deleted_models,
            "created_at": queue.created_at.isoformat(),
        },
        "configurations": [
            {
                "partition_key": c.partition_key,
                "model_config_hash": c.model_config_hash,
                "state": RunStatus.COMPLETED if c.model_config_hash in done else RunStatus.FAILED if c.model_config_hash in failed else RunStatus.PENDING,
                **({"error": failed[c.model_config_hash]} if c.model_config_hash in failed else {}),
            }
            for c in configurations
        ],
    }


def import_checkpoint(engine: Engine, data: dict[str, Any], artifacts_dir: Path) -> int:
    """Recreate a queue from an exported checkpoint as a paused queue; completed work is found by hash."""
    if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
        raise QueueError(f"checkpoint: unsupported or missing version (expected {CHECKPOINT_VERSION})")
    try:
        queue_part = data["queue"]
        grid = parse_grid_spec(queue_part["grid_spec"])
    except KeyError as exc:
        raise QueueError(f"checkpoint: missing field {exc.args[0]!r}") from exc
    if grid_hash(grid) != queue_part.get("grid_hash"):
        raise QueueError("checkpoint: queue.grid_hash does not match queue.grid_spec (edited or corrupt file)")
    queue_id = submit_grid(engine, grid, artifacts_dir, name=queue_part.get("name"))
    with session_scope(engine) as session:
        training_queue.set_queue_status(session, queue_id, QueueStatus.PAUSED)
    return queue_id
