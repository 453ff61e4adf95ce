"""PostgreSQL binary COPY from column arrays: rows written in one round trip with no Python loop per row.

The binary format (PostgreSQL docs, "COPY" > "Binary Format") is a header, then per row a 16-bit field
count and per field a 32-bit length (-1 for NULL) followed by the value in network byte order. The
stream is laid out by numpy from the fields' cumulative sizes, rows in the arrays' order. Text values are UTF-8 bytes; jsonb is a
version byte (1) followed by the JSON text; timestamptz is microseconds since 2000-01-01 UTC.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
FIXED_KINDS: dict[str, str] = {"int4": ">i4", "int8": ">i8", "float8": ">f8", "bool": "?", "timestamptz": ">i8"}
VARIABLE_KINDS = ("text", "jsonb")


@dataclass(frozen=True)
class CopyColumn:
    """One column of a COPY: its name, its PostgreSQL binary kind and one value per row.

    Values: numbers as a numeric array (NaN is NULL for float8; `nulls` marks NULL for the others),
    text / jsonb as a sequence of str (None is NULL), timestamptz as one aware datetime for every row.
    """

    name: str
    kind: str
    values: Any
    nulls: np.ndarray | None = None


def _encoded(column: CopyColumn, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(the non-NULL values' bytes concatenated in row order as uint8, byte length per row with -1 for
    NULL) of one column."""
    if column.kind == "timestamptz":
        if not isinstance(column.values, datetime) or column.values.tzinfo is None:
            raise ValueError(f"COPY column {column.name!r}: give one timezone-aware datetime for every row")
        micros = (column.values - PG_EPOCH) // _MICROSECOND
        return np.full(n, micros, dtype=">i8").view(np.uint8), np.full(n, 8, dtype=np.int32)
    if column.kind in FIXED_KINDS:
        dtype = np.dtype(FIXED_KINDS[column.kind])
        values = np.asarray(column.values)
        if len(values) != n:
            raise ValueError(f"COPY column {column.name!r} has {len(values)} values for {n} rows")
        nulls = np.isnan(values) if column.kind == "float8" else np.zeros(n, dtype=bool)
        if column.nulls is not None:
            nulls = nulls | np.asarray(column.nulls, dtype=bool)
        payload = np.ascontiguousarray(values[~nulls].astype(dtype))
        return payload.view(np.uint8).reshape(-1), np.where(nulls, -1, dtype.itemsize).astype(np.int32)
    if column.kind not in VARIABLE_KINDS:
        raise ValueError(f"COPY column {column.name!r}: kind {column.kind!r} is not one of {[*FIXED_KINDS, *VARIABLE_KINDS]}")
    values = list(column.values)
    if len(values) != n:
        raise ValueError(f"COPY column {column.name!r} has {len(values)} values for {n} rows")
    prefix = b"\x01" if column.kind == "jsonb" else b""
    encoded = [None if v is None else prefix + str(v).encode("utf-8") for v in values]
    lengths = np.fromiter((-1 if b is None else len(b) for b in encoded), dtype=np.int32, count=n)
    return np.frombuffer(b"".join(b for b in encoded if b is not None), dtype=np.uint8), lengths


def copy_buffer(columns: Sequence[CopyColumn], n: int) -> bytes:
    """The whole binary COPY stream (header, rows in the arrays' order, trailer) of `n` rows, laid out
    by numpy in one pass: every field's offset from the cumulative sizes, then each column's length
    words and bytes scattered into place (no Python loop per row)."""
    encoded = [_encoded(c, n) for c in columns]
    lengths = np.stack([length for _, length in encoded], axis=1) if columns else np.zeros((n, 0), np.int32)
    sizes = 4 + np.maximum(lengths, 0).astype(np.int64)
    row_sizes = 2 + sizes.sum(axis=1)
    row_starts = len(HEADER) + np.cumsum(row_sizes) - row_sizes
    field_starts = row_starts[:, None] + 2 + np.cumsum(sizes, axis=1) - sizes
    buffer = np.empty(len(HEADER) + int(row_sizes.sum()) + len(TRAILER), dtype=np.uint8)
    buffer[: len(HEADER)] = np.frombuffer(HEADER, dtype=np.uint8)
    buffer[len(buffer) - len(TRAILER):] = np.frombuffer(TRAILER, dtype=np.uint8)
    buffer[row_starts[:, None] + np.arange(2)] = np.full(n, len(columns), dtype=">i2").view(np.uint8).reshape(n, 2)
    words = np.ascontiguousarray(lengths.astype(">i4")).view(np.uint8).reshape(n, len(columns), 4)
    buffer[field_starts[:, :, None] + np.arange(4)] = words
    for i, (data, length) in enumerate(encoded):
        present = length >= 0
        counts = length[present].astype(np.int64)
        starts = field_starts[present, i] + 4
        buffer[np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))] = data
    return buffer.tobytes()


def copy_columns(dbapi_connection: Any, table: str, columns: Sequence[CopyColumn], n: int) -> None:
    """COPY `n` rows of `columns` into `table` on a psycopg2 connection, in its open transaction."""
    names = ", ".join(c.name for c in columns)
    with dbapi_connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT binary)", io.BytesIO(copy_buffer(columns, n)))
