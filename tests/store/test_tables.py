"""store/tables.py helpers that the schema's columns rely on."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

from forex_pipeline.store.tables import new_uuid


def test_new_uuid_is_a_version_7_uuid_ordered_by_time() -> None:
    """RFC 9562 section 5.7: version 7, the RFC variant, the Unix milliseconds in the top 48 bits, so a
    later value sorts after an earlier one (the unique index on backtest_uuid grows at its right edge)."""
    before = time.time_ns() // 1_000_000
    first = uuid.UUID(new_uuid())
    time.sleep(0.002)
    second = uuid.UUID(new_uuid())
    after = time.time_ns() // 1_000_000
    for value in (first, second):
        assert value.version == 7 and value.variant == uuid.RFC_4122
        assert before <= value.int >> 80 <= after
    assert str(first) < str(second)
    assert datetime.fromtimestamp((first.int >> 80) / 1000, timezone.utc).year >= 2026
    assert len({new_uuid() for _ in range(10_000)}) == 10_000
