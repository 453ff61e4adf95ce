"""Names every layer shares: the partition-key codec, the regime sentinels and the status enums.

One definition each, so the database, the queue, the CLI and the Dagster shell cannot drift apart.
Statuses are `StrEnum`s: they compare equal to (and are stored as) their plain string values.
"""

from __future__ import annotations

from enum import StrEnum

FEATURE_SET_DIMENSION = "feature_set"
MODEL_SPEC_DIMENSION = "model_spec"
PARTITION_KEY_DELIMITER = "|"

REGIME_ALL = "all"
"""The pseudo-regime of a backtest row that covers every bar of the segment."""
REGIME_UNCLASSIFIED = "unclassified"
"""The label of a bar that no regime rule matches."""
REGIME_SENTINELS = (REGIME_ALL, REGIME_UNCLASSIFIED)


class RunStatus(StrEnum):
    """training_runs.status: the life of one model configuration."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class QueueStatus(StrEnum):
    """training_queue.status: the life of one submitted grid."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


FINISHED_QUEUE_STATUSES = frozenset({QueueStatus.CANCELLED, QueueStatus.COMPLETED})
"""Queue states no command can continue (a failed or interrupted queue can be resumed)."""


def multi_partition_key(feature_set_key: str, model_spec_key: str) -> dict[str, str]:
    """Keys by dimension for dagster.MultiPartitionKey (dimensions `feature_set` and `model_spec`)."""
    return {FEATURE_SET_DIMENSION: feature_set_key, MODEL_SPEC_DIMENSION: model_spec_key}


def multi_partition_key_string(feature_set_key: str, model_spec_key: str) -> str:
    """The string Dagster gives a MultiPartitionKey: keys joined by '|' in dimension-name order."""
    keys = multi_partition_key(feature_set_key, model_spec_key)
    return PARTITION_KEY_DELIMITER.join(keys[name] for name in sorted(keys))


def split_multi_partition_key(key: str) -> tuple[str, str]:
    """(feature_set key, model_spec key) of a multi-partition key string; refuses anything else."""
    parts = key.split(PARTITION_KEY_DELIMITER)
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"partition key {key!r} is not '<feature_set>{PARTITION_KEY_DELIMITER}<model_spec>'")
    by_dimension = dict(zip(sorted((FEATURE_SET_DIMENSION, MODEL_SPEC_DIMENSION)), parts))
    return by_dimension[FEATURE_SET_DIMENSION], by_dimension[MODEL_SPEC_DIMENSION]
