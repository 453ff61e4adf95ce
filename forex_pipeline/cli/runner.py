"""Run a queue through Dagster from the CLI: in this process (one Dagster run per batch) or via the daemon."""

from __future__ import annotations

import os

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def dagster_instance():  # noqa: ANN201
    """The Dagster instance at DAGSTER_HOME (default ./dagster_home, created with SQLite storage)."""
    import dagster as dg

    from forex_pipeline.settings import PROJECT_ROOT, dagster_home

    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    template = PROJECT_ROOT / "dagster_home" / "dagster.yaml"
    if not config.exists() and template.exists() and template.resolve() != config.resolve():
        config.write_text(template.read_text())
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def run_in_foreground(queue_id: int, console: Console):  # noqa: ANN201 - QueueRecord
    """Work the queue to its end here; each batch is a Dagster run recorded in the instance."""
    from forex_pipeline.dagster_defs.jobs import execute_batch
    from forex_pipeline.dagster_defs.partitions import register_partitions
    from forex_pipeline.dagster_defs.tags import fail_orphaned_runs
    from forex_pipeline.keys import QueueStatus
    from forex_pipeline.queue.lifecycle import configurations_of, detect_interrupted
    from forex_pipeline.queue.worker import run_queue
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store import training_queue
    from forex_pipeline.store.db import get_engine, session_scope

    settings = get_settings()
    engine = get_engine(settings.database_url)
    instance = dagster_instance()
    detect_interrupted(engine, settings)
    with session_scope(engine) as session:
        queue = training_queue.get_queue(session, queue_id)
    if queue.status != QueueStatus.RUNNING:
        fail_orphaned_runs(instance, queue_id, f"queue {queue_id} was found {queue.status}: the worker of this run stopped without finishing (crash or kill)")
    register_partitions(instance, configurations_of(queue.grid_spec))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        done = queue.completed_models + queue.failed_models
        task = progress.add_task(f"{queue.name}", total=queue.total_models, completed=done)

        def on_progress(record) -> None:  # noqa: ANN001
            progress.update(
                task,
                completed=record.completed_models + record.failed_models,
                description=f"{record.name} kept {record.kept_models} deleted {record.deleted_models} failed {record.failed_models}",
            )

        final = run_queue(
            engine,
            settings,
            queue_id,
            lambda qid, batch: execute_batch(instance, qid, batch),
            artifacts_dir=settings.artifacts_dir,
            on_progress=on_progress,
        )
        on_progress(final)
    _materialize_regime_bests(instance)
    return final


def _materialize_regime_bests(instance) -> None:  # noqa: ANN001
    """Refresh the `regime_bests` asset (tables and charts in the UI) after a queue stops."""
    import dagster as dg

    from forex_pipeline.dagster_defs.assets.regime_bests import regime_bests
    from forex_pipeline.dagster_defs.resources import ForexStorage

    dg.materialize(
        [regime_bests],
        instance=instance,
        resources={"storage": ForexStorage()},
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        raise_on_error=False,
    )


def start_detached(queue_id: int) -> None:
    """Register the queue's partitions and hand it to the daemon's `training_queue_sensor`."""
    from forex_pipeline.dagster_defs.partitions import register_partitions
    from forex_pipeline.queue.lifecycle import configurations_of, hand_to_daemon
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store import training_queue
    from forex_pipeline.store.db import get_engine, session_scope

    settings = get_settings()
    engine = get_engine(settings.database_url)
    with session_scope(engine) as session:
        queue = training_queue.get_queue(session, queue_id)
    register_partitions(dagster_instance(), configurations_of(queue.grid_spec))
    hand_to_daemon(engine, queue_id)
