"""Run tags and the batch run config: how a Dagster run names its queue and its configurations."""

from __future__ import annotations

from typing import Any

QUEUE_TAG = "forex_pipeline/queue_id"
KIND_TAG = "forex_pipeline/kind"
FOREGROUND_TAG = "forex_pipeline/foreground"
"""On a batch run executed in the CLI's own process (`grid submit`, `queue run`), not by a run launcher."""
BATCH_OP = "run_grid_batch"


def batch_run_config(queue_id: int, partition_keys: list[str]) -> dict[str, Any]:
    """The run config of one grid_batch run: the queue and the partition keys of its configurations."""
    return {"ops": {BATCH_OP: {"config": {"queue_id": queue_id, "partition_keys": partition_keys}}}}


def batch_keys(run_config: dict[str, Any]) -> list[str]:
    """The partition keys a grid_batch run config holds ([] for any other run)."""
    return run_config.get("ops", {}).get(BATCH_OP, {}).get("config", {}).get("partition_keys", [])


def queue_of(tags: dict[str, str]) -> int | None:
    """The queue id a run is tagged with, if any."""
    value = tags.get(QUEUE_TAG)
    return int(value) if value else None


def fail_orphaned_runs(instance, queue_id: int, reason: str) -> int:  # noqa: ANN001 - DagsterInstance
    """Mark the batch runs of a queue that still read STARTED/STARTING as failed, with `reason`.

    Called when the queue is found stopped (its worker crashed or was killed): such a run can never
    finish, and without this it would show as running in the UI for good. Returns how many runs.
    """
    import dagster as dg

    records = instance.get_run_records(
        dg.RunsFilter(tags={QUEUE_TAG: str(queue_id)}, statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
    )
    for record in records:
        instance.report_run_failed(record.dagster_run, message=reason)
    return len(records)
