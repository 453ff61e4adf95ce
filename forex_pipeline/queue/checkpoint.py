"""Queue checkpoints as JSON: export a queue's grid, counts and the state of every configuration;
import one as a paused queue (completed work is found again by configuration hash).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Engine

from forex_pipeline.grid.expand import grid_hash, parse_grid_spec
from forex_pipeline.errors import InputError
from forex_pipeline.grid.expand import expand_grid
from forex_pipeline.grid.spec import GridSpec, GridSpecError
from forex_pipeline.keys import FINISHED_QUEUE_STATUSES, RunStatus
from forex_pipeline.queue.lifecycle import QUEUE_NAME_MAX, _queue, configurations_of, submit_grid
from forex_pipeline.store import training_queue, training_runs
from forex_pipeline.store.db import session_scope

CHECKPOINT_VERSION = 1
MAX_CHECKPOINT_BYTES = 50_000_000


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


class CheckpointError(InputError):
    """A checkpoint file is unreadable, malformed, edited or already imported; the message names the field."""


class _QueuePart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    name: str = Field(min_length=1, max_length=QUEUE_NAME_MAX)
    grid_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    grid_spec: dict[str, Any]


class _Checkpoint(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    version: int
    queue: _QueuePart
    configurations: list[dict[str, Any]] = []


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The JSON object of a checkpoint file: UTF-8, at most MAX_CHECKPOINT_BYTES, no NaN/Infinity."""
    path = Path(path)
    if path.is_dir() or not path.exists():
        raise CheckpointError(f"checkpoint {path}: {'is a directory' if path.is_dir() else 'does not exist'}")
    try:
        size = path.stat().st_size
        if size > MAX_CHECKPOINT_BYTES:
            raise CheckpointError(f"checkpoint {path}: {size:,} bytes, more than the {MAX_CHECKPOINT_BYTES:,} allowed")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"checkpoint {path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path}: cannot be read: {exc.strerror or exc}") from None

    def refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not a JSON number")

    try:
        data = json.loads(text, parse_constant=refuse_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint {path}: not valid JSON: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint {path}: must be a JSON object, got {type(data).__name__}")
    return data


def validate_checkpoint(data: Any, source: str = "checkpoint") -> tuple[GridSpec, str]:
    """(grid spec, queue name) of a checkpoint, every field checked before anything is written."""
    try:
        checkpoint = _Checkpoint.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:10])
        raise CheckpointError(f"{source}: {problems}") from None
    if checkpoint.version != CHECKPOINT_VERSION:
        raise CheckpointError(f"{source}: version {checkpoint.version} is not supported (expected {CHECKPOINT_VERSION})")
    try:
        grid = parse_grid_spec(checkpoint.queue.grid_spec, source=f"{source} queue.grid_spec")
    except GridSpecError as exc:
        raise CheckpointError(str(exc)) from None
    if grid_hash(expand_grid(grid)) != checkpoint.queue.grid_hash:
        raise CheckpointError(f"{source}: queue.grid_hash does not match queue.grid_spec (edited or corrupt file)")
    return grid, checkpoint.queue.name


def import_checkpoint(engine: Engine, data: Any, artifacts_dir: Path, *, source: str = "checkpoint") -> int:
    """Recreate a queue from an exported checkpoint as a paused queue; completed work is found by hash.

    Everything is validated first; a checkpoint whose grid and name already belong to an unfinished
    queue is refused (resume that queue instead), so importing twice never makes a second queue.
    """
    grid, name = validate_checkpoint(data, source)
    digest = grid_hash(expand_grid(grid))
    with session_scope(engine) as session:
        twins = [
            q for q in training_queue.list_queues(session)
            if q.grid_hash == digest and q.name == name and q.status not in FINISHED_QUEUE_STATUSES
        ]
    if twins:
        raise CheckpointError(f"{source}: already imported as queue {twins[0].id} ({twins[0].status}); continue it with `forex-pipeline queue resume {twins[0].id}`")
    return submit_grid(engine, grid, artifacts_dir, name=name, paused=True)
