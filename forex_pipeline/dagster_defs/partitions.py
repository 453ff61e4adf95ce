"""Partition definitions shared by the model-configuration assets, and how keys are registered."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import dagster as dg

from forex_pipeline.keys import FEATURE_SET_DIMENSION, MODEL_SPEC_DIMENSION, multi_partition_key

# Dagster stores dynamic partitions with one SQL statement per call; SQLite fails past ~36k variables.
DYNAMIC_PARTITION_CHUNK = 10_000
T = TypeVar("T")

feature_set_partitions = dg.DynamicPartitionsDefinition(name=FEATURE_SET_DIMENSION)
model_spec_partitions = dg.DynamicPartitionsDefinition(name=MODEL_SPEC_DIMENSION)
model_config_partitions = dg.MultiPartitionsDefinition(
    {FEATURE_SET_DIMENSION: feature_set_partitions, MODEL_SPEC_DIMENSION: model_spec_partitions}
)


def model_config_key(feature_set_key: str, model_spec_key: str) -> dg.MultiPartitionKey:
    """The Dagster key of one model configuration (same string as keys.multi_partition_key_string)."""
    return dg.MultiPartitionKey(multi_partition_key(feature_set_key, model_spec_key))


def chunks(seq: Sequence[T], size: int = DYNAMIC_PARTITION_CHUNK) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items (dynamic partitions are added in bounded batches)."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    for start in range(0, len(seq), size):
        yield list(seq[start : start + size])
