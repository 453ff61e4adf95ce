"""Names every layer shares: the partition-key codec, the regime sentinels and the status enums.

One definition each, so the database, the queue, the CLI and the Dagster shell cannot drift apart.
Statuses are `StrEnum`s: they compare equal to (and are stored as) their plain string values.
"""

from __future__ import annotations

from enum import StrEnum

FEATURE_SET_DIMENSION = "feature_set"
"""The spec-file kind of a feature set and the name of the `features` asset's dynamic partitions."""
MODEL_SPEC_DIMENSION = "model_spec"
"""The spec-file kind of a model spec."""
MODEL_CONFIG_PARTITIONS = "model_config"
"""The dynamic partitions of `trained_model` and `inference_backtests`: one key per model configuration."""
PARTITION_KEY_DELIMITER = "|"

DATABASE_URL_ENV = "FOREX_DATABASE_URL"
"""The environment variable whose database URL wins over the settings' storage.database_url."""

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


def model_config_key(feature_set_key: str, model_spec_key: str) -> str:
    """The partition key of one model configuration (`EURUSD-1h-d365-9f68a3f0|rf-none-h5-b2520f5b`).

    One dynamic partition per configuration (MODEL_CONFIG_PARTITIONS): the feature set's key, then the
    model spec's, so a key names its feature set and sorts by it. The same string as Dagster's former
    feature_set x model_spec multi-partition key, so events recorded under that scheme keep their keys.
    """
    if not feature_set_key or not model_spec_key or PARTITION_KEY_DELIMITER in feature_set_key + model_spec_key:
        raise ValueError(f"feature set key {feature_set_key!r} and model spec key {model_spec_key!r} must be non-empty, without {PARTITION_KEY_DELIMITER!r}")
    return f"{feature_set_key}{PARTITION_KEY_DELIMITER}{model_spec_key}"


def split_model_config_key(key: str) -> tuple[str, str]:
    """(feature_set key, model_spec key) of a model configuration's partition key; refuses anything else."""
    parts = key.split(PARTITION_KEY_DELIMITER)
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"partition key {key!r} is not '<feature_set>{PARTITION_KEY_DELIMITER}<model_spec>'")
    return parts[0], parts[1]
