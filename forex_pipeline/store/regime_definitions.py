"""regime_definitions: built-in (seeded from settings) and custom regimes, with their rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from forex_pipeline.store.common import dialect_insert, record_of
from forex_pipeline.store.tables import (
    RegimeBestModel,
    RegimeDefinitionRow,
    utcnow,
)

if TYPE_CHECKING:
    from forex_pipeline.settings import RegimeSettings, Settings


@dataclass(frozen=True)
class RegimeDefinitionRecord:
    """One row of regime_definitions; rules are {feature: {"min": x, "max": y}} (either may be absent)."""

    id: int
    name: str
    description: str
    rules: dict[str, dict[str, float]]
    enabled: bool
    is_builtin: bool
    created_at: datetime
    updated_at: datetime


def validated_rules(name: str, description: str, rules: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Rules checked exactly as the YAML ones are (valid name, known features, min <= max, rule texts
    parsed); ValueError naming the regime and the rule otherwise. Every writer below uses it."""
    from forex_pipeline.settings import parse_settings

    raw = {"regimes": {"definitions": {name: {"description": description, "rules": dict(rules)}}}}
    definition = parse_settings(raw, source=f"regime {name!r}").regimes.definitions[name]
    return {feature: bound.model_dump(exclude_none=True) for feature, bound in definition.rules.items()}


def list_regime_definitions(session: Session, *, enabled_only: bool = False) -> list[RegimeDefinitionRecord]:
    """Regime definitions by name (optionally only the enabled ones)."""
    statement = select(RegimeDefinitionRow).order_by(RegimeDefinitionRow.name)
    if enabled_only:
        statement = statement.where(RegimeDefinitionRow.enabled.is_(True))
    return [record_of(RegimeDefinitionRecord, row) for row in session.scalars(statement)]


def lock_regime_definitions(session: Session) -> list[RegimeDefinitionRecord]:
    """Every regime definition by name, read and row-locked in that order in one statement (PostgreSQL;
    SQLite's single writer needs no lock): what keep-or-delete holds so parallel writers of the bests
    serialise without deadlock, and the definitions it scores are the ones it locked."""
    statement = select(RegimeDefinitionRow).order_by(RegimeDefinitionRow.name).with_for_update()
    rows = session.scalars(statement.execution_options(populate_existing=True))
    return [record_of(RegimeDefinitionRecord, row) for row in rows]


def locked_active_regimes(session: Session, settings: Settings) -> RegimeSettings:
    """active_regimes under the lock of every definition row (lock_regime_definitions), after seeding
    the settings' regimes the table lacks (one statement more, only then)."""
    from forex_pipeline.regimes import catalog

    rows = lock_regime_definitions(session)
    if set(settings.regimes.definitions) - {row.name for row in rows}:
        seed_regime_definitions(session, settings)
        rows = lock_regime_definitions(session)
    return catalog.active_regimes(settings.regimes, rows)


def get_regime_definition(session: Session, name: str) -> RegimeDefinitionRecord | None:
    """One regime definition, or None."""
    row = session.scalars(select(RegimeDefinitionRow).where(RegimeDefinitionRow.name == name)).one_or_none()
    return None if row is None else record_of(RegimeDefinitionRecord, row)


def _regime_row(session: Session, name: str) -> RegimeDefinitionRow:
    row = session.scalars(select(RegimeDefinitionRow).where(RegimeDefinitionRow.name == name)).one_or_none()
    if row is None:
        raise LookupError(f"regime {name!r} is not defined")
    return row


def add_regime_definition(
    session: Session, name: str, rules: Mapping[str, Any], *, description: str = "", enabled: bool = True
) -> RegimeDefinitionRecord:
    """Add a custom regime; a name already defined raises ValueError."""
    checked = validated_rules(name, description, rules)
    if get_regime_definition(session, name) is not None:
        raise ValueError(f"regime {name!r} already exists")
    row = RegimeDefinitionRow(name=name, description=description, rules=checked, enabled=enabled, is_builtin=False)
    session.add(row)
    session.flush()
    return record_of(RegimeDefinitionRecord, row)


def update_regime_definition(
    session: Session, name: str, *, rules: Mapping[str, Any] | None = None, description: str | None = None
) -> RegimeDefinitionRecord:
    """Change a regime's rules and/or description."""
    row = _regime_row(session, name)
    new_description = row.description if description is None else description
    row.rules = validated_rules(name, new_description, row.rules if rules is None else rules)
    row.description = new_description
    session.flush()
    return record_of(RegimeDefinitionRecord, row)


def set_regime_enabled(session: Session, name: str, enabled: bool) -> RegimeDefinitionRecord:
    """Enable or disable a regime (disabled regimes are not scored)."""
    row = _regime_row(session, name)
    row.enabled = enabled
    session.flush()
    return record_of(RegimeDefinitionRecord, row)


def delete_regime_definition(session: Session, name: str) -> None:
    """Delete a custom regime and its bests; built-in regimes can only be disabled."""
    row = _regime_row(session, name)
    if row.is_builtin:
        raise ValueError(f"regime {name!r} is built in (from the settings); disable it instead")
    session.execute(delete(RegimeBestModel).where(RegimeBestModel.regime == name))
    session.delete(row)
    session.flush()


def seed_regime_definitions(session: Session, settings: Settings | None = None) -> list[str]:
    """Insert the settings' regimes that are missing (built-in, enabled); returns the names added.

    Idempotent and safe with parallel callers; rows already present (perhaps edited) are left as they are.
    """
    if settings is None:
        from forex_pipeline.settings import get_settings

        settings = get_settings()
    now = utcnow()
    added = []
    for name, definition in settings.regimes.definitions.items():
        rules = {feature: bound.model_dump(exclude_none=True) for feature, bound in definition.rules.items()}
        statement = (
            dialect_insert(session, RegimeDefinitionRow)
            .values(
                name=name,
                description=definition.description,
                rules=rules,
                enabled=True,
                is_builtin=True,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["name"])
        )
        if session.execute(statement).rowcount:
            added.append(name)
    return added


def active_regimes(session: Session, settings: Settings) -> RegimeSettings:
    """settings.regimes with the definitions scored now: built-ins not disabled, then enabled customs."""
    from forex_pipeline.regimes import catalog

    return catalog.active_regimes(settings.regimes, list_regime_definitions(session))
