"""Model configurations back to grid specs (the grid YAML schema), so a chosen set can be re-submitted.

A grid is a product of axis values, so a set of configurations is one grid only when it is such a
product. `configuration_grids` finds a small set of grids whose expansion is exactly the given
configurations, never one more: the union of all values when that is exact, else one grid per feature
set (the union of its model specs when exact), else one grid per configuration. Each candidate is
checked by expanding it (`expand_grid`), so what is exported is what `grid plan` / `grid submit` will see.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from forex_pipeline.grid.expand import expand_grid
from forex_pipeline.grid.spec import GridSpecError
from forex_pipeline.models.spec import ModelConfiguration


def _unique(values: Sequence[Any]) -> list[Any]:
    """Values in first-seen order without repeats (dicts and lists compared by their JSON)."""
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(json.dumps(value, sort_keys=True), value)
    return list(seen.values())


def union_grid(configurations: Sequence[ModelConfiguration], name: str) -> dict[str, Any]:
    """The grid spec holding every axis value used by `configurations` (all with one as_of)."""
    feature_sets = list({c.feature_set_hash: c.feature_set for c in configurations}.values())
    model_specs = list({c.model_spec_hash: c.model_spec for c in configurations}.values())
    as_of = {fs.as_of for fs in feature_sets}
    if len(as_of) != 1:
        raise ValueError(f"a grid has one as_of; these configurations have {len(as_of)}")
    hyperparameters: dict[str, list[dict[str, Any]]] = {}
    for spec in model_specs:
        hyperparameters.setdefault(spec.model_type, [])
        hyperparameters[spec.model_type] = _unique([*hyperparameters[spec.model_type], dict(spec.hyperparameters)])
    dims = _unique([spec.encoder_dim for spec in model_specs if spec.encoder != "none"])
    return {
        "name": name,
        "feature_sets": {
            "symbols": _unique([fs.symbol for fs in feature_sets]),
            "base_timeframes": _unique([fs.base_timeframe for fs in feature_sets]),
            "days_history": _unique([fs.days_history for fs in feature_sets]),
            "as_of": feature_sets[0].canonical()["as_of"],
            "indicator_timeframes": _unique([{k: list(v) for k, v in fs.indicator_timeframes.items()} for fs in feature_sets]),
            "additional_features": _unique([list(fs.additional_features) for fs in feature_sets]),
            "preprocessing": _unique([fs.preprocessing.model_dump(mode="json") for fs in feature_sets]),
        },
        "model_specs": {
            "model_types": _unique([spec.model_type for spec in model_specs]),
            "encoders": _unique([spec.encoder for spec in model_specs]),
            **({"encoder_dims": dims} if dims else {}),
            "horizons": _unique([spec.horizon for spec in model_specs]),
            "hyperparameters": hyperparameters,
        },
    }


def _exact(configurations: Sequence[ModelConfiguration], name: str) -> dict[str, Any] | None:
    """The union grid of `configurations` when it expands to exactly them, else None (also when the union
    crosses values that cannot go together, e.g. a 4h base with 1h indicators)."""
    grid = union_grid(configurations, name)
    try:
        expanded = {c.model_config_hash for c in expand_grid(grid).configurations}
    except GridSpecError:
        return None
    return grid if expanded == {c.model_config_hash for c in configurations} else None


def configuration_grids(configurations: Sequence[ModelConfiguration], name: str) -> list[dict[str, Any]]:
    """Grid specs whose expansions together are exactly `configurations` (deduplicated), named
    `name` (one grid) or `name-1`, `name-2`, ... (several)."""
    unique = list({c.model_config_hash: c for c in configurations}.values())
    if not unique:
        raise ValueError("no configuration to export")
    groups: list[list[ModelConfiguration]] = []
    by_as_of: dict[str, list[ModelConfiguration]] = {}
    for configuration in unique:
        by_as_of.setdefault(configuration.feature_set.canonical()["as_of"], []).append(configuration)
    for same_as_of in by_as_of.values():
        if _exact(same_as_of, name) is not None:
            groups.append(same_as_of)
            continue
        by_feature_set: dict[str, list[ModelConfiguration]] = {}
        for configuration in same_as_of:
            by_feature_set.setdefault(configuration.feature_set_hash, []).append(configuration)
        for same_features in by_feature_set.values():
            if _exact(same_features, name) is not None:
                groups.append(same_features)
            else:
                groups.extend([c] for c in same_features)
    names = [name] if len(groups) == 1 else [f"{name}-{i}" for i in range(1, len(groups) + 1)]
    return [union_grid(group, grid_name) for group, grid_name in zip(groups, names)]
