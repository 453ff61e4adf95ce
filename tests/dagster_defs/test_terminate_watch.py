"""Terminate in the UI reaches a foreground batch run only as its status: the watcher interrupts the
main thread once the run reads canceling, and never for a run that goes on."""

from __future__ import annotations

import time
import uuid

import dagster as dg
import pytest

from forex_pipeline.dagster_defs.jobs import interrupted_when_terminated


@dg.op
def _noop() -> None:
    pass


@dg.job
def _tiny() -> None:
    _noop()


def _wait(seconds: float) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        time.sleep(0.01)


def test_a_canceling_run_interrupts_the_block_and_a_running_one_does_not() -> None:
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(_tiny, run_id=str(uuid.uuid4()))
        with interrupted_when_terminated(instance, run.run_id, every=0.02):
            _wait(0.3)  # not terminated: the block runs to its end
        other = instance.create_run_for_job(_tiny, run_id=str(uuid.uuid4()))
        with pytest.raises(dg.DagsterExecutionInterruptedError):
            with interrupted_when_terminated(instance, other.run_id, every=0.02):
                instance.report_run_canceling(other)
                _wait(10.0)
