"""`grid_batch`: one Dagster run trains and backtests a batch of model configurations of a queue.

A run per configuration would spend seconds of orchestration on each (DESIGN.md section 4), so a
run takes `queue.models_per_run` configurations and reports each one as a materialization of the
`features`, `trained_model` and `inference_backtests` partitions it produced: partition status in
the UI shows exactly what is done, whichever way it was run.
"""


import uuid
from typing import TYPE_CHECKING, Any

import dagster as dg

from forex_pipeline.dagster_defs.assets.model_configs import outcome_metadata
from forex_pipeline.dagster_defs.partitions import chunks
from forex_pipeline.dagster_defs.resources import ForexStorage
from forex_pipeline.dagster_defs.tags import BATCH_OP, KIND_TAG, QUEUE_TAG, batch_run_config
from forex_pipeline.keys import FEATURE_SET_DIMENSION, MODEL_SPEC_DIMENSION, RunStatus

if TYPE_CHECKING:
    from forex_pipeline.models.spec import ModelConfiguration
    from forex_pipeline.queue.worker import BatchResult


class GridBatchConfig(dg.Config):
    queue_id: int
    partition_keys: list[str]  # "feature_set_key|model_spec_key"


@dg.op(name=BATCH_OP, description="Train, backtest and record each configuration of the batch, honouring pause/cancel.")
def run_grid_batch(context: dg.OpExecutionContext, config: GridBatchConfig, storage: ForexStorage) -> dict:
    from forex_pipeline.store.db import get_engine, session_scope
    from forex_pipeline.store import training_queue
    from forex_pipeline.queue.lifecycle import configurations_by_key, progress
    from forex_pipeline.queue.worker import process_batch

    engine = get_engine(storage.db_url)
    with session_scope(engine) as session:
        training_queue.add_queue_dagster_run(session, config.queue_id, context.run_id)
    with session_scope(engine) as session:
        grid_spec = training_queue.get_queue(session, config.queue_id).grid_spec
    batch = configurations_by_key(grid_spec, config.partition_keys)  # completed ones are skipped by their claim

    def report(outcome, configuration) -> None:  # noqa: ANN001
        with session_scope(engine) as session:
            figures = progress(training_queue.get_queue(session, config.queue_id))
        eta = "-" if figures["remaining_seconds"] is None else f"{figures['remaining_seconds']:.0f}s"
        context.log.info(
            f"queue {config.queue_id}: {figures['completed'] + figures['failed']}/{figures['total']} done, "
            f"kept {figures['kept']}, deleted {figures['deleted']}, failed {figures['failed']}, "
            f"elapsed {figures['elapsed_seconds']:.0f}s, remaining ~{eta}"
        )
        if outcome.status == RunStatus.FAILED:
            context.log.warning(f"{outcome.partition_key} failed: {outcome.error}")
            return
        metadata = outcome_metadata(outcome)
        context.log_event(dg.AssetMaterialization("features", partition=configuration.feature_set_key))
        for asset in ("trained_model", "inference_backtests"):
            context.log_event(dg.AssetMaterialization(asset, partition=configuration.partition_key, metadata=metadata))

    result = process_batch(
        engine,
        storage.settings,
        config.queue_id,
        batch,
        artifacts_dir=storage.artifacts,
        sample_dir=storage.sample_dir,
        dagster_run_id=context.run_id,
        on_outcome=report,
    )
    statuses = [o.status for o in result.outcomes]
    return {
        "completed": statuses.count(RunStatus.COMPLETED),
        "skipped": statuses.count("skipped"),
        "failed": statuses.count(RunStatus.FAILED),
        "stopped_because": result.stopped_because,
    }


@dg.job(executor_def=dg.in_process_executor, tags={KIND_TAG: "grid_batch"})
def grid_batch():
    run_grid_batch()


class SubmitGridConfig(dg.Config):
    grid: dict[str, Any]  # the grid spec, same schema as a grid YAML file (examples/grids/)
    name: str | None = None


@dg.op(description="Validate and queue a grid, register its partitions, hand it to the queue sensor.")
def submit_grid_op(context: dg.OpExecutionContext, config: SubmitGridConfig, storage: ForexStorage) -> int:
    from forex_pipeline.grid.expand import expand_grid, parse_grid_spec
    from forex_pipeline.grid.spec import GridSpecError
    from forex_pipeline.store.db import get_engine, upgrade
    from forex_pipeline.queue.lifecycle import hand_to_daemon, submit_grid

    try:
        grid = expand_grid(parse_grid_spec(config.grid, source="launchpad config"))
    except GridSpecError as exc:
        raise dg.Failure(description=str(exc)) from exc
    upgrade(storage.db_url)
    engine = get_engine(storage.db_url)
    queue_id = submit_grid(engine, config.grid, storage.artifacts, name=config.name)
    register_partitions(context.instance, grid.configurations)
    hand_to_daemon(engine, queue_id)
    context.log.info(f"queue {queue_id} ({grid.size} configurations) handed to training_queue_sensor")
    return queue_id


@dg.job(description="Submit a grid from the launchpad (the same schema as a grid YAML file).")
def submit_grid_job():
    submit_grid_op()


def register_partitions(instance: dg.DagsterInstance, configurations: "list[ModelConfiguration]") -> None:
    """Add the grid's feature-set and model-spec keys to the dynamic partitions, in chunks."""
    for name, keys in (
        (FEATURE_SET_DIMENSION, sorted({c.feature_set_key for c in configurations})),
        (MODEL_SPEC_DIMENSION, sorted({c.model_spec_key for c in configurations})),
    ):
        existing = set(instance.get_dynamic_partitions(name))
        for chunk in chunks([k for k in keys if k not in existing]):
            instance.add_dynamic_partitions(name, chunk)


def execute_batch(instance: dg.DagsterInstance, queue_id: int, configurations: "list[ModelConfiguration]") -> "BatchResult":
    """Run one batch as a `grid_batch` Dagster run in this process (recorded in the instance, visible in the UI)."""
    from forex_pipeline.queue.worker import BatchResult, WorkerCancelled

    run_id = str(uuid.uuid4())
    run_config = batch_run_config(queue_id, [c.partition_key for c in configurations])
    # the terminal shows a progress bar; every event still goes to the run's log in the UI
    run_config["loggers"] = {"console": {"config": {"log_level": "WARNING"}}}
    try:
        result = grid_batch.execute_in_process(
            run_config=run_config,
            resources={"storage": ForexStorage()},
            instance=instance,
            tags={QUEUE_TAG: str(queue_id)},
            raise_on_error=False,
            run_id=run_id,
        )
    except WorkerCancelled:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_canceled(run, message="queue cancelled: the worker stopped in the middle of this batch")
        raise
    if not result.success:
        return BatchResult((), "error")
    summary = result.output_for_node(BATCH_OP)
    return BatchResult((), summary["stopped_because"])


def _celery_executor() -> dg.ExecutorDefinition:
    """dagster-celery on FOREX_CELERY_BROKER / FOREX_CELERY_BACKEND, read when a run starts (not at import)."""
    from dagster_celery import celery_executor

    from forex_pipeline.dagster_defs.scale_out import celery_executor_config

    return celery_executor.configured(lambda _config: celery_executor_config(), name="forex_celery", config_schema={})


@dg.job(executor_def=_celery_executor(), tags={KIND_TAG: "grid_batch"})
def grid_batch_celery():
    """`grid_batch` with its step sent to a dagster-celery worker (any host on the broker); see docs/scale_out.md."""
    run_grid_batch()
