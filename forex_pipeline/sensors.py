"""Sensors: feed queued grids to Dagster runs (daemon mode), recover crashed queues, notify on run outcomes."""


import dagster as dg

from forex_pipeline.jobs import grid_batch
from forex_pipeline.hashing import config_hash
from forex_pipeline.resources import ForexStorage

QUEUE_TAG = "forex_pipeline/queue_id"
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


@dg.sensor(job=grid_batch, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def training_queue_sensor(context: dg.SensorEvaluationContext, storage: ForexStorage):
    """For each queue in daemon mode, launch batches of configurations no in-flight run holds, up to
    queue.max_concurrent_runs runs per queue.

    Also marks crashed queues `interrupted` and, when settings.recovery.auto_resume is on, resumes
    them in daemon mode: the sensor itself then feeds their remaining batches.
    """
    from forex_pipeline.store import repository
    from forex_pipeline.store.db import get_engine, session_scope
    from forex_pipeline.training_queue import detect_interrupted, hand_to_daemon, pending_configurations, settle_and_notify

    settings = storage.settings
    engine = get_engine(storage.db_url)
    for queue_id in detect_interrupted(engine, settings):
        context.log.warning(f"queue {queue_id} was interrupted")
        if settings.recovery.auto_resume:
            hand_to_daemon(engine, queue_id)
    with session_scope(engine) as session:
        queues = [q for q in repository.list_queues(session, status="running") if (q.checkpoint or {}).get("mode") == "daemon"]
    for queue in queues:
        in_flight = context.instance.get_run_records(dg.RunsFilter(tags={QUEUE_TAG: str(queue.id)}, statuses=IN_FLIGHT))
        if queue.cancel_requested or queue.pause_requested:
            if not in_flight:
                settle_and_notify(engine, settings, queue.id, "cancel" if queue.cancel_requested else "pause")
            continue
        busy = {key for record in in_flight for key in _batch_keys(record.dagster_run)}
        free_slots = settings.queue.max_concurrent_runs - len(in_flight)
        pending = [c for c in pending_configurations(engine, queue.id) if c.partition_key not in busy]
        size = settings.queue.models_per_run
        for start in range(0, min(free_slots, -(-len(pending) // size)) * size, size):
            keys = [c.partition_key for c in pending[start : start + size]]
            yield dg.RunRequest(
                run_key=f"queue-{queue.id}-{config_hash(keys)[:16]}-{queue.completed_models + queue.failed_models}",
                run_config={"ops": {"run_grid_batch": {"config": {"queue_id": queue.id, "partition_keys": keys}}}},
                tags={QUEUE_TAG: str(queue.id)},
            )


def _batch_keys(run: dg.DagsterRun) -> list[str]:
    return run.run_config.get("ops", {}).get("run_grid_batch", {}).get("config", {}).get("partition_keys", [])


def _queue_of(run: dg.DagsterRun) -> int | None:
    value = run.tags.get(QUEUE_TAG)
    return int(value) if value else None


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[grid_batch], default_status=dg.DefaultSensorStatus.RUNNING)
def queue_outcome_sensor(context: dg.RunStatusSensorContext, storage: ForexStorage):
    """Settle a daemon-mode queue after each batch run, and notify when it completes."""
    from forex_pipeline.training_queue import settle_and_notify

    queue_id = _queue_of(context.dagster_run)
    if queue_id is not None:
        settle_and_notify(storage.db_url, storage.settings, queue_id)


@dg.run_failure_sensor(monitored_jobs=[grid_batch], default_status=dg.DefaultSensorStatus.RUNNING)
def queue_failure_sensor(context: dg.RunFailureSensorContext, storage: ForexStorage):
    """A batch run failed as a whole (not one model): notify, and leave the queue to be resumed."""
    from forex_pipeline.notifications import Notifier, queue_failure_event

    queue_id = _queue_of(context.dagster_run)
    message = context.failure_event.message or "run failed"
    Notifier.from_settings(storage.settings.notifications).notify(
        queue_failure_event(f"queue {queue_id}", f"Dagster run {context.dagster_run.run_id} failed: {message}")
    )
