"""One dynamic partition per model configuration: only the grid's configurations exist, keys are
registered from what the configurations carry, a new feature set marks no older model Unsynced, and
an instance from the feature_set x model_spec scheme migrates with its history."""

from __future__ import annotations

from types import SimpleNamespace

import dagster as dg
import pytest

from forex_pipeline.dagster_defs.definitions import defs
from forex_pipeline.dagster_defs.partitions import (
    FORMER_MODEL_SPEC_PARTITIONS,
    PARTITIONED_ASSETS,
    chunks,
    migrate_partitions,
    model_config_partitions,
    register_partitions,
)
from forex_pipeline.keys import FEATURE_SET_DIMENSION, MODEL_CONFIG_PARTITIONS, model_config_key
from forex_pipeline.queue.lifecycle import configurations_of
from tests.support import TINY_GRID


def _grid(symbol: str, horizons: list[int]) -> dict:
    return {
        **TINY_GRID,
        "feature_sets": {**TINY_GRID["feature_sets"], "symbols": [symbol]},
        "model_specs": {**TINY_GRID["model_specs"], "model_types": ["ridge"], "horizons": horizons, "hyperparameters": {"ridge": [{"alpha": 1.0}]}},
    }


def test_chunks_cover_the_sequence_in_bounded_slices() -> None:
    items = list(range(25))
    parts = list(chunks(items, 10))
    assert [len(p) for p in parts] == [10, 10, 5]
    assert [x for p in parts for x in p] == items
    assert list(chunks([], 3)) == []
    with pytest.raises(ValueError, match="chunk size"):
        list(chunks(items, 0))


def test_the_model_assets_have_one_partition_per_configuration() -> None:
    graph = defs.resolve_asset_graph()
    for asset in ("trained_model", "inference_backtests"):
        assert graph.get(dg.AssetKey(asset)).partitions_def == model_config_partitions
    assert dg.AssetKey("features") in graph.get(dg.AssetKey("trained_model")).parent_keys  # lineage edge kept
    dynamic = {}   # refresh_partition_status rebuilds the status of exactly the assets on the grid's partitions
    for node in graph.asset_nodes:
        if isinstance(node.partitions_def, dg.DynamicPartitionsDefinition):
            dynamic.setdefault(node.partitions_def.name, set()).add(node.key.to_user_string())
    assert dynamic == {name: set(assets) for name, (assets, _) in PARTITIONED_ASSETS.items()}
    assert all(PARTITIONED_ASSETS[name][1] == graph.get(dg.AssetKey(asset)).partitions_def
               for name, (assets, _) in PARTITIONED_ASSETS.items() for asset in assets)


def test_only_the_requested_configurations_become_partitions() -> None:
    """Two grids: EURUSD x 2 horizons, then one more symbol x 1 horizon: 3 partitions, not the 2 x 2 product."""
    first, second = configurations_of(_grid("EURUSD", [1, 3])), configurations_of(_grid("GBPUSD", [1]))
    with dg.instance_for_test() as instance:
        assert register_partitions(instance, first) == 2
        identifier = instance.get_dynamic_partitions_definition_id(MODEL_CONFIG_PARTITIONS)
        assert register_partitions(instance, first) == 0  # nothing new: nothing written
        assert instance.get_dynamic_partitions_definition_id(MODEL_CONFIG_PARTITIONS) == identifier
        assert register_partitions(instance, second) == 1
        keys = instance.get_dynamic_partitions(MODEL_CONFIG_PARTITIONS)
        feature_sets = instance.get_dynamic_partitions(FEATURE_SET_DIMENSION)
    assert keys == [c.partition_key for c in first + second]  # grid order, exactly the configurations asked for
    assert feature_sets == [first[0].feature_set_key, second[0].feature_set_key]
    assert all(key.startswith(c.feature_set_key) for key, c in zip(keys, first + second))


def test_registration_reads_only_the_keys_the_configurations_carry() -> None:
    """No spec is dumped or hashed again: objects holding just the two keys are enough."""
    carried = [SimpleNamespace(feature_set_key=f"SYNTH-1h-d150-{n:08x}", partition_key=model_config_key(f"SYNTH-1h-d150-{n:08x}", "ridge-none-h1-0000abcd"))
               for n in range(3)]
    with dg.instance_for_test() as instance:
        register_partitions(instance, carried + carried)  # duplicates are registered once
        assert instance.get_dynamic_partitions(MODEL_CONFIG_PARTITIONS) == [c.partition_key for c in carried]


def test_a_new_feature_set_marks_no_older_model_unsynced() -> None:
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._core.loader import LoadingContextForTest

    old, new = configurations_of(_grid("EURUSD", [1])), configurations_of(_grid("GBPUSD", [1]))
    with dg.instance_for_test() as instance:
        register_partitions(instance, old + new)
        instance.report_runless_asset_event(dg.AssetMaterialization("features", partition=old[0].feature_set_key))
        instance.report_runless_asset_event(dg.AssetMaterialization("trained_model", partition=old[0].partition_key))
        instance.report_runless_asset_event(dg.AssetMaterialization("features", partition=new[0].feature_set_key))
        resolver = CachingStaleStatusResolver(instance, defs.resolve_asset_graph(), LoadingContextForTest(instance))
        status = resolver.get_status(dg.AssetKey("trained_model"), old[0].partition_key)
    assert status == StaleStatus.FRESH


def test_migration_keeps_the_history_of_the_former_multi_partitions() -> None:
    configurations = configurations_of(_grid("EURUSD", [1, 3]))
    with dg.instance_for_test() as instance:
        # an instance of the former scheme: feature_set x model_spec keys, a materialization under the multi-key
        instance.add_dynamic_partitions(FEATURE_SET_DIMENSION, [configurations[0].feature_set_key])
        instance.add_dynamic_partitions(FORMER_MODEL_SPEC_PARTITIONS, [c.model_spec_key for c in configurations])
        former_key = dg.MultiPartitionKey({"feature_set": configurations[0].feature_set_key, "model_spec": configurations[0].model_spec_key})
        instance.report_runless_asset_event(dg.AssetMaterialization("trained_model", partition=former_key))
        assert migrate_partitions(instance, [configurations]) == (2, 2)
        assert migrate_partitions(instance, [configurations]) == (0, 0)  # idempotent
        assert instance.get_dynamic_partitions(FORMER_MODEL_SPEC_PARTITIONS) == []
        registered = set(instance.get_dynamic_partitions(MODEL_CONFIG_PARTITIONS))
        materialized = instance.get_materialized_partitions(dg.AssetKey("trained_model"))
    assert registered == {c.partition_key for c in configurations}
    assert materialized == {configurations[0].partition_key} and materialized <= registered


def test_a_submission_rebuilds_the_ui_partition_status_of_the_grid_assets() -> None:
    """A new grid's keys change the partitions' id, which leaves Dagster's status cache stale (the UI's
    next page would rebuild it: 1.3 s at 49,000 models). Registering the keys rebuilds it at once, with
    the materialized partitions; refresh_partition_status (the queue sensor's tick) catches keys added
    any other way and leaves a current cache and never-materialized assets alone."""
    from forex_pipeline.dagster_defs.partitions import refresh_partition_status

    configurations = configurations_of(TINY_GRID)
    with dg.instance_for_test() as instance:
        register_partitions(instance, configurations[:2])
        done = configurations[0].partition_key
        instance.report_runless_asset_event(dg.AssetMaterialization("trained_model", partition=done))
        assert refresh_partition_status(instance) == ["trained_model"]   # no cache yet: built
        assert refresh_partition_status(instance) == []                  # current: nothing to do

        def cached_status():  # noqa: ANN202
            (record,) = instance.get_asset_records([dg.AssetKey("trained_model")])
            return record.asset_entry.cached_status

        register_partitions(instance, configurations[2:3])               # a new submission
        current = instance.get_dynamic_partitions_definition_id(MODEL_CONFIG_PARTITIONS)
        assert cached_status().partitions_def_id == current
        assert set(cached_status().deserialize_materialized_partition_subsets(model_config_partitions).get_partition_keys()) == {done}
        assert refresh_partition_status(instance) == []
        instance.add_dynamic_partitions(MODEL_CONFIG_PARTITIONS, ["added-elsewhere"])
        assert refresh_partition_status(instance) == ["trained_model"]
        assert cached_status().partitions_def_id == instance.get_dynamic_partitions_definition_id(MODEL_CONFIG_PARTITIONS)


def test_a_failing_status_rebuild_never_stops_a_submission(monkeypatch, caplog) -> None:
    """The cache is Dagster's: when its rebuild fails, the keys are registered all the same and the
    failure is logged, so a submission (or the queue sensor's tick) goes on."""
    from forex_pipeline.dagster_defs import partitions

    def broken(instance):  # noqa: ANN001, ANN202
        raise RuntimeError("event log unreadable")

    monkeypatch.setattr(partitions, "_rebuild_stale_status", broken)
    configurations = configurations_of(TINY_GRID)
    with dg.instance_for_test() as instance, caplog.at_level("WARNING"):
        assert register_partitions(instance, configurations) == len(configurations)
        assert set(instance.get_dynamic_partitions(MODEL_CONFIG_PARTITIONS)) == {c.partition_key for c in configurations}
    assert "event log unreadable" in caplog.text
