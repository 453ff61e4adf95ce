"""The partitions of the model-grid assets, and how a grid's keys are registered.

`features` has one dynamic partition per feature set; `trained_model` and `inference_backtests`
have one per model configuration (`ModelConfiguration.partition_key`), so the partitions page lists
exactly the configurations that were asked for, never a feature_set x model_spec cross product.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import dagster as dg

from forex_pipeline.keys import FEATURE_SET_DIMENSION, MODEL_CONFIG_PARTITIONS

if TYPE_CHECKING:
    from forex_pipeline.models.spec import ModelConfiguration

# Dagster stores dynamic partitions with one SQL statement per call; SQLite fails past ~36k variables.
DYNAMIC_PARTITION_CHUNK = 10_000
T = TypeVar("T")

feature_set_partitions = dg.DynamicPartitionsDefinition(name=FEATURE_SET_DIMENSION)
model_config_partitions = dg.DynamicPartitionsDefinition(name=MODEL_CONFIG_PARTITIONS)


def chunks(seq: Sequence[T], size: int = DYNAMIC_PARTITION_CHUNK) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items (dynamic partitions are added in bounded batches)."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    for start in range(0, len(seq), size):
        yield list(seq[start : start + size])


def add_new_keys(instance: dg.DagsterInstance, partitions_name: str, keys: Iterable[str]) -> int:
    """Add the keys the dynamic partitions `partitions_name` do not hold yet, in first-seen order; returns how many.

    Nothing is written when every key is there: each write changes the partitions' id, which sends
    the UI's partition-status cache down its cold path on the next page load."""
    existing = set(instance.get_dynamic_partitions(partitions_name))
    new = [key for key in dict.fromkeys(keys) if key not in existing]
    for chunk in chunks(new):
        instance.add_dynamic_partitions(partitions_name, chunk)
    return len(new)


def register_partitions(instance: dg.DagsterInstance, configurations: Sequence[ModelConfiguration]) -> int:
    """Register a grid's partitions from the keys its configurations carry (no key is recomputed):
    its feature sets under `feature_set`, its configurations under `model_config`; when any key was
    new, rebuild the UI's partition status of the grid assets (`refresh_partition_status`), so the
    page opened after a submission reads a current cache. Returns how many configuration keys were new."""
    new_feature_sets = add_new_keys(instance, FEATURE_SET_DIMENSION, (c.feature_set_key for c in configurations))
    new_configurations = add_new_keys(instance, MODEL_CONFIG_PARTITIONS, (c.partition_key for c in configurations))
    if new_feature_sets or new_configurations:
        refresh_partition_status(instance)
    return new_configurations


FORMER_MODEL_SPEC_PARTITIONS = "model_spec"
"""The dynamic partitions of the former feature_set x model_spec multi-partitions (before `model_config`)."""


def migrate_partitions(instance: dg.DagsterInstance, grids: Iterable[Sequence[ModelConfiguration]]) -> tuple[int, int]:
    """Bring an instance from the feature_set x model_spec multi-partitions to one partition per configuration.

    Registers the configurations of `grids` (every queue's grid) under `model_config`: a key is the
    string the multi-partition key was, so the events recorded before keep showing under it. Drops
    the `model_spec` dynamic partitions, which nothing defines any more. Idempotent; returns
    (configuration keys added, former model_spec keys dropped)."""
    added = sum(register_partitions(instance, configurations) for configurations in grids)
    former = instance.get_dynamic_partitions(FORMER_MODEL_SPEC_PARTITIONS)
    for key in former:
        instance.delete_dynamic_partition(FORMER_MODEL_SPEC_PARTITIONS, key)
    return added, len(former)


# The assets on each dynamic partitions definition (assets/model_configs.py).
PARTITIONED_ASSETS: dict[str, tuple[tuple[str, ...], dg.DynamicPartitionsDefinition]] = {
    MODEL_CONFIG_PARTITIONS: (("trained_model", "inference_backtests"), model_config_partitions),
    FEATURE_SET_DIMENSION: (("features",), feature_set_partitions),
}


def refresh_partition_status(instance: dg.DagsterInstance, log: Any = None) -> list[str]:
    """Rebuild the UI's partition-status cache of the grid assets whose partitions changed since it was
    built (a grid was submitted); returns the assets rebuilt.

    Dagster keeps each asset's materialized and failed partitions in a cache tied to the partitions'
    id, which every new key changes: the next page load then rebuilds it from the event log, 1.3 s at
    49,000 materialized configurations (benchmarks/bench_ui_partitions.py, issue 14). Rebuilt here when
    a grid's keys are registered (every submission, from the CLI, the API or the UI) and on each tick
    of the daemon's queue sensor (keys added any other way), the page a user opens reads the current
    cache (0.3 s). An asset never materialized has no cache to rebuild. Best effort: the cache is
    Dagster's, and without it a page only takes its slower path, so a failure is logged (`log`, default
    this module's logger) and neither a submission nor the queue feeder stops on it."""
    try:
        return _rebuild_stale_status(instance)
    except Exception as exc:  # noqa: BLE001 - see the docstring: nothing depends on the cache but page speed
        (log or logging.getLogger(__name__)).warning(f"could not refresh the partition status of the grid assets: {exc}")
        return []


def _rebuild_stale_status(instance: dg.DagsterInstance) -> list[str]:
    from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

    names = {name: partitions for partitions, (assets, _) in PARTITIONED_ASSETS.items() for name in assets}
    records = {record.asset_entry.asset_key: record for record in instance.get_asset_records([dg.AssetKey(n) for n in names])}
    ids: dict[str, str] = {}
    refreshed = []
    for name, partitions in names.items():
        record = records.get(dg.AssetKey(name))
        if record is None:
            continue
        if partitions not in ids:
            ids[partitions] = instance.get_dynamic_partitions_definition_id(partitions)
        cached = record.asset_entry.cached_status
        if cached is not None and cached.partitions_def_id == ids[partitions]:
            continue
        get_and_update_asset_status_cache_value(instance, dg.AssetKey(name), PARTITIONED_ASSETS[partitions][1])
        refreshed.append(name)
    return refreshed
