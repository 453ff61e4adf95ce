"""Sensor factories: feed queued grids to runs of a batch job (daemon mode), recover crashed queues,
settle and notify on run outcomes. Each factory takes the job it launches or watches, so this
module never imports the jobs (definitions.py assembles them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import dagster as dg

from forex_pipeline.dagster_defs.resources import ForexStorage
from forex_pipeline.dagster_defs.tags import (
    QUEUE_TAG,
    batch_keys,
    batch_run_config,
    fail_orphaned_runs,
    queue_of,
)
from forex_pipeline.hashing import config_hash
from forex_pipeline.keys import QueueStatus

if TYPE_CHECKING:
    from forex_pipeline.queue.lifecycle import LostClaim

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,  # a run being terminated still holds its batch: launching more now would race the pause
]


def fail_lost_steps(instance: dg.DagsterInstance, lost: "list[LostClaim]", log) -> None:  # noqa: ANN001 - a logger
    """End the runs whose worker died mid-model (their claims are already released).

    A step on a Celery worker is failed in the result backend: the run process waiting for it fails
    the run itself. An in-process run died with its claim's process, so it is marked failed here."""
    from forex_pipeline.dagster_defs.scale_out import fail_lost_step

    for claim in lost:
        message = f"{claim.partition_key}: {claim.reason}; its claim was released and it trains again on another worker"
        log.warning(message)
        if claim.worker is not None and claim.worker.celery_task_id:
            try:
                fail_lost_step(claim.worker.celery_task_id, message)
            except Exception as exc:  # the broker may be down: the claim is released anyway
                log.error(f"could not fail Celery task {claim.worker.celery_task_id}: {exc}")
        elif claim.dagster_run_id:
            run = instance.get_run_by_id(claim.dagster_run_id)
            if run is not None and not run.is_finished:
                instance.report_run_failed(run, message=message)


def training_queue_sensor_for(jobs: Mapping[str, dg.JobDefinition]) -> dg.SensorDefinition:
    """The daemon-mode queue feeder: launches the batch job of settings.queue.executor (`jobs` maps each
    executor name, in_process and celery, to its grid_batch job) for each queue's batches."""

    @dg.sensor(name="training_queue_sensor", jobs=list(jobs.values()), minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
    def training_queue_sensor(context: dg.SensorEvaluationContext, storage: ForexStorage):
        """For each queue in daemon mode, highest priority first, launch batches of configurations no
        in-flight run holds, up to the queue's max_parallel runs, as runs of the job of
        settings.queue.executor; at most queue.max_parallel_queues queues have runs in flight at once
        (a lower-priority queue waits for a free place).

        First releases the claims of workers that died mid-model (their runs are ended, their
        configurations launched again), then marks crashed queues `interrupted` and, when
        settings.recovery.auto_resume is on, resumes them in daemon mode.
        """
        from forex_pipeline.dagster_defs.partitions import refresh_partition_status
        from forex_pipeline.queue.lifecycle import (
            detect_interrupted,
            hand_to_daemon,
            pending_configurations,
            release_lost_claims,
            settle_and_notify,
        )
        from forex_pipeline.queue.checkpoint import checkpoint_if_stopped
        from forex_pipeline.store import training_queue
        from forex_pipeline.store.db import get_engine, session_scope

        settings = storage.settings
        engine = get_engine(storage.db_url)
        job_name = jobs[settings.queue.executor].name
        refreshed = refresh_partition_status(context.instance, context.log)   # keys added without register_partitions
        if refreshed:
            context.log.info(f"partition status rebuilt for {', '.join(refreshed)} (new partitions)")
        fail_lost_steps(context.instance, release_lost_claims(engine, settings), context.log)
        for queue_id in detect_interrupted(engine, settings):
            context.log.warning(f"queue {queue_id} was interrupted")
            fail_orphaned_runs(context.instance, queue_id, f"queue {queue_id} was found interrupted: the worker of this run stopped without finishing")
            if settings.recovery.auto_resume:
                hand_to_daemon(engine, queue_id)
        with session_scope(engine) as session:
            queues = training_queue.by_priority(
                [q for q in training_queue.list_queues(session, status=QueueStatus.RUNNING) if (q.checkpoint or {}).get("mode") == "daemon"]
            )
        flights = {q.id: context.instance.get_run_records(dg.RunsFilter(tags={QUEUE_TAG: str(q.id)}, statuses=IN_FLIGHT)) for q in queues}
        served = sum(1 for q in queues if flights[q.id])
        for queue in queues:
            in_flight = flights[queue.id]
            if queue.cancel_requested or queue.pause_requested:
                if not in_flight:
                    checkpoint_if_stopped(engine, settings, settle_and_notify(engine, settings, queue.id, "cancel" if queue.cancel_requested else "pause"))
                continue
            busy = {key for record in in_flight for key in batch_keys(record.dagster_run.run_config)}
            free_slots = queue.max_parallel - len(in_flight)
            pending = [c for c in pending_configurations(engine, queue.id) if c.partition_key not in busy]
            if not pending and not in_flight:  # the last batch may have failed (a configuration failed): settle here
                settle_and_notify(engine, settings, queue.id)
                continue
            if not in_flight and served >= settings.queue.max_parallel_queues:
                continue  # every place is taken by queues of higher (or equal, older) priority
            size = settings.queue.models_per_run
            for start in range(0, min(free_slots, -(-len(pending) // size)) * size, size):
                keys = [c.partition_key for c in pending[start : start + size]]
                served += int(start == 0 and not in_flight)
                yield dg.RunRequest(
                    # the runs already started make a resumed queue's batch a new key (a batch that was
                    # paused before training anything would otherwise be skipped as "already requested")
                    run_key=f"queue-{queue.id}-{config_hash(keys)[:16]}-{queue.completed_models + queue.failed_models}-{len(queue.dagster_run_ids)}",
                    run_config=batch_run_config(queue.id, keys),
                    tags={QUEUE_TAG: str(queue.id)},
                    job_name=job_name,
                )

    return training_queue_sensor


def queue_outcome_sensor_for(jobs: list[dg.JobDefinition]) -> dg.SensorDefinition:
    """Settle a daemon-mode queue after each successful run of the batch `jobs`, and notify when it completes."""

    @dg.run_status_sensor(
        name="queue_outcome_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=jobs,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def queue_outcome_sensor(context: dg.RunStatusSensorContext, storage: ForexStorage):
        from forex_pipeline.queue.lifecycle import settle_and_notify

        queue_id = queue_of(context.dagster_run.tags)
        if queue_id is not None:
            settle_and_notify(storage.db_url, storage.settings, queue_id)

    return queue_outcome_sensor


def queue_failure_sensor_for(jobs: list[dg.JobDefinition]) -> dg.SensorDefinition:
    """A run of the batch `jobs` failed as a whole (not one model): notify, and leave the queue to be resumed."""

    @dg.run_failure_sensor(name="queue_failure_sensor", monitored_jobs=jobs, default_status=dg.DefaultSensorStatus.RUNNING)
    def queue_failure_sensor(context: dg.RunFailureSensorContext, storage: ForexStorage):
        from forex_pipeline.reporting.notifications import Notifier, queue_failure_event

        queue_id = queue_of(context.dagster_run.tags)
        message = context.failure_event.message or "run failed"
        Notifier.from_settings(storage.settings.notifications).notify(
            queue_failure_event(f"queue {queue_id}", f"Dagster run {context.dagster_run.run_id} failed: {message}")
        )

    return queue_failure_sensor


def batch_terminated_sensor_for(jobs: list[dg.JobDefinition]) -> dg.SensorDefinition:
    """A run of the batch `jobs` was terminated (Terminate in the UI): pause its queue and release the run's claims.

    The batch op does the same when it sees the interrupt; this covers a run terminated before its op
    started or killed too hard to run its handler."""

    @dg.run_status_sensor(
        name="batch_terminated_sensor",
        run_status=dg.DagsterRunStatus.CANCELED,
        monitored_jobs=jobs,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=5,
    )
    def batch_terminated_sensor(context: dg.RunStatusSensorContext, storage: ForexStorage):
        from forex_pipeline.queue.lifecycle import pause_for_terminated_run
        from forex_pipeline.store.db import get_engine

        queue_id = queue_of(context.dagster_run.tags)
        if queue_id is not None:
            queue = pause_for_terminated_run(get_engine(storage.db_url), queue_id, context.dagster_run.run_id)
            context.log.info(f"queue {queue_id}: {queue.status} ({queue.error_message or '-'})")

    return batch_terminated_sensor


def regime_bests_refresh_sensor_for(job: dg.JobDefinition) -> dg.SensorDefinition:
    """Refresh `regime_bests` (launch `job`) once new model outcomes are recorded and no refresh is in flight.

    The cursor is the storage id of the latest `inference_backtests` materialization already shown, so
    each batch of outcomes is followed by one refresh, whoever ran it (UI, sensor, CLI)."""

    @dg.sensor(name="regime_bests_refresh_sensor", job=job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
    def regime_bests_refresh_sensor(context: dg.SensorEvaluationContext):
        latest = context.instance.fetch_materializations(dg.AssetKey("inference_backtests"), limit=1).records
        if not latest:
            return dg.SkipReason("no model outcome recorded yet")
        storage_id = latest[0].storage_id
        if context.cursor and int(context.cursor) >= storage_id:
            return dg.SkipReason("regime_bests already reflects the latest outcome")
        if context.instance.get_run_records(dg.RunsFilter(job_name=job.name, statuses=IN_FLIGHT), limit=1):
            return dg.SkipReason("a regime_bests refresh is in flight")
        context.update_cursor(str(storage_id))
        return dg.RunRequest(run_key=f"regime-bests-{storage_id}")

    return regime_bests_refresh_sensor
