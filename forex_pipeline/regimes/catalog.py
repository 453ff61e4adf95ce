"""Which regimes are scored: the YAML's built-in definitions plus the custom ones in the database.

Built-in regimes take their rules from settings (edit the YAML to change them); custom regimes are
rows added with `forex-pipeline regimes add` and need no code. A disabled row removes its regime.
Order matters (the first matching rule wins): built-ins in YAML order, then customs oldest first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

from forex_pipeline.settings import RegimeDefinition, RegimeSettings

logger = logging.getLogger(__name__)


class RegimeRow(Protocol):
    """What the catalog needs of a regime_definitions row (store.regime_definitions.RegimeDefinitionRecord)."""

    name: str
    description: str
    rules: dict[str, Any]
    enabled: bool
    is_builtin: bool


def active_regimes(settings: RegimeSettings, rows: Iterable[RegimeRow]) -> RegimeSettings:
    """`settings` with the definitions that are scored now, given the regime_definitions rows in id order."""
    rows = list(rows)
    disabled = {row.name for row in rows if not row.enabled}
    definitions = {name: d for name, d in settings.definitions.items() if name not in disabled}
    for row in rows:
        if row.enabled and not row.is_builtin and row.name not in definitions:
            try:
                definitions[row.name] = RegimeDefinition(description=row.description, rules=row.rules)
            except ValueError as exc:  # a row written by an older version or by hand: skip it, loudly
                logger.warning("custom regime %r is not scored: its stored rules are invalid (%s); fix or delete it",
                               row.name, " ".join(str(exc).split())[:300])
    return settings.model_copy(update={"definitions": definitions})
