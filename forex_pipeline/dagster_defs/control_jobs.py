"""Queue control from the launchpad: plan, submit, pause, resume, cancel, retry failed, export, import.

Each is a small job with typed config that calls `forex_pipeline.queue.lifecycle` (or `grid`), the
same functions as the CLI. `plan_grid` and `submit_grid_job` take a grid in the YAML schema at the
root of the run config (`GridConfig`); their config mapping validates it with `forex_pipeline.grid`,
so a bad grid fails the launch itself and no run is created. An expected refusal (a finished queue
cannot be paused) fails the run with one line, not a traceback.
"""


import json
from pathlib import Path
from typing import Any

import dagster as dg

from forex_pipeline.dagster_defs.partitions import register_partitions
from forex_pipeline.dagster_defs.launch_config import GridConfig, checked_grid
from forex_pipeline.dagster_defs.resources import ForexStorage
from forex_pipeline.dagster_defs.tags import KIND_TAG

CONTROL_KIND = "queue_control"


class ValidatedGrid(dg.Config):
    """The op-level config a grid job's mapping produces: the grid spec dict, already validated."""

    grid: dict[str, Any]


class QueueId(dg.Config):
    """Which queue to act on (`forex-pipeline queue list` or the run tags of its batches show the id)."""

    queue_id: int


def _grid_mapping(op_name: str) -> dg.ConfigMapping:
    """A config mapping from a launchpad `GridConfig` to `op_name`'s validated grid (InvalidGrid fails the launch)."""

    @dg.config_mapping
    def grid_to_op(config: GridConfig) -> dict[str, Any]:
        return {"ops": {op_name: {"config": {"grid": checked_grid(config)}}}}

    return grid_to_op


def _queue_failure(action: str, queue_id: int, exc: Exception) -> dg.Failure:
    return dg.Failure(description=f"{action} queue {queue_id}: {exc}")


def _engine(storage: ForexStorage):  # noqa: ANN202 - sqlalchemy Engine
    from forex_pipeline.store.db import get_engine, upgrade

    upgrade(storage.db_url)
    return get_engine(storage.db_url)


# ---------------------------------------------------------------- plan and submit


def plan_metadata(grid: dict[str, Any], storage: ForexStorage) -> dict[str, dg.MetadataValue]:
    """Size, already trained and the time estimate of a grid, as `grid plan` shows them."""
    from forex_pipeline.grid.estimate import plan
    from forex_pipeline.grid.expand import expand_grid, parse_grid_spec
    from forex_pipeline.store.db import session_scope

    expanded = expand_grid(parse_grid_spec(grid, source="launchpad config"))
    with session_scope(_engine(storage)) as session:
        grid_plan = plan(expanded, session, probe=True)
    runs = storage.settings.queue.max_concurrent_runs
    return {
        "model_configurations": dg.MetadataValue.int(grid_plan.size),
        "feature_sets": dg.MetadataValue.int(grid_plan.n_feature_sets),
        "model_specs": dg.MetadataValue.int(grid_plan.n_model_specs),
        "already_trained": dg.MetadataValue.int(grid_plan.already_trained),
        "to_train": dg.MetadataValue.int(grid_plan.to_train),
        "estimated_seconds_one_run": dg.MetadataValue.float(round(grid_plan.estimated_seconds, 1)),
        f"estimated_seconds_{runs}_runs": dg.MetadataValue.float(round(grid_plan.estimated_seconds / runs, 1)),
        "grid_hash": dg.MetadataValue.text(grid_plan.grid_hash[:12]),
        "estimate_source": dg.MetadataValue.text(grid_plan.calibration.describe()),
    }


@dg.op(description="Size and time estimate of a grid, from this machine's past run times; trains nothing.")
def plan_grid_op(context: dg.OpExecutionContext, config: ValidatedGrid, storage: ForexStorage) -> dict:
    metadata = plan_metadata(config.grid, storage)
    context.add_output_metadata(metadata)
    summary = {name: value.value for name, value in metadata.items()}
    context.log.info(f"grid {config.grid['name']}: {json.dumps(summary)}")
    return summary


@dg.job(config=_grid_mapping("plan_grid_op"), tags={KIND_TAG: CONTROL_KIND}, description="Plan a grid (same schema as a grid YAML file): size and time estimate.")
def plan_grid():
    plan_grid_op()


@dg.op(description="Queue a validated grid, register its partitions, hand it to the queue sensor.")
def submit_grid_op(context: dg.OpExecutionContext, config: ValidatedGrid, storage: ForexStorage) -> int:
    from forex_pipeline.queue.lifecycle import configurations_of, hand_to_daemon, submit_grid

    engine = _engine(storage)
    metadata = plan_metadata(config.grid, storage)
    queue_id = submit_grid(engine, config.grid, storage.artifacts)
    register_partitions(context.instance, configurations_of(config.grid))
    hand_to_daemon(engine, queue_id)
    context.add_output_metadata({"queue_id": dg.MetadataValue.int(queue_id), **metadata})
    context.log.info(f"queue {queue_id} ({metadata['model_configurations'].value} configurations) handed to training_queue_sensor")
    return queue_id


@dg.job(config=_grid_mapping("submit_grid_op"), tags={KIND_TAG: CONTROL_KIND}, description="Submit a grid (same schema as a grid YAML file); the queue sensor runs it.")
def submit_grid_job():
    submit_grid_op()


# ---------------------------------------------------------------- pause, resume, cancel, retry


@dg.op(description="Finish the models in flight, then stop (the queue reads paused).")
def pause_queue_op(context: dg.OpExecutionContext, config: QueueId, storage: ForexStorage) -> str:
    from forex_pipeline.queue.lifecycle import QueueError, pause

    try:
        record = pause(_engine(storage), config.queue_id)
    except (QueueError, LookupError) as exc:
        raise _queue_failure("pause", config.queue_id, exc) from exc
    context.log.info(f"queue {config.queue_id}: {'pause requested' if record.pause_requested else record.status}")
    return str(record.status)


@dg.op(description="Continue a paused, interrupted or failed queue with what is missing (the queue sensor runs it).")
def resume_queue_op(context: dg.OpExecutionContext, config: QueueId, storage: ForexStorage) -> str:
    from forex_pipeline.queue.lifecycle import QueueError, configurations_of, hand_to_daemon, resume

    engine = _engine(storage)
    try:
        queue = resume(engine, config.queue_id, storage.settings)
    except (QueueError, LookupError) as exc:
        raise _queue_failure("resume", config.queue_id, exc) from exc
    register_partitions(context.instance, configurations_of(queue.grid_spec))
    record = hand_to_daemon(engine, config.queue_id)
    context.log.info(f"queue {config.queue_id} resumed: {record.status}, handed to training_queue_sensor")
    return str(record.status)


@dg.op(description="Stop now: the model in flight is abandoned, finished models stay.")
def cancel_queue_op(context: dg.OpExecutionContext, config: QueueId, storage: ForexStorage) -> str:
    from forex_pipeline.queue.lifecycle import QueueError, cancel

    try:
        record = cancel(_engine(storage), config.queue_id)
    except (QueueError, LookupError) as exc:
        raise _queue_failure("cancel", config.queue_id, exc) from exc
    context.log.info(f"queue {config.queue_id}: {'cancel requested' if record.cancel_requested else record.status}")
    return str(record.status)


@dg.op(description="Queue the grid's failed configurations again (a new queue; everything trained is skipped).")
def retry_failed_op(context: dg.OpExecutionContext, config: QueueId, storage: ForexStorage) -> int:
    from forex_pipeline.queue.lifecycle import QueueError, configurations_of, hand_to_daemon, retry_failed

    engine = _engine(storage)
    try:
        queue_id = retry_failed(engine, config.queue_id, storage.artifacts)
    except (QueueError, LookupError) as exc:
        raise _queue_failure("retry the failed configurations of", config.queue_id, exc) from exc
    from forex_pipeline.store import training_queue
    from forex_pipeline.store.db import session_scope

    with session_scope(engine) as session:
        grid_spec = training_queue.get_queue(session, queue_id).grid_spec
    register_partitions(context.instance, configurations_of(grid_spec))
    hand_to_daemon(engine, queue_id)
    context.log.info(f"queue {config.queue_id}: failed configurations queued again as queue {queue_id}")
    return queue_id


@dg.job(tags={KIND_TAG: CONTROL_KIND}, description="Pause a queue: its models in flight finish, then it stops.")
def pause_queue():
    pause_queue_op()


@dg.job(tags={KIND_TAG: CONTROL_KIND}, description="Resume a paused, interrupted or failed queue.")
def resume_queue():
    resume_queue_op()


@dg.job(tags={KIND_TAG: CONTROL_KIND}, description="Cancel a queue now; finished models stay.")
def cancel_queue():
    cancel_queue_op()


@dg.job(tags={KIND_TAG: CONTROL_KIND}, description="Train a queue's failed configurations again, as a new queue.")
def retry_failed_queue():
    retry_failed_op()


# ---------------------------------------------------------------- checkpoints


class CheckpointFile(dg.Config):
    """A checkpoint JSON file on the machine that runs the job."""

    path: str


class ExportCheckpoint(dg.Config):
    queue_id: int
    path: str


@dg.op(description="Write a queue's checkpoint (grid, counts, state of every configuration) as JSON.")
def export_checkpoint_op(context: dg.OpExecutionContext, config: ExportCheckpoint, storage: ForexStorage) -> str:
    from forex_pipeline.io import atomic_write_text
    from forex_pipeline.queue.checkpoint import export_checkpoint
    from forex_pipeline.queue.lifecycle import QueueError

    try:
        data = export_checkpoint(_engine(storage), config.queue_id)
    except (QueueError, LookupError) as exc:
        raise _queue_failure("export", config.queue_id, exc) from exc
    path = atomic_write_text(Path(config.path), json.dumps(data, indent=2))
    context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})
    return str(path)


@dg.op(description="Recreate a queue from a checkpoint JSON, paused (resume_queue continues it).")
def import_checkpoint_op(context: dg.OpExecutionContext, config: CheckpointFile, storage: ForexStorage) -> int:
    from forex_pipeline.errors import InputError, OperationError
    from forex_pipeline.queue.checkpoint import import_checkpoint, read_checkpoint

    source = f"checkpoint {config.path}"
    try:
        queue_id = import_checkpoint(_engine(storage), read_checkpoint(Path(config.path)), storage.artifacts, source=source)
    except (InputError, OperationError) as exc:
        raise dg.Failure(description=str(exc)) from None
    context.log.info(f"imported as queue {queue_id} (paused); continue with resume_queue")
    return queue_id


@dg.job(tags={KIND_TAG: CONTROL_KIND}, description="Export a queue's checkpoint as JSON.")
def export_checkpoint_job():
    export_checkpoint_op()


@dg.job(tags={KIND_TAG: CONTROL_KIND}, description="Import a queue from a checkpoint JSON (paused).")
def import_checkpoint_job():
    import_checkpoint_op()


CONTROL_JOBS = [
    plan_grid, submit_grid_job, pause_queue, resume_queue, cancel_queue, retry_failed_queue, export_checkpoint_job, import_checkpoint_job,
]
