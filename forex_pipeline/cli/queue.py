"""`forex-pipeline queue ...`: list, watch and control training queues; export/import checkpoints."""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from forex_pipeline.cli.common import console, fail, reading
from forex_pipeline.errors import EXIT_FAILED
from forex_pipeline.keys import QueueStatus

app = typer.Typer(no_args_is_help=True, help="Training queues: status, pause, resume, cancel, checkpoints.")


def _context():  # noqa: ANN202
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store.db import get_engine, upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    return settings, get_engine(settings.database_url)


def figures_of(queue) -> dict:  # noqa: ANN001 - QueueRecord
    from forex_pipeline.queue.lifecycle import progress

    return progress(queue)




@app.command("list")
def list_queues() -> None:
    """Every queue with its status and counts."""
    from forex_pipeline.store import training_queue
    from forex_pipeline.store.db import session_scope

    _, engine = _context()
    with session_scope(engine) as session:
        queues = training_queue.list_queues(session)
    table = Table("id", "name", "status", "done/total", "failed", "kept", "deleted", "elapsed s")
    for q in queues:
        d = figures_of(q)
        table.add_row(str(d["id"]), d["name"], d["status"], f"{d['completed']}/{d['total']}", str(d["failed"]), str(d["kept"]), str(d["deleted"]), f"{d['elapsed_seconds']:.0f}")
    console().print(table)


def _get(engine, queue_id: int):  # noqa: ANN001, ANN202
    from forex_pipeline.store import training_queue
    from forex_pipeline.store.db import session_scope

    with session_scope(engine) as session:
        queue = training_queue.get_queue(session, queue_id)
    if queue is None:
        fail(f"no training queue with id {queue_id}")
    return queue


@app.command()
@reading
def status(queue_id: int, watch: bool = typer.Option(False, help="follow progress until the queue stops")) -> None:
    """Progress of one queue (a progress bar with --watch)."""
    from forex_pipeline.cli.common import DatabaseUnavailable, read_session
    from forex_pipeline.queue.lifecycle import detect_interrupted
    from forex_pipeline.settings import get_settings

    settings = get_settings()
    try:   # no migration on this path (a queue exists only in a migrated database): it starts faster
        with read_session(settings.database_url) as session:
            engine = session.get_bind()
            detect_interrupted(engine, settings)
            queue = _get(engine, queue_id)
    except DatabaseUnavailable as exc:
        fail(str(exc), EXIT_FAILED)
    if not watch:
        console().print_json(json.dumps(figures_of(queue)))
        return
    gc.enable()   # following a queue for hours: collect as usual
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console()) as bar:
        task = bar.add_task(queue.name, total=queue.total_models)
        while True:
            queue = _get(engine, queue_id)
            d = figures_of(queue)
            bar.update(task, completed=d["completed"] + d["failed"], description=f"{queue.name} [{queue.status}] kept {d['kept']}")
            if queue.status != QueueStatus.RUNNING and queue.status != QueueStatus.PENDING:
                break
            time.sleep(1.0)
    console().print_json(json.dumps(figures_of(queue)))


def _request(queue_id: int, action: str) -> None:
    """Ask a queue to pause or cancel; a finished queue is refused with a clear error."""
    from forex_pipeline.queue import lifecycle

    _, engine = _context()
    _get(engine, queue_id)
    try:
        record = getattr(lifecycle, action)(engine, queue_id)
    except lifecycle.QueueError as exc:
        fail(str(exc), EXIT_FAILED)
    requested = record.pause_requested if action == "pause" else record.cancel_requested
    if not requested:  # a waiting queue stopped at once: leave its checkpoint like a worker would
        from forex_pipeline.queue.checkpoint import checkpoint_if_stopped

        checkpoint_if_stopped(engine, _context()[0], record)
    console().print(f"queue {queue_id}: {f'{action} requested' if requested else record.status}")


@app.command()
def pause(queue_id: int) -> None:
    """Finish the models in flight, then stop."""
    _request(queue_id, "pause")


@app.command()
def cancel(queue_id: int) -> None:
    """Stop now; finished models stay."""
    _request(queue_id, "cancel")


@app.command()
def resume(
    queue_id: int = typer.Argument(None, help="the queue to continue (leave out with --checkpoint)"),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="continue from this checkpoint file (validated: version, sha256, grid)"),
    detach: bool = typer.Option(False, help="let the Dagster daemon's sensor run it"),
) -> None:
    """Continue a paused or interrupted queue with what is missing (or the queue of a checkpoint file)."""
    from forex_pipeline.queue.checkpoint import read_checkpoint, resume_from_checkpoint, validate_checkpoint
    from forex_pipeline.queue.lifecycle import QueueError, resume as resume_queue

    if (queue_id is None) == (checkpoint is None):
        fail("give a queue id or --checkpoint FILE (one of them)")
    if checkpoint is not None:
        validate_checkpoint(read_checkpoint(checkpoint), f"checkpoint {checkpoint}")  # refused before the database is opened
    settings, engine = _context()
    try:
        if checkpoint is not None:
            queue_id = resume_from_checkpoint(engine, checkpoint, settings)
            console().print(f"checkpoint {checkpoint}: continuing queue {queue_id}")
        else:
            _get(engine, queue_id)
            resume_queue(engine, queue_id, settings)
    except QueueError as exc:
        fail(str(exc), EXIT_FAILED)
    run_queue_command(queue_id, detach=detach)


@app.command("checkpoints")
def checkpoints(queue_id: int = typer.Argument(None, help="only this queue's checkpoints")) -> None:
    """Checkpoint files available to resume from (storage.checkpoints_dir), newest first, each validated."""
    from forex_pipeline.queue.checkpoint import list_checkpoints

    settings, engine = _context()
    uuid = _get(engine, queue_id).queue_uuid if queue_id is not None else None
    table = Table("file", "queue", "created_at", "done/total", "valid")
    for item in list_checkpoints(settings.checkpoints_dir, uuid):
        table.add_row(str(item.path), item.name, item.created_at, f"{item.current_index}/{item.total_configs}", "yes" if item.problem is None else item.problem)
    console().print(table)


@app.command("run")
def run_queue_command(
    queue_id: int = typer.Argument(None, help="the queue to work (default: every pending or interrupted queue, highest priority first)"),
    detach: bool = typer.Option(False, help="let the Dagster daemon's sensor run it"),
) -> None:
    """Work a queue in this process, one Dagster run per batch of models, with a progress bar."""
    from forex_pipeline.cli.runner import run_in_foreground, start_detached

    if queue_id is None:  # every waiting queue in turn, highest priority first (re-read after each)
        from forex_pipeline.queue.lifecycle import next_queue

        _, engine = _context()
        queue = next_queue(engine)
        if queue is None:
            fail("no pending or interrupted queue to run", EXIT_FAILED)
        while queue is not None:
            console().print(f"queue {queue.id} ({queue.name}, priority {queue.priority})")
            run_queue_command(queue.id, detach=detach)
            if detach:
                return
            queue = next_queue(engine)
        return
    if detach:
        start_detached(queue_id)
        console().print(f"queue {queue_id} handed to the Dagster daemon (run `dagster dev`); watch with `forex-pipeline queue status {queue_id} --watch`")
        return
    final = run_in_foreground(queue_id, console())
    console().print_json(json.dumps(figures_of(final)))
    if final.status == QueueStatus.FAILED:
        fail(f"queue {queue_id} failed: {final.error_message}", EXIT_FAILED)
    if final.failed_models:
        fail(f"queue {queue_id} {final.status}, {final.failed_models} of {final.total_models} configurations failed "
             f"(`forex-pipeline history --status failed` shows why; `forex-pipeline queue resume {queue_id}` retries them)", EXIT_FAILED)
    if final.status == QueueStatus.PAUSED and final.error_message:
        fail(f"queue {queue_id} {final.error_message}", EXIT_FAILED)


@app.command("register-partitions")
def register_partitions_command() -> None:
    """Register every queue's configurations as Dagster partitions (run once on an instance created before
    the one-partition-per-configuration scheme; idempotent)."""
    from forex_pipeline.cli.runner import dagster_instance
    from forex_pipeline.dagster_defs.partitions import migrate_partitions
    from forex_pipeline.queue.lifecycle import configurations_of
    from forex_pipeline.store import training_queue
    from forex_pipeline.store.db import session_scope

    _, engine = _context()
    with session_scope(engine) as session:
        grids = [queue.grid_spec for queue in training_queue.list_queues(session)]
    added, dropped = migrate_partitions(dagster_instance(), (configurations_of(grid) for grid in grids))
    console().print(f"{len(grids)} queue(s): {added} configuration partition(s) added; {dropped} former model_spec partition(s) dropped")


@app.command("export")
def export(queue_id: int, output: Path = typer.Option(..., "--output", "-o", help="JSON file to write")) -> None:
    """Write the queue's checkpoint (grid, counts, state of every configuration) as JSON."""
    from forex_pipeline.io import atomic_write_text
    from forex_pipeline.queue.checkpoint import export_checkpoint

    _, engine = _context()
    _get(engine, queue_id)
    data = export_checkpoint(engine, queue_id)
    atomic_write_text(output, json.dumps(data, indent=2))
    console().print(f"wrote {output}", highlight=False, soft_wrap=True)


@app.command("import")
def import_(path: Path) -> None:
    """Recreate a queue from a checkpoint JSON (as paused; `queue resume` continues it)."""
    from forex_pipeline.queue.checkpoint import import_checkpoint, read_checkpoint, validate_checkpoint

    data = read_checkpoint(path)
    validate_checkpoint(data, f"checkpoint {path}")  # refused before the database is even opened
    settings, engine = _context()
    queue_id = import_checkpoint(engine, data, settings.artifacts_dir, source=f"checkpoint {path}")
    console().print(f"imported as queue {queue_id} (paused); continue with `forex-pipeline queue resume {queue_id}`")
