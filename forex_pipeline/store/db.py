"""Engines, sessions and Alembic migrations of the project database (SQLite or PostgreSQL).

SQLite is opened in WAL mode with foreign keys on and a busy timeout, and every transaction starts
with BEGIN IMMEDIATE: writers from parallel processes queue on the lock instead of failing with
"database is locked" when a read transaction later tries to write.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from threading import Lock
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_SECONDS = 60.0
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = Lock()


def default_url() -> str:
    """The configured database URL: FOREX_DATABASE_URL, settings, else SQLite under DAGSTER_HOME."""
    from forex_pipeline.settings import get_settings

    return get_settings().database_url


def parse_url(url: str | URL | None = None) -> URL:
    """A SQLAlchemy URL; `postgres://` and `postgresql://` are read as psycopg2, other schemes refused."""
    parsed = make_url(url if url is not None else default_url())
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"database URL {parsed.render_as_string(hide_password=True)!r} is neither SQLite nor PostgreSQL"
        )
    return parsed


def describe_url(url: str | URL | None = None) -> str:
    """The URL with its password hidden, for messages and logs."""
    return parse_url(url).render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(database)


def _configure_sqlite(engine: Engine, file_backed: bool) -> None:
    """Foreign keys, WAL and a busy timeout on every connection; BEGIN IMMEDIATE for every transaction."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
        if file_backed:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | URL | None = None, *, echo: bool = False, pool_size: int | None = None) -> Engine:
    """A new engine for `url` (default: the configured URL); creates a SQLite file's parent folder.
    A PostgreSQL pool holds `pool_size` connections (default: performance.database_connection_pool_size)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "postgresql":
        if pool_size is None:
            from forex_pipeline.settings import get_settings

            pool_size = get_settings().performance.database_connection_pool_size
        return create_engine(parsed, echo=echo, pool_pre_ping=True, future=True, pool_size=pool_size)
    path = sqlite_path(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False}
    )
    _configure_sqlite(engine, file_backed=path is not None)
    return engine


def get_engine(url: str | URL | None = None) -> Engine:
    """A process-wide engine per URL (one connection pool), for callers that do not manage engines."""
    key = parse_url(url).render_as_string(hide_password=False)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = make_engine(key)
        return _ENGINES[key]


def dispose_engines() -> None:
    """Close and forget every engine of get_engine (before a fork, or before dropping a database)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


def _forget_engines_after_fork() -> None:
    """In a forked child, drop inherited pools without closing the parent's connections."""
    global _ENGINES_LOCK
    _ENGINES_LOCK = Lock()
    for engine in _ENGINES.values():
        engine.dispose(close=False)
    _ENGINES.clear()


os.register_at_fork(after_in_child=_forget_engines_after_fork)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back (and re-raise) on an exception."""
    with Session(engine if engine is not None else get_engine(), expire_on_commit=False) as session:
        with session.begin():
            yield session


def alembic_config(url: str | URL | None = None) -> Any:
    """An Alembic Config pointing at the packaged migrations, independent of the working directory."""
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    rendered = parse_url(url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def _run_with_connection(url: str | URL | None, action: Any) -> None:
    """Run an Alembic command on one connection of a fresh engine (so SQLite pragmas apply)."""
    config = alembic_config(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            action(config)
    finally:
        engine.dispose()


def upgrade(url: str | URL | None = None, revision: str = "head") -> str | None:
    """Migrate the database up to `revision`; returns the revision it is at afterwards."""
    from alembic import command

    _run_with_connection(url, lambda config: command.upgrade(config, revision))
    return current(url)


def downgrade(url: str | URL | None = None, revision: str = "base") -> str | None:
    """Migrate the database down to `revision` (default: base, every project table dropped)."""
    from alembic import command

    _run_with_connection(url, lambda config: command.downgrade(config, revision))
    return current(url)


def current(url: str | URL | None = None) -> str | None:
    """The Alembic revision the database is at, or None if it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            heads = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    return heads[0] if heads else None


def head_revision() -> str:
    """The newest revision shipped with the package."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise RuntimeError(f"no Alembic revision found in {MIGRATIONS_DIR / 'versions'}")
    return head
