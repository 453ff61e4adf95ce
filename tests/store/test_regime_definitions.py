"""regime_definitions: CRUD and seeding from settings."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from forex_pipeline.settings import get_settings, parse_settings
from forex_pipeline.store import regime_definitions
from forex_pipeline.store.db import session_scope


def test_regime_definition_crud(engine: Engine) -> None:
    with session_scope(engine) as session:
        added = regime_definitions.add_regime_definition(session, "quiet_asia", {"volatility_percentile": {"max": 0.2}},
                                           description="Asian session lull")
        assert added.is_builtin is False and added.rules == {"volatility_percentile": {"max": 0.2}}
        regime_definitions.update_regime_definition(session, "quiet_asia", rules={"volatility_percentile": {"max": 0.1}})
        regime_definitions.set_regime_enabled(session, "bull_trending", False)
    with session_scope(engine) as session:
        enabled = {r.name for r in regime_definitions.list_regime_definitions(session, enabled_only=True)}
        assert regime_definitions.get_regime_definition(session, "quiet_asia").rules == {"volatility_percentile": {"max": 0.1}}
    assert enabled == {"bear_trending", "volatile_ranging", "calm_ranging", "quiet_asia"}
    with session_scope(engine) as session:
        with pytest.raises(ValueError, match="already exists"):
            regime_definitions.add_regime_definition(session, "quiet_asia", {"trend_strength": {"min": 0.1}})
        with pytest.raises(ValueError, match="unknown regime rule feature"):
            regime_definitions.add_regime_definition(session, "odd", {"moon_phase": {"min": 0.1}})
        with pytest.raises(ValueError, match="greater than max"):
            regime_definitions.update_regime_definition(session, "quiet_asia", rules={"trend_strength": {"min": 0.9, "max": 0.1}})
        with pytest.raises(ValueError, match="reserved"):
            regime_definitions.add_regime_definition(session, "all", {"trend_strength": {"min": 0.1}})
        with pytest.raises(ValueError, match="built in"):
            regime_definitions.delete_regime_definition(session, "calm_ranging")
        regime_definitions.delete_regime_definition(session, "quiet_asia")
        assert regime_definitions.get_regime_definition(session, "quiet_asia") is None


def test_seed_regime_definitions_is_idempotent(engine: Engine) -> None:
    settings = parse_settings({"regimes": {"definitions": {
        "calm_ranging": {"rules": {"trend_strength": {"max": 0.99}}},
        "breakout": {"description": "new", "rules": {"volatility_percentile": {"min": 0.95}}},
    }}})
    with session_scope(engine) as session:
        regime_definitions.update_regime_definition(session, "calm_ranging", description="edited by hand")
        assert regime_definitions.seed_regime_definitions(session, settings) == ["breakout"]
        assert regime_definitions.seed_regime_definitions(session, settings) == []
        assert regime_definitions.seed_regime_definitions(session) == []
    with session_scope(engine) as session:
        names = [r.name for r in regime_definitions.list_regime_definitions(session)]
        calm = regime_definitions.get_regime_definition(session, "calm_ranging")
    assert sorted(names) == sorted([*get_settings().regimes.definitions, "breakout"])
    yaml_calm = get_settings().regimes.definitions["calm_ranging"].rules
    assert calm.description == "edited by hand"
    assert calm.rules == {feature: bound.model_dump(exclude_none=True) for feature, bound in yaml_calm.items()}
