"""Which regimes are scored: the YAML's built-in definitions plus the custom ones in the database.

Built-in regimes take their rules from settings (edit the YAML to change them); custom regimes are
rows added with `forex-pipeline regimes add` and need no code. A disabled row removes its regime.
Order matters (the first matching rule wins): built-ins in YAML order, then customs oldest first.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from forex_pipeline.settings import RegimeDefinition, RegimeSettings, Settings
from forex_pipeline.store.tables import RegimeDefinitionRow


def active_regimes(session: Session, settings: Settings) -> RegimeSettings:
    """settings.regimes with the definitions that are scored now."""
    rows = session.scalars(select(RegimeDefinitionRow).order_by(RegimeDefinitionRow.id)).all()
    disabled = {row.name for row in rows if not row.enabled}
    definitions = {name: d for name, d in settings.regimes.definitions.items() if name not in disabled}
    for row in rows:
        if row.enabled and not row.is_builtin and row.name not in definitions:
            definitions[row.name] = RegimeDefinition(description=row.description, rules=row.rules)
    return settings.regimes.model_copy(update={"definitions": definitions})
