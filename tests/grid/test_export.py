"""grid/export: chosen configurations back to grid specs whose expansion is exactly them."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from forex_pipeline.grid.expand import expand_grid, load_grid_spec
from forex_pipeline.grid.export import configuration_grids
from tests.support import TINY_GRID


def hashes(grids: list[dict]) -> list[set[str]]:
    return [{c.model_config_hash for c in expand_grid(grid).configurations} for grid in grids]


def tiny(**feature_sets: object) -> list:
    raw = copy.deepcopy(TINY_GRID)
    raw["feature_sets"].update(feature_sets)
    return expand_grid(raw).configurations


def test_a_product_is_one_grid_that_survives_yaml(tmp_path: Path) -> None:
    configurations = tiny(days_history=[150, 200])          # 2 feature sets x 2 model types x 3 horizons
    grids = configuration_grids(configurations, "picked")
    assert len(grids) == 1 and grids[0]["name"] == "picked"
    path = tmp_path / "picked.yaml"
    path.write_text(yaml.safe_dump(grids[0], sort_keys=False))
    reread = expand_grid(load_grid_spec(path))
    assert {c.model_config_hash for c in reread.configurations} == {c.model_config_hash for c in configurations}


def test_a_non_product_is_split_into_exact_grids_never_more() -> None:
    configurations = tiny()
    ridge_h1 = next(c for c in configurations if c.model_spec.model_type == "ridge" and c.model_spec.horizon == 1)
    net_h3 = next(c for c in configurations if c.model_spec.model_type == "elasticnet" and c.model_spec.horizon == 3)
    grids = configuration_grids([ridge_h1, net_h3, ridge_h1], "pair")
    assert [g["name"] for g in grids] == ["pair-1", "pair-2"]
    assert hashes(grids) == [{ridge_h1.model_config_hash}, {net_h3.model_config_hash}]


def test_feature_sets_with_their_own_model_specs_and_as_of_are_grouped() -> None:
    one = tiny()
    later = tiny(as_of="2021-02-05T00:00:00Z")
    chosen = [c for c in one if c.model_spec.model_type == "ridge"] + [later[0]]
    grids = configuration_grids(chosen, "mixed")
    assert len(grids) == 2
    assert set().union(*hashes(grids)) == {c.model_config_hash for c in chosen}
    assert grids[0]["model_specs"]["horizons"] == [1, 3, 6] and grids[1]["feature_sets"]["as_of"].startswith("2021-02-05")


def test_a_union_that_cannot_be_built_falls_back_to_exact_grids() -> None:
    """1h and 4h feature sets with indicators on their own timeframe: the union would pair 4h with 1h indicators."""
    hourly = tiny(indicator_timeframes=[{"rsi": ["1h"]}])[:1]
    four_hourly = tiny(base_timeframes=["4h"], indicator_timeframes=[{"rsi": ["4h"]}])[:1]
    grids = configuration_grids(hourly + four_hourly, "x")
    assert hashes(grids) == [{hourly[0].model_config_hash}, {four_hourly[0].model_config_hash}]
