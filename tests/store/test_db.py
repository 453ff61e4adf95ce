"""Engines and sessions: SQLite pragmas, URL handling, transactions, UTC timestamps, parallel writers."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import StatementError

from forex_pipeline.store import db, training_queue, training_runs
from forex_pipeline.store.tables import TrainingQueue


def test_sqlite_engine_enables_foreign_keys_wal_and_busy_timeout(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'new' / 'dir' / 'x.db'}")
    try:
        with engine.connect() as connection:
            pragmas = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                       for name in ("foreign_keys", "journal_mode", "busy_timeout")}
    finally:
        engine.dispose()
    assert pragmas == {"foreign_keys": 1, "journal_mode": "wal", "busy_timeout": 60_000}
    assert (tmp_path / "new" / "dir").is_dir()


def test_in_memory_sqlite_has_foreign_keys_too() -> None:
    engine = db.make_engine("sqlite://")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_urls_are_normalised_and_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert db.parse_url("postgres://u:secret@h/d").drivername == "postgresql+psycopg2"
    assert db.parse_url("postgresql://u@h/d").drivername == "postgresql+psycopg2"
    assert "secret" not in db.describe_url("postgresql://u:secret@h/d")
    with pytest.raises(ValueError, match="neither SQLite nor PostgreSQL"):
        db.parse_url("mysql://u@h/d")
    monkeypatch.setenv("FOREX_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert db.parse_url().database == str(tmp_path / "env.db")
    monkeypatch.delenv("FOREX_DATABASE_URL")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert db.parse_url().database == str(tmp_path / "home" / "forex_pipeline.db")


def test_get_engine_shares_one_engine_per_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    first = db.get_engine(url)
    assert db.get_engine(url) is first
    db.dispose_engines()
    assert db.get_engine(url) is not first
    db.dispose_engines()


def test_session_scope_commits_or_rolls_back(engine: Engine) -> None:
    with db.session_scope(engine) as session:
        training_queue.create_queue(session, "kept", {}, "k", 1)
    with pytest.raises(ZeroDivisionError), db.session_scope(engine) as session:
        training_queue.create_queue(session, "lost", {}, "l", 1)
        1 / 0
    with db.session_scope(engine) as session:
        assert [q.name for q in training_queue.list_queues(session)] == ["kept"]


def test_timestamps_round_trip_as_utc_and_naive_ones_are_refused(engine: Engine) -> None:
    plus_two = timezone(timedelta(hours=2))
    started = datetime(2024, 3, 31, 3, 30, 15, 123456, tzinfo=plus_two)
    with db.session_scope(engine) as session:
        queue = training_queue.create_queue(session, "q", {}, "q", 1)
        session.get(TrainingQueue, queue.id).started_at = started
    with db.session_scope(engine) as session:
        stored = training_queue.get_queue(session, queue.id).started_at
    assert stored == started and stored.utcoffset() == timedelta(0) and stored.hour == 1
    with pytest.raises(StatementError, match="naive datetime"), db.session_scope(engine) as session:
        session.get(TrainingQueue, queue.id).started_at = datetime(2024, 1, 1)
        session.flush()


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    from .conftest import run_identity

    with pytest.raises(IntegrityError), db.session_scope(engine) as session:
        training_runs.insert_training_run(session, run_identity(1), queue_id=424242)


def test_parallel_sqlite_writers_neither_fail_nor_lose_updates(tmp_path: Path, sqlite_template: Path) -> None:
    """Read-then-write transactions from separate connections serialize (BEGIN IMMEDIATE + busy timeout)."""
    target = tmp_path / "shared.db"
    target.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite:///{target}"
    with db.session_scope(db.get_engine(url)) as session:
        queue_id = training_queue.create_queue(session, "shared", {}, "s", 100).id
    errors: list[BaseException] = []

    def worker() -> None:
        engine = db.make_engine(url)
        try:
            for _ in range(15):
                with db.session_scope(engine) as session:
                    row = session.get(TrainingQueue, queue_id, populate_existing=True)
                    row.completed_models = row.completed_models + 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.session_scope(db.get_engine(url)) as session:
        assert training_queue.get_queue(session, queue_id).completed_models == 60
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    db.dispose_engines()


def _process_worker(url: str, queue_id: int, first: int) -> None:
    """Child process: record five runs and count them on the shared queue, one transaction each."""
    from .conftest import run_identity

    for n in range(first, first + 5):
        with db.session_scope(db.get_engine(url)) as session:
            training_runs.upsert_training_run(session, run_identity(n), queue_id=queue_id)
            training_queue.update_queue_counts(session, queue_id, completed=1)


def test_parallel_processes_share_one_sqlite_file(tmp_path: Path, sqlite_template: Path) -> None:
    import multiprocessing

    target = tmp_path / "shared.db"
    target.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite:///{target}"
    with db.session_scope(db.get_engine(url)) as session:
        queue_id = training_queue.create_queue(session, "shared", {}, "s", 15).id
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_process_worker, args=(url, queue_id, first)) for first in (0, 5, 10)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    with db.session_scope(db.get_engine(url)) as session:
        assert training_queue.get_queue(session, queue_id).completed_models == 15
        assert len(training_runs.runs_of_queue(session, queue_id)) == 15
    db.dispose_engines()
