"""Import a module named in a table only when it is asked for (torch and lightgbm stay unloaded)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType


def import_listed(modules: Mapping[str, str], key: str, label: str, error: type[Exception]) -> ModuleType:
    """The module listed for `key`; `error` naming `label` when the key is unknown or its module missing."""
    if key not in modules:
        raise error(f"{label} {key!r} is unknown; known: {', '.join(modules)}")
    name = modules[key]
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            raise error(f"{label} {key!r} is not available: its module {name} does not exist") from exc
        raise
