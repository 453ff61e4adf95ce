"""Canonical hashing of configurations: the same configuration always gives the same hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

SHORT_HASH_LENGTH = 8


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace; floats that are whole numbers stay floats."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def config_hash(value: Any) -> str:
    """Full sha256 hex digest of the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def short_hash(value: Any) -> str:
    return config_hash(value)[:SHORT_HASH_LENGTH]
