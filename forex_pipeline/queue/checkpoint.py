"""Queue checkpoints as JSON, in the specification's structure plus a sha256 of the content.

A checkpoint holds queue_uuid, checkpoint_version, created_at, config_grid, current_index,
total_configs, completed_runs, failed_runs, regime_bests and statistics (the specification's keys),
the queue's name, grid hash, priority and max_parallel (what an import needs), and `sha256`: the
sha256 of the canonical JSON of everything else, so one changed byte is refused as tampered.
Checkpoints are written on demand (`queue export`), every `recovery.checkpoint_every_models` models
and when a queue pauses or is cancelled (to `storage.checkpoints_dir`, pruned after
`storage.max_checkpoint_age_days`); `queue checkpoints` lists them, `queue resume --checkpoint FILE`
and `queue import` validate and use one. Completed work is always found again by configuration hash.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Engine

from forex_pipeline.errors import InputError
from forex_pipeline.grid.expand import expand_grid, grid_hash, parse_grid_spec
from forex_pipeline.grid.spec import GridSpec, GridSpecError
from forex_pipeline.hashing import canonical_json, config_hash
from forex_pipeline.io import atomic_write_text
from forex_pipeline.keys import FINISHED_QUEUE_STATUSES, QueueStatus, RunStatus
from forex_pipeline.queue.lifecycle import QUEUE_NAME_MAX, _queue, configurations_of, submit_grid
from forex_pipeline.settings import Settings
from forex_pipeline.store import regime_best_models, training_queue, training_runs
from forex_pipeline.store.db import session_scope

CHECKPOINT_VERSION = 2
MAX_CHECKPOINT_BYTES = 50_000_000
CHECKSUM_KEY = "sha256"


def content_sha256(data: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a checkpoint without its own checksum."""
    return config_hash({k: v for k, v in data.items() if k != CHECKSUM_KEY})


def export_checkpoint(engine: Engine, queue_id: int) -> dict[str, Any]:
    """The queue as a checkpoint: the specification's keys, the queue's identity and the checksum."""
    with session_scope(engine) as session:
        queue = _queue(session, queue_id)
        configurations = configurations_of(queue.grid_spec)
        done = training_runs.find_completed_hashes(session, [c.model_config_hash for c in configurations])
        failed = {r.model_config_hash: r.error_message for r in training_runs.runs_of_queue(session, queue_id) if r.status == RunStatus.FAILED}
        bests = regime_best_models.current_bests(session)
    regime_bests: dict[str, list[dict[str, Any]]] = {}
    for row in bests.sort_values(["regime", "rank"]).to_dict("records") if len(bests) else []:
        regime_bests.setdefault(str(row["regime"]), []).append({
            "rank": int(row["rank"]), "config_hash": str(row["model_config_hash"]), "partition_key": str(row["partition_key"]),
            "inference_config_hash": str(row["inference_config_hash"]), "performance_score": float(row["score"]),
        })
    elapsed = ((queue.finished_at or datetime.now(timezone.utc)) - (queue.started_at or queue.created_at)).total_seconds()
    data: dict[str, Any] = {
        "queue_uuid": queue.queue_uuid,
        "checkpoint_version": CHECKPOINT_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "config_grid": queue.grid_spec,
        "current_index": queue.completed_models + queue.failed_models,
        "total_configs": queue.total_models,
        "completed_runs": [
            {"config_hash": c.model_config_hash, "partition_key": c.partition_key} for c in configurations if c.model_config_hash in done
        ],
        "failed_runs": [
            {"config_hash": c.model_config_hash, "partition_key": c.partition_key, "error": failed[c.model_config_hash]}
            for c in configurations if c.model_config_hash in failed and c.model_config_hash not in done
        ],
        "regime_bests": regime_bests,
        "statistics": {
            "completed_count": queue.completed_models - queue.skipped_count, "failed_count": queue.failed_models,
            "skipped_count": queue.skipped_count, "kept_models": queue.kept_models, "deleted_models": queue.deleted_models,
            "elapsed_seconds": round(max(elapsed, 0.0), 1),
        },
        "queue": {
            "id": queue.id, "name": queue.name, "status": queue.status, "grid_hash": queue.grid_hash,
            "priority": queue.priority, "max_parallel": queue.max_parallel,
        },
    }
    data[CHECKSUM_KEY] = content_sha256(json.loads(canonical_json(data)))
    return data


class CheckpointError(InputError):
    """A checkpoint file is unreadable, malformed, edited or already imported; the message names the field."""


class _QueuePart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    name: str = Field(min_length=1, max_length=QUEUE_NAME_MAX)
    grid_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    priority: int = 0
    max_parallel: int = Field(1, ge=1)


class _Checkpoint(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    queue_uuid: str | None = Field(None, max_length=36)
    checkpoint_version: int
    created_at: str
    config_grid: dict[str, Any]
    current_index: int = Field(ge=0)
    total_configs: int = Field(ge=0)
    completed_runs: list[dict[str, Any]]
    failed_runs: list[dict[str, Any]]
    regime_bests: dict[str, Any]
    statistics: dict[str, Any]
    queue: _QueuePart
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


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


@dataclass(frozen=True)
class ValidCheckpoint:
    """A checkpoint that passed every check: its grid, its queue's identity and its figures."""

    grid: GridSpec
    name: str
    queue_uuid: str | None
    priority: int
    max_parallel: int
    current_index: int
    total_configs: int
    created_at: str


def validate_checkpoint(data: Any, source: str = "checkpoint") -> ValidCheckpoint:
    """A checkpoint's content, every field checked before anything is written: version, structure,
    the sha256 of the content (a changed byte is refused as tampered) and the grid against its hash."""
    if isinstance(data, dict) and "checkpoint_version" not in data and "version" in data:
        raise CheckpointError(f"{source}: version {data['version']!r} is not supported (expected checkpoint_version {CHECKPOINT_VERSION}); export the queue again")
    try:
        checkpoint = _Checkpoint.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:10])
        raise CheckpointError(f"{source}: {problems}") from None
    if checkpoint.checkpoint_version != CHECKPOINT_VERSION:
        raise CheckpointError(f"{source}: checkpoint_version {checkpoint.checkpoint_version} is not supported (expected {CHECKPOINT_VERSION})")
    if content_sha256(data) != checkpoint.sha256:
        raise CheckpointError(f"{source}: sha256 does not match the content: the file was edited or corrupted after it was written; refused")
    try:
        grid = parse_grid_spec(checkpoint.config_grid, source=f"{source} config_grid")
    except GridSpecError as exc:
        raise CheckpointError(str(exc)) from None
    expanded = expand_grid(grid)
    if grid_hash(expanded) != checkpoint.queue.grid_hash:
        raise CheckpointError(f"{source}: queue.grid_hash does not match config_grid (edited or corrupt file)")
    if len(expanded.configurations) != checkpoint.total_configs:
        raise CheckpointError(f"{source}: total_configs {checkpoint.total_configs} but config_grid has {len(expanded.configurations)}")
    return ValidCheckpoint(
        grid, checkpoint.queue.name, checkpoint.queue_uuid, checkpoint.queue.priority, checkpoint.queue.max_parallel,
        checkpoint.current_index, checkpoint.total_configs, checkpoint.created_at,
    )


def import_checkpoint(engine: Engine, data: Any, artifacts_dir: Path, *, source: str = "checkpoint") -> int:
    """Recreate a queue from an exported checkpoint as a paused queue; completed work is found by hash.

    Everything is validated first; a checkpoint whose grid and name already belong to an unfinished
    queue is refused (resume that queue instead), so importing twice never makes a second queue.
    """
    valid = validate_checkpoint(data, source)
    grid, name = valid.grid, valid.name
    digest = grid_hash(expand_grid(grid))
    with session_scope(engine) as session:
        twins = [
            q for q in training_queue.list_queues(session)
            if q.grid_hash == digest and q.name == name and q.status not in FINISHED_QUEUE_STATUSES
        ]
    if twins:
        raise CheckpointError(f"{source}: already imported as queue {twins[0].id} ({twins[0].status}); continue it with `forex-pipeline queue resume {twins[0].id}`")
    return submit_grid(engine, grid, artifacts_dir, name=name, paused=True, priority=valid.priority, max_parallel=valid.max_parallel)


# ---------------------------------------------------------------- checkpoint files


def write_checkpoint_file(engine: Engine, queue_id: int, directory: Path, reason: str) -> Path:
    """Export the queue into `directory` as queue-<id>-<UTC time>-<reason>.json (atomically); returns the path."""
    data = export_checkpoint(engine, queue_id)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = Path(directory) / f"queue-{queue_id}-{stamp}-{reason}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2))
    return path


def prune_checkpoints(directory: Path, max_age_days: float, *, now: float | None = None) -> list[Path]:
    """Delete checkpoint files (queue-*.json) older than `max_age_days`; returns what was deleted."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - max_age_days * 86400
    removed = []
    for path in sorted(directory.glob("queue-*.json")):
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def auto_checkpoint(engine: Engine, settings: Settings, queue_id: int, reason: str) -> Path | None:
    """Write an automatic checkpoint and prune old ones; a failure to write never stops the queue
    (the database stays the source of truth), so it returns None then."""
    try:
        path = write_checkpoint_file(engine, queue_id, settings.checkpoints_dir, reason)
        prune_checkpoints(settings.checkpoints_dir, settings.storage.max_checkpoint_age_days)
    except OSError:
        return None
    return path


def checkpoint_if_stopped(engine: Engine, settings: Settings, queue: training_queue.QueueRecord) -> training_queue.QueueRecord:
    """A queue that just paused or was cancelled leaves a checkpoint file (storage.checkpoints_dir);
    the worker, the daemon's sensor, the CLI and the API call this when they stop a queue."""
    if queue.status in (QueueStatus.PAUSED, QueueStatus.CANCELLED):
        auto_checkpoint(engine, settings, queue.id, str(queue.status))
    return queue


@dataclass(frozen=True)
class CheckpointListing:
    """One checkpoint file as `queue checkpoints` shows it."""

    path: Path
    queue_uuid: str | None
    name: str
    created_at: str
    current_index: int
    total_configs: int
    problem: str | None       # None when the file validates (version, checksum, grid)


def list_checkpoints(directory: Path, queue_uuid: str | None = None) -> list[CheckpointListing]:
    """The checkpoint files in `directory`, newest first, each validated (a bad one says why)."""
    directory = Path(directory)
    listings = []
    for path in sorted(directory.glob("queue-*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if directory.is_dir() else []:
        try:
            valid = validate_checkpoint(read_checkpoint(path), f"checkpoint {path}")
        except CheckpointError as exc:
            listings.append(CheckpointListing(path, None, "?", "?", 0, 0, str(exc)))
            continue
        if queue_uuid is None or valid.queue_uuid == queue_uuid:
            listings.append(CheckpointListing(path, valid.queue_uuid, valid.name, valid.created_at, valid.current_index, valid.total_configs, None))
    return listings


def resume_from_checkpoint(engine: Engine, path: Path, settings: Settings) -> int:
    """The queue to continue from a checkpoint file, made runnable: the queue with the checkpoint's
    queue_uuid if it is still open (resumed), else a new paused queue imported from it. Completed work
    is found by configuration hash, so what the checkpoint (or anything later) finished is not redone."""
    from forex_pipeline.queue.lifecycle import resume

    data = read_checkpoint(path)
    valid = validate_checkpoint(data, f"checkpoint {path}")
    digest = grid_hash(expand_grid(valid.grid))
    with session_scope(engine) as session:
        open_queues = [q for q in training_queue.list_queues(session) if q.status not in FINISHED_QUEUE_STATUSES]
    same = [q for q in open_queues if valid.queue_uuid is not None and q.queue_uuid == valid.queue_uuid]
    twins = [q for q in open_queues if q.grid_hash == digest and q.name == valid.name]
    if same or twins:
        queue_id = (same or twins)[0].id
    else:
        queue_id = import_checkpoint(engine, data, settings.artifacts_dir, source=f"checkpoint {path}")
    resume(engine, queue_id, settings)
    return queue_id
