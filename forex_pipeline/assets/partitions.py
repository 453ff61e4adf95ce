"""Partition definitions shared by the model-configuration assets."""

from __future__ import annotations

import dagster as dg

FEATURE_SET = "feature_set"
MODEL_SPEC = "model_spec"

feature_set_partitions = dg.DynamicPartitionsDefinition(name=FEATURE_SET)
model_spec_partitions = dg.DynamicPartitionsDefinition(name=MODEL_SPEC)
model_config_partitions = dg.MultiPartitionsDefinition(
    {FEATURE_SET: feature_set_partitions, MODEL_SPEC: model_spec_partitions}
)


def model_config_key(feature_set_key: str, model_spec_key: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({FEATURE_SET: feature_set_key, MODEL_SPEC: model_spec_key})
