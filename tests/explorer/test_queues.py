"""The queue panel's rows and its pause / resume / cancel, through the lifecycle functions the CLI calls."""

from __future__ import annotations

import pytest

from forex_pipeline.explorer import queues
from forex_pipeline.queue.lifecycle import QueueError
from tests.support import TINY_GRID


def _submit(context) -> int:  # noqa: ANN001
    from forex_pipeline.queue.lifecycle import submit_grid

    return submit_grid(context.engine, TINY_GRID, context.artifacts_dir)


def _status(context, queue_id: int) -> str:  # noqa: ANN001
    from forex_pipeline.store.training_queue import get_queue

    with context.read_session() as session:
        return str(get_queue(session, queue_id).status)


def test_rows_show_progress_and_hide_finished_queues_unless_asked(context) -> None:
    first, second = _submit(context), _submit(context)
    rows = {row["id"]: row for row in queues.queue_rows(context, show_finished=False)}
    assert rows[first]["progress"] == "0/6 (0%)" and rows[first]["percent"] == 0.0 and rows[first]["status"] == "pending"
    queues.control(context, "cancel", second)
    assert [row["id"] for row in queues.queue_rows(context, show_finished=False)] == [first]
    assert {row["id"] for row in queues.queue_rows(context, show_finished=True)} == {first, second}


def test_pause_resume_and_cancel_as_the_cli_does(context) -> None:
    queue_id = _submit(context)
    assert queues.control(context, "pause", queue_id) == f"queue {queue_id}: paused"
    assert _status(context, queue_id) == "paused"
    assert "handed to the Dagster daemon" in queues.control(context, "resume", queue_id)
    assert _status(context, queue_id) == "running"
    assert queues.control(context, "pause", queue_id) == f"queue {queue_id}: pause requested"
    queues.control(context, "cancel", queue_id)
    with pytest.raises(QueueError, match="nothing to pause"):
        queues.control(context, "pause", _cancelled(context, queue_id))


def _cancelled(context, queue_id: int) -> int:  # noqa: ANN001
    from forex_pipeline.keys import QueueStatus
    from forex_pipeline.store.training_queue import set_queue_status

    with context.write_session() as session:
        set_queue_status(session, queue_id, QueueStatus.CANCELLED)
    return queue_id
