"""Binary COPY from arrays: every kind, NULLs in each, unicode text and JSON, rows of mixed lengths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from forex_pipeline.store.pg_copy import CopyColumn, copy_buffer, copy_columns

from .conftest import postgres_database

AT = datetime(2026, 12, 6, 7, 30, 15, 123456, tzinfo=timezone.utc)


@pytest.fixture()
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.mark.postgres
def test_copy_round_trips_every_kind_with_nulls(pg_url: str) -> None:
    engine = create_engine(pg_url)
    names = ["direct", "recursive", None, "régime ✓", ""]
    docs = [json.dumps([1.5, -2.0e-5]), None, json.dumps({"a": "ü"}), json.dumps([]), json.dumps([0.0] * 16)]
    columns = [
        CopyColumn("i4", "int4", np.array([1, -2, 3, 2**31 - 1, 0])),
        CopyColumn("i8", "int8", np.array([2**40, 0, -1, 5, 6]), nulls=np.array([False, True, False, False, False])),
        CopyColumn("f8", "float8", np.array([0.1, np.nan, -1e300, 2.5, 0.0])),
        CopyColumn("b", "bool", np.array([True, False, True, False, True]), nulls=np.array([False, False, False, True, False])),
        CopyColumn("t", "text", names),
        CopyColumn("j", "jsonb", docs),
        CopyColumn("at", "timestamptz", AT),
    ]
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE copied (k serial, i4 integer, i8 bigint, f8 double precision, b boolean, "
                "t varchar(64), j jsonb, at timestamptz)"
            )
            copy_columns(connection.connection.dbapi_connection, "copied", columns, 5)
            rows = connection.execute(text("SELECT i4, i8, f8, b, t, j, at FROM copied ORDER BY i4")).all()
    finally:
        engine.dispose()
    expected = sorted(
        zip([1, -2, 3, 2**31 - 1, 0], [2**40, None, -1, 5, 6], [0.1, None, -1e300, 2.5, 0.0], [True, False, True, None, True],
            names, [None if d is None else json.loads(d) for d in docs], [AT] * 5),
        key=lambda row: row[0],
    )
    assert [tuple(r) for r in rows] == expected


def test_copy_buffer_refuses_wrong_lengths_and_kinds() -> None:
    with pytest.raises(ValueError, match="'x' has 2 values for 3 rows"):
        copy_buffer([CopyColumn("x", "float8", np.zeros(2))], 3)
    with pytest.raises(ValueError, match="kind 'money'"):
        copy_buffer([CopyColumn("x", "money", np.zeros(3))], 3)
    with pytest.raises(ValueError, match="timezone-aware"):
        copy_buffer([CopyColumn("x", "timestamptz", datetime(2026, 1, 1))], 3)


def test_copy_buffer_keeps_row_order_with_mixed_lengths_and_nulls() -> None:
    import struct

    texts = [None, "a", "bbb", None, "", "cc"]
    stream = copy_buffer([CopyColumn("i", "int4", np.arange(6)), CopyColumn("t", "text", texts)], 6)
    position, rows = 19, []
    while struct.unpack(">h", stream[position:position + 2])[0] != -1:
        position, row = position + 2, []
        for _ in range(2):
            (size,) = struct.unpack(">i", stream[position:position + 4])
            position += 4
            row.append(None if size < 0 else stream[position:position + size])
            position += max(size, 0)
        rows.append(row)
    assert position + 2 == len(stream)
    assert [struct.unpack(">i", i)[0] for i, _ in rows] == list(range(6))
    assert [None if t is None else t.decode() for _, t in rows] == texts
