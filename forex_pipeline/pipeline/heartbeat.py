"""The heartbeat of a working process: its claims' leases and its queue's heartbeat, renewed on a thread.

A claim whose lease is not renewed for `recovery.stale_after_seconds` belongs to a dead worker: the
daemon's queue sensor releases it and the configuration is trained elsewhere (docs/deployment.md).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from forex_pipeline.store import training_queue, training_runs
from forex_pipeline.store.db import session_scope
from forex_pipeline.store.training_runs import WorkerIdentity


def beat(engine: Engine, worker: WorkerIdentity, queue_id: int | None) -> None:
    """One beat: renew this worker's claims, then stamp its queue's heartbeat. Two short transactions,
    so a beat never holds a claim's row lock while it waits for the queue's (no lock-order deadlock)."""
    with session_scope(engine) as session:
        training_runs.renew_leases(session, worker)
    if queue_id is not None:
        with session_scope(engine) as session:
            training_queue.heartbeat(session, queue_id)


@contextmanager
def heartbeat_thread(engine: Engine, seconds: float, worker: WorkerIdentity, queue_id: int | None = None) -> Iterator[None]:
    """Beat every `seconds` while the body runs (a model trains); a missed beat is retried by the next."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            try:
                beat(engine, worker, queue_id)
            except Exception:  # the database may be briefly unreachable; the lease tolerates missed beats
                pass

    thread = threading.Thread(target=loop, name=f"heartbeat-{worker.pid}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
