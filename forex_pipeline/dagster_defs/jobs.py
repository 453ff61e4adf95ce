"""`grid_batch`: one Dagster run trains and backtests a batch of model configurations of a queue.

A run per configuration would spend seconds of orchestration on each (DESIGN.md section 4), so a
run takes `queue.models_per_run` configurations and reports each one as a materialization of the
`features`, `trained_model` and `inference_backtests` partitions it produced: partition status in
the UI shows exactly what is done, whichever way it was run.
"""


import _thread
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING

import dagster as dg

from forex_pipeline.dagster_defs.batch_events import BatchReporter
from forex_pipeline.dagster_defs.resources import ForexStorage
from forex_pipeline.dagster_defs.tags import BATCH_OP, FOREGROUND_TAG, KIND_TAG, QUEUE_TAG, batch_run_config
from forex_pipeline.keys import RunStatus

if TYPE_CHECKING:
    from forex_pipeline.models.spec import ModelConfiguration
    from forex_pipeline.queue.worker import BatchResult


TERMINATED = (dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED)
TERMINATE_POLL_SECONDS = 1.0


@contextmanager
def interrupted_when_terminated(instance: dg.DagsterInstance, run_id: str, every: float = TERMINATE_POLL_SECONDS) -> Iterator[None]:
    """Interrupt the main thread (DagsterExecutionInterruptedError) once the run reads canceling or canceled.

    Terminate in the UI reaches a run executed in the CLI's process only as that status (no run
    launcher holds it); this watcher turns it into the interrupt a launched run gets, so the model
    in flight is abandoned and the queue is paused the same way. Dagster defers SIGINT while a run
    executes in process, so the block raises interrupts at once (as a launched run's step does)."""
    from dagster._utils.interrupts import raise_interrupts_as

    stop = threading.Event()

    terminated = dg.RunsFilter(run_ids=[run_id], statuses=list(TERMINATED))

    def watch() -> None:
        # the run's id filtered by status: no DagsterRun is read and deserialized every second
        while not stop.wait(every):
            if instance.get_run_ids(filters=terminated, limit=1) and not stop.is_set():
                _thread.interrupt_main()
                return

    watcher = threading.Thread(target=watch, name=f"terminate-watch-{run_id[:8]}", daemon=True)
    with raise_interrupts_as(dg.DagsterExecutionInterruptedError):
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()


class GridBatchConfig(dg.Config):
    queue_id: int
    partition_keys: list[str]  # ModelConfiguration.partition_key: "feature_set_key|model_spec_key"


class ConfigurationsFailed(dg.Failure):
    """Some configurations of the batch failed: the run fails (red), its summary rides in the metadata."""


@dg.op(name=BATCH_OP, description="Train, backtest and record each configuration of the batch, honouring pause/cancel.")
def run_grid_batch(context: dg.OpExecutionContext, config: GridBatchConfig, storage: ForexStorage) -> dict:
    """Work the batch; configurations that failed fail the run (after the rest of the batch has run),
    and a terminated run pauses its queue instead of leaving it claimed and running."""
    from forex_pipeline.queue.lifecycle import configurations_by_key, pause_for_terminated_run, progress
    from forex_pipeline.dagster_defs.scale_out import current_celery_task_id
    from forex_pipeline.queue.worker import process_batch
    from forex_pipeline.store import training_queue, training_runs
    from forex_pipeline.store.db import get_engine, session_scope
    from forex_pipeline.store.training_runs import WorkerIdentity

    engine = get_engine(storage.db_url)
    with session_scope(engine) as session:
        training_queue.add_queue_dagster_run(session, config.queue_id, context.run_id)
        grid_spec = training_queue.get_queue(session, config.queue_id).grid_spec
    batch = configurations_by_key(grid_spec, config.partition_keys)  # completed ones are skipped by their claim
    reporter = BatchReporter(context, config.queue_id, len(batch), storage.settings.explorer.url)

    recorded: list = []  # the queue as the last outcome left it: the next model's start reads no more

    def figures() -> dict:
        if recorded:
            return progress(recorded.pop())
        with session_scope(engine) as session:
            return progress(training_queue.get_queue(session, config.queue_id))

    def on_start(index: int, configuration: "ModelConfiguration") -> None:
        reporter.started_model(index, configuration, figures())

    def on_outcome(outcome, configuration) -> None:  # noqa: ANN001
        deleted_ids = outcome.record.deleted_run_ids if outcome.record is not None else ()
        with session_scope(engine) as session:
            deleted = [training_runs.get_training_run(session, run_id) for run_id in deleted_ids]
            queue = training_queue.get_queue(session, config.queue_id)
        recorded[:] = [queue]
        reporter.finished_model(outcome, configuration, progress(queue), [run for run in deleted if run is not None])
        reporter.streak_check(queue.consecutive_failures, storage.settings.queue.max_consecutive_failures, outcome.error)

    # a foreground run learns of Terminate only from its status (a launched run is interrupted by its launcher)
    foreground = context.run.tags.get(FOREGROUND_TAG) == "true" and threading.current_thread() is threading.main_thread()
    try:
        with interrupted_when_terminated(context.instance, context.run_id) if foreground else nullcontext():
            result = process_batch(
                engine, storage.settings, config.queue_id, batch,
                artifacts_dir=storage.artifacts, sample_dir=storage.sample_dir, dagster_run_id=context.run_id,
                on_outcome=on_outcome, on_start=on_start, on_disk_pause=reporter.disk_warning, on_stage=reporter.working,
                worker=WorkerIdentity.this_process(current_celery_task_id()),
            )
    except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt):
        queue = pause_for_terminated_run(engine, config.queue_id, context.run_id)
        context.log.warning(f"run terminated: queue {config.queue_id} {queue.error_message or queue.status}")
        raise
    reporter.finished_batch()
    statuses = [o.status for o in result.outcomes]
    summary = {
        "completed": statuses.count(RunStatus.COMPLETED),
        "skipped": statuses.count("skipped"),
        "failed": statuses.count(RunStatus.FAILED),
        "stopped_because": result.stopped_because,
    }
    if reporter.failed:
        raise ConfigurationsFailed(
            description=f"{len(reporter.failed)} of {len(result.outcomes)} configurations failed:\n" + "\n".join(reporter.failed),
            metadata={**{k: v for k, v in summary.items() if v is not None}, "stopped_because": result.stopped_because or "-"},
        )
    return summary


@dg.job(executor_def=dg.in_process_executor, tags={KIND_TAG: "grid_batch"})
def grid_batch():
    run_grid_batch()


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
            tags={QUEUE_TAG: str(queue_id), FOREGROUND_TAG: "true"},
            raise_on_error=False,
            run_id=run_id,
        )
    except WorkerCancelled:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_canceled(run, message="queue cancelled: the worker stopped in the middle of this batch")
        raise
    if not result.success:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status in TERMINATED:  # Terminate in the UI: the op paused the queue
            if not run.is_finished:
                instance.report_run_canceled(run, message="terminated from the UI: the queue is paused")
            return BatchResult((), "pause")
        return BatchResult((), failed_batch_stop_reason(result))
    summary = result.output_for_node(BATCH_OP)
    return BatchResult((), summary["stopped_because"])


def failed_batch_stop_reason(result: dg.ExecuteInProcessResult) -> str | None:
    """Why a failed batch run stopped: its own reason when only configurations failed (the queue goes on),
    "error" when the run itself broke (the queue fails and waits for a resume)."""
    failure = result.failure_data_for_node(BATCH_OP)
    metadata = failure.user_failure_data.metadata if failure is not None and failure.user_failure_data is not None else {}
    if "stopped_because" not in metadata:
        return "error"
    reason = metadata["stopped_because"].value
    return None if reason == "-" else str(reason)


def _celery_executor() -> dg.ExecutorDefinition:
    """dagster-celery on FOREX_CELERY_BROKER / FOREX_CELERY_BACKEND, read when a run starts (not at import)."""
    from dagster_celery import celery_executor

    from forex_pipeline.dagster_defs.scale_out import celery_executor_config

    return celery_executor.configured(lambda _config: celery_executor_config(), name="forex_celery", config_schema={})


@dg.job(executor_def=_celery_executor(), tags={KIND_TAG: "grid_batch"})
def grid_batch_celery():
    """`grid_batch` with its step sent to a dagster-celery worker (any host on the broker); see docs/deployment.md."""
    run_grid_batch()


# settings.queue.executor -> the batch job the daemon's queue sensor launches
BATCH_JOBS: dict[str, dg.JobDefinition] = {"in_process": grid_batch, "celery": grid_batch_celery}
