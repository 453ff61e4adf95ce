"""What the Dagster UI shows of a grid: failed configurations as failed, live progress, stale bests,
a terminated batch as a paused queue (not a stuck one)."""

from __future__ import annotations

import dagster as dg
import pytest

from forex_pipeline.dagster_defs.batch_events import PROGRESS_ASSET
from forex_pipeline.dagster_defs.jobs import execute_batch, grid_batch
from forex_pipeline.dagster_defs.partitions import register_partitions
from forex_pipeline.dagster_defs.resources import ForexStorage
from forex_pipeline.dagster_defs.sensors import batch_terminated_sensor_for, regime_bests_refresh_sensor_for, training_queue_sensor_for
from forex_pipeline.dagster_defs.tags import QUEUE_TAG, batch_run_config
from forex_pipeline.queue import lifecycle, worker
from forex_pipeline.settings import get_settings
from forex_pipeline.store import training_queue, training_runs
from forex_pipeline.store.db import get_engine, session_scope
from tests.support import TINY_GRID

pytestmark = pytest.mark.slow

HALF_FAILING = {  # horizon 250 cannot be trained on 30 days of 1h bars: 2 of 4 configurations fail
    **TINY_GRID,
    "feature_sets": {**TINY_GRID["feature_sets"], "days_history": [30]},
    "model_specs": {**TINY_GRID["model_specs"], "horizons": [1, 250]},
}


def _events(instance: dg.DagsterInstance, event_type: dg.DagsterEventType, asset: str) -> list:
    """The events of this type about `asset`, newest first."""
    entries = [entry for run in instance.get_runs() for entry in instance.all_logs(run.run_id)]
    entries.sort(key=lambda entry: entry.timestamp, reverse=True)
    events = [entry.dagster_event for entry in entries if entry.dagster_event is not None]
    return [e for e in events if e.event_type == event_type and e.asset_key == dg.AssetKey(asset)]


def _partition(event) -> str | None:  # noqa: ANN001 - DagsterEvent
    """The partition an asset event is about (planned events carry it in their specific data)."""
    return event.partition or getattr(event.event_specific_data, "partition", None)


def _is_deletion(event) -> bool:  # noqa: ANN001 - DagsterEvent
    """The observation that says a model's file was deleted (pushed out of every top N)."""
    return event.event_type == dg.DagsterEventType.ASSET_OBSERVATION and "file_deleted_at" in event.event_specific_data.asset_observation.metadata


def _failed_partitions(instance: dg.DagsterInstance, asset: str) -> set[str]:
    """The partitions Dagster's status computation calls failed (planned in a failed run, never materialized)."""
    import sys

    from dagster._core.definitions.partitions.context import partition_loading_context
    from dagster._core.storage.partition_status_cache import build_failed_and_in_progress_partition_subset

    from forex_pipeline.dagster_defs.partitions import model_config_partitions

    with partition_loading_context(dynamic_partitions_store=instance):
        failed, _, _ = build_failed_and_in_progress_partition_subset(
            instance, dg.AssetKey(asset), model_config_partitions, last_planned_materialization_storage_id=sys.maxsize
        )
        return set(failed.get_partition_keys())


def test_failed_configurations_show_as_failed_and_the_queue_says_so(grid_env):
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, HALF_FAILING, settings.artifacts_dir)
    configurations = lifecycle.configurations_of(HALF_FAILING)
    with dg.instance_for_test() as instance:
        register_partitions(instance, configurations)
        final = worker.run_queue(engine, settings, queue_id, lambda q, b: execute_batch(instance, q, b), artifacts_dir=settings.artifacts_dir)
        runs = instance.get_run_records(dg.RunsFilter(job_name="grid_batch"))
        observed = _events(instance, dg.DagsterEventType.ASSET_OBSERVATION, "trained_model")
        failed_keys = {e.partition for e in observed if e.event_specific_data.asset_observation.metadata.get("status") == dg.MetadataValue.text("failed")}
        failed_in_ui = _failed_partitions(instance, "trained_model")
        done_keys = {e.partition for e in _events(instance, dg.DagsterEventType.ASSET_MATERIALIZATION, "trained_model")}
        planned = {e.event_specific_data.partition for e in _events(instance, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, "trained_model")}
        progress = _events(instance, dg.DagsterEventType.ASSET_OBSERVATION, PROGRESS_ASSET)
        stale = instance.event_log_storage.get_latest_asset_check_execution_by_key([dg.AssetCheckKey(dg.AssetKey("regime_bests"), "reflects_latest_outcomes")])
        model_events = [e for asset in ("trained_model", "inference_backtests") for kind in (
            dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_OBSERVATION, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
            for e in _events(instance, kind, asset)]
    assert final.status == "completed" and final.failed_models == 2
    assert lifecycle.status_line(final) == "completed, 2 failed"
    assert len(failed_keys) == 2 and all(k.split("|")[1].endswith(tuple("0123456789abcdef")) for k in failed_keys)
    assert {c.partition_key for c in configurations} == failed_keys | done_keys and not failed_keys & done_keys
    assert planned == failed_keys  # only a failure is planned (to show as failed): a success is one materialization
    assert failed_in_ui == failed_keys  # what the partitions page shows as failed
    assert any(r.dagster_run.status == dg.DagsterRunStatus.FAILURE for r in runs)  # a batch with a failure is red
    # few events per model: each successful configuration's partitions got one materialization each, nothing
    # planned, and an observation only when keep-or-delete later deleted its file
    for key in done_keys:
        events = [e for e in model_events if _partition(e) == key]
        assert sorted(e.event_type_value for e in events if not _is_deletion(e)) == ["ASSET_MATERIALIZATION"] * 2
    # live progress: one observation as each model starts and one as each batch ends (and a slow model's stages between)
    stages = [e.event_specific_data.asset_observation.metadata["stage"].value for e in progress]
    assert stages.count("starting") == len(configurations) and stages.count("-") == len(runs)
    last = progress[0].event_specific_data.asset_observation.metadata  # newest first
    assert last["done"].value == 4 and last["failed"].value == 2 and last["in_flight"].value == "-"
    assert "completed" in last["status"].value or "running" in last["status"].value
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    assert [r.status for r in stale.values()] == [AssetCheckExecutionRecordStatus.FAILED]  # regime_bests now reads stale (WARN)


def test_a_terminated_batch_pauses_its_queue_and_frees_its_claims(grid_env):
    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    lifecycle.hand_to_daemon(engine, queue_id)
    first = lifecycle.configurations_of(TINY_GRID)[0]
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(grid_batch, run_config=batch_run_config(queue_id, [first.partition_key]), tags={QUEUE_TAG: str(queue_id)})
        with session_scope(engine) as session:  # the model in flight when Terminate was pressed
            claimed, _ = training_runs.claim_training_run(
                session, training_runs.training_run_fields(first), queue_id=queue_id, dagster_run_id=run.run_id, stale_after_seconds=600
            )
        assert claimed
        instance.report_run_canceled(run)
        run = instance.get_run_by_id(run.run_id)
        sensor = batch_terminated_sensor_for([grid_batch])
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=instance, dagster_run=run,
            dagster_event=instance.get_records_for_run(run.run_id).records[-1].event_log_entry.dagster_event,
            resources={"storage": ForexStorage()},
        )
        sensor(context)
        with session_scope(engine) as session:
            queue = training_queue.get_queue(session, queue_id)
            held = training_runs.get_training_run_by_hash(session, first.model_config_hash)
        assert held.status == "pending"  # claim released: it trains again on resume
        assert queue.pause_requested and "terminated" in queue.error_message
        # the queue sensor launches nothing more and settles the queue paused
        feeder = training_queue_sensor_for({"in_process": grid_batch})
        requests = list(feeder(dg.build_sensor_context(instance=instance, resources={"storage": ForexStorage()})) or [])
    assert requests == []
    with session_scope(engine) as session:
        queue = training_queue.get_queue(session, queue_id)
    assert queue.status == "paused" and "terminated" in lifecycle.status_line(queue)
    lifecycle.resume(engine, queue_id, settings)  # and it resumes (no "queue is running")


def test_regime_bests_refresh_follows_new_outcomes(grid_env):
    from forex_pipeline.dagster_defs.assets.regime_bests import regime_bests_job

    sensor = regime_bests_refresh_sensor_for(regime_bests_job)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance)
        assert isinstance(sensor(context), dg.SkipReason)
        for n in range(2):
            instance.report_runless_asset_event(dg.AssetMaterialization("inference_backtests", partition=f"a|b{n}"))
        request = sensor(context)
        assert isinstance(request, dg.RunRequest)
        context.update_cursor(context.cursor)
        assert isinstance(sensor(dg.build_sensor_context(instance=instance, cursor=context.cursor)), dg.SkipReason)


def test_terminating_a_foreground_batch_pauses_its_queue(grid_env, monkeypatch):
    """`grid submit` runs batches in its own process: Terminate in the UI only marks the run canceling
    (no launcher holds it). The batch then stops mid-model and its queue is paused, like a launched run."""
    import time

    from forex_pipeline.dagster_defs import jobs

    settings = get_settings()
    engine = get_engine(settings.database_url)
    queue_id = lifecycle.submit_grid(engine, TINY_GRID, settings.artifacts_dir)
    real = worker.run_configuration
    monkeypatch.setattr(jobs, "TERMINATE_POLL_SECONDS", 0.2)

    with dg.instance_for_test() as instance:
        def slow_first_model(configuration, **kwargs):  # noqa: ANN001, ANN003 - run_configuration's signature
            if not getattr(slow_first_model, "terminated", False):
                slow_first_model.terminated = True
                with session_scope(engine) as session:  # the model is in flight (claimed) when Terminate is pressed
                    training_runs.claim_training_run(session, training_runs.training_run_fields(configuration), queue_id=queue_id,
                                                     dagster_run_id=kwargs["dagster_run_id"], stale_after_seconds=600)
                instance.report_run_canceling(instance.get_run_by_id(kwargs["dagster_run_id"]))  # what Terminate does
                time.sleep(30)  # a long model: the interrupt ends it
                slow_first_model.slept_through = True
            return real(configuration, **kwargs)

        monkeypatch.setattr(worker, "run_configuration", slow_first_model)
        final = worker.run_queue(engine, settings, queue_id, lambda q, b: jobs.execute_batch(instance, q, b), artifacts_dir=settings.artifacts_dir)
        runs = instance.get_run_records(dg.RunsFilter(job_name="grid_batch"))
    with session_scope(engine) as session:
        statuses = [r.status for r in training_runs.runs_of_queue(session, queue_id)]
    assert not getattr(slow_first_model, "slept_through", False)  # interrupted, not waiting for the model to end
    assert final.status == "paused" and "terminated" in (final.error_message or ""), lifecycle.status_line(final)
    assert "running" not in statuses  # the model in flight was released: it trains again on resume
    assert [r.dagster_run.status for r in runs] == [dg.DagsterRunStatus.CANCELED]  # one batch, canceled, no more launched
    lifecycle.resume(engine, queue_id, settings)
