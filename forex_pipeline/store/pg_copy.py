"""PostgreSQL binary COPY from column arrays: rows written in one round trip with no Python loop per row.

The binary format (PostgreSQL docs, "COPY" > "Binary Format") is a header, then per row a 16-bit field
count and per field a 32-bit length (-1 for NULL) followed by the value in network byte order. Rows
whose fields have the same lengths share one numpy structured dtype, so each group of alike rows is
laid out by numpy at once; groups follow each other in the stream, so the table's row order is not
the arrays' order (give ids explicitly when they matter). Text values are UTF-8 bytes; jsonb is a
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
    """(payload per row, byte length per row with -1 for NULL) of one column."""
    if column.kind == "timestamptz":
        if not isinstance(column.values, datetime) or column.values.tzinfo is None:
            raise ValueError(f"COPY column {column.name!r}: give one timezone-aware datetime for every row")
        micros = (column.values - PG_EPOCH) // _MICROSECOND
        return np.full(n, micros, dtype=">i8"), np.full(n, 8, dtype=np.int32)
    if column.kind in FIXED_KINDS:
        dtype = np.dtype(FIXED_KINDS[column.kind])
        values = np.asarray(column.values)
        if len(values) != n:
            raise ValueError(f"COPY column {column.name!r} has {len(values)} values for {n} rows")
        nulls = np.isnan(values) if column.kind == "float8" else np.zeros(n, dtype=bool)
        if column.nulls is not None:
            nulls = nulls | np.asarray(column.nulls, dtype=bool)
        payload = np.where(nulls, 0, values).astype(dtype)
        return payload, np.where(nulls, -1, dtype.itemsize).astype(np.int32)
    if column.kind not in VARIABLE_KINDS:
        raise ValueError(f"COPY column {column.name!r}: kind {column.kind!r} is not one of {[*FIXED_KINDS, *VARIABLE_KINDS]}")
    values = list(column.values)
    if len(values) != n:
        raise ValueError(f"COPY column {column.name!r} has {len(values)} values for {n} rows")
    prefix = b"\x01" if column.kind == "jsonb" else b""
    encoded = [None if v is None else prefix + str(v).encode("utf-8") for v in values]
    lengths = np.fromiter((-1 if b is None else len(b) for b in encoded), dtype=np.int32, count=n)
    payload = np.array([b or b"" for b in encoded], dtype=f"S{max(1, int(lengths.max(initial=0)))}")
    return payload, lengths


def copy_buffer(columns: Sequence[CopyColumn], n: int) -> bytes:
    """The whole binary COPY stream (header, rows, trailer) of `n` rows."""
    encoded = [_encoded(c, n) for c in columns]
    lengths = np.stack([length for _, length in encoded], axis=1) if columns else np.zeros((n, 0), np.int32)
    keys = np.ascontiguousarray(lengths).view(np.dtype((np.void, lengths.dtype.itemsize * lengths.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    parts = [HEADER]
    for group, row in enumerate(first):
        rows = np.flatnonzero(inverse == group)
        fields: list[tuple[str, Any]] = [("count", ">i2")]
        for i, (payload, _) in enumerate(encoded):
            size = int(lengths[row, i])
            fields.append((f"l{i}", ">i4"))
            if size >= 0:
                fields.append((f"v{i}", payload.dtype if payload.dtype.kind != "S" else f"S{size}"))
        block = np.empty(len(rows), dtype=np.dtype(fields))
        block["count"] = len(columns)
        for i, (payload, _) in enumerate(encoded):
            block[f"l{i}"] = lengths[row, i]
            if lengths[row, i] >= 0:
                block[f"v{i}"] = payload[rows]
        parts.append(block.tobytes())
    parts.append(TRAILER)
    return b"".join(parts)


def copy_columns(dbapi_connection: Any, table: str, columns: Sequence[CopyColumn], n: int) -> None:
    """COPY `n` rows of `columns` into `table` on a psycopg2 connection, in its open transaction."""
    names = ", ".join(c.name for c in columns)
    with dbapi_connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT binary)", io.BytesIO(copy_buffer(columns, n)))
