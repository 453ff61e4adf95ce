"""Binary COPY from arrays: every kind, NULLs in each, unicode text and JSON, rows of mixed lengths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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


def reference_stream(columns: list[CopyColumn], n: int) -> bytes:
    """The binary COPY stream written the slow, obvious way: struct.pack per row and field (PostgreSQL docs,
    "COPY" > "Binary Format"), to check the vectorised layout against."""
    import struct

    epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)
    out = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0)]
    formats = {"int4": ">i", "int8": ">q", "float8": ">d", "bool": "?"}
    for row in range(n):
        out.append(struct.pack(">h", len(columns)))
        for column in columns:
            if column.kind == "timestamptz":
                micros = (column.values - epoch) // timedelta(microseconds=1)
                out.append(struct.pack(">iq", 8, micros))
                continue
            value = column.values[row]
            null = column.nulls is not None and bool(column.nulls[row])
            if column.kind in formats:
                null = null or (column.kind == "float8" and value != value)
                if null:
                    out.append(struct.pack(">i", -1))
                else:
                    data = struct.pack(formats[column.kind], value.item() if hasattr(value, "item") else value)
                    out.append(struct.pack(">i", len(data)) + data)
            elif value is None:
                out.append(struct.pack(">i", -1))
            else:
                data = (b"\x01" if column.kind == "jsonb" else b"") + str(value).encode("utf-8")
                out.append(struct.pack(">i", len(data)) + data)
    out.append(struct.pack(">h", -1))
    return b"".join(out)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-(2**31), 2**31 - 1),
            st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
            st.one_of(st.none(), st.text(max_size=12)),
            st.one_of(st.none(), st.lists(st.floats(-1e6, 1e6), max_size=5).map(json.dumps)),
            st.booleans(),
        ),
        min_size=0,
        max_size=30,
    )
)
def test_copy_buffer_equals_the_row_by_row_layout(rows: list[tuple]) -> None:
    n = len(rows)
    ints, floats, texts, docs, flags = (list(c) for c in zip(*rows)) if rows else ([], [], [], [], [])
    columns = [
        CopyColumn("i4", "int4", np.array(ints, dtype=np.int64)),
        CopyColumn("f8", "float8", np.array([np.nan if f is None else f for f in floats], dtype=np.float64)),
        CopyColumn("t", "text", texts),
        CopyColumn("j", "jsonb", docs),
        CopyColumn("b", "bool", np.array(flags, dtype=bool), nulls=np.array([i % 3 == 0 for i in range(n)], dtype=bool)),
        CopyColumn("at", "timestamptz", AT),
    ]
    assert copy_buffer(columns, n) == reference_stream(columns, n)


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
