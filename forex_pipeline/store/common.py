"""Helpers every repository module shares: ORM row -> frozen record, chunked IN lists, dialect
inserts, status and timezone checks, select -> DataFrame. All SQL of the package lives in `store/`:
callers get plain records or DataFrames, never ORM objects; no function here commits (wrap calls in
`db.session_scope`, one unit of work per transaction).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

if TYPE_CHECKING:   # pandas loads with select_frame: the CLI's record reads never need it
    import pandas as pd

IN_CHUNK = 500
R = TypeVar("R")


def record_of(cls: type[R], row: Any) -> R:
    """Copy the columns of an ORM row into a frozen record."""
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})  # type: ignore[arg-type]


def in_chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    """Slices short enough for one IN (...) on SQLite."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def dialect_insert(session: Session, table: Any) -> Any:
    """INSERT with ON CONFLICT support on the session's backend."""
    name = session.get_bind().dialect.name
    if name == "postgresql":   # dialect modules load on use: importing them all costs a CLI start ~0.1 s
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def check_status(status: str, allowed: tuple[str, ...], what: str) -> None:
    if status not in allowed:
        raise ValueError(f"{what} status {status!r} is not one of {', '.join(allowed)}")


def aware_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} {value.isoformat()} is naive; give a timezone-aware (UTC) datetime")
    return value.astimezone(timezone.utc)


def select_frame(
    session: Session, statement: Select[Any], columns: Sequence[str], float_columns: Iterable[str] = ()
) -> pd.DataFrame:
    """Run a select into a DataFrame with the given column names; float columns get NaN for NULL."""
    import pandas as pd

    frame = pd.DataFrame([tuple(row) for row in session.execute(statement)], columns=list(columns))
    for name in float_columns:
        if name in frame.columns:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


def is_nan(value: Any) -> bool:
    """None or a float NaN (numpy floats included)."""
    return value is None or (isinstance(value, float) and math.isnan(value))
