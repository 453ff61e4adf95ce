"""Import a module named in a table only when it is asked for (torch and lightgbm stay unloaded)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from types import ModuleType


def import_listed(modules: Mapping[str, str], key: str, label: str, error: type[Exception]) -> ModuleType:
    """The module listed for `key`; `error` naming `label` when the key is unknown or its module missing."""
    name = _listed_name(modules, key, label, error)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            raise error(f"{label} {key!r} is not available: its module {name} does not exist") from exc
        raise


def find_listed(modules: Mapping[str, str], key: str, label: str, error: type[Exception]) -> str:
    """The module name listed for `key`, checked to exist without importing it (import_listed's errors)."""
    name = _listed_name(modules, key, label, error)
    try:
        found = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        found = None
    if found is None:
        raise error(f"{label} {key!r} is not available: its module {name} does not exist")
    return name


def _listed_name(modules: Mapping[str, str], key: str, label: str, error: type[Exception]) -> str:
    if key not in modules:
        raise error(f"{label} {key!r} is unknown; known: {', '.join(modules)}")
    return modules[key]
