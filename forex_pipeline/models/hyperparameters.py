"""Declarative hyperparameter rules: defaults filled, types and ranges checked, unknown keys refused."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from forex_pipeline.models.spec import ModelSpec


class HyperparameterError(ValueError):
    """A hyperparameter is unknown, of the wrong type or out of range; the message names it."""


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its default, kind (int, float, str, bool) and allowed range or choices."""

    default: Any
    kind: type
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    allow_none: bool = False
    low_inclusive: bool = True


def _check(name: str, value: Any, rule: Param, where: str) -> Any:
    """Return `value` coerced to the rule's kind, or raise HyperparameterError naming `name`."""
    field = f"{where}.hyperparameters.{name}"
    if value is None:
        if rule.allow_none:
            return None
        raise HyperparameterError(f"{field} must not be null")
    if rule.kind is bool:
        if not isinstance(value, bool):
            raise HyperparameterError(f"{field} must be true or false, got {value!r}")
        return value
    if rule.kind is str:
        if not isinstance(value, str):
            raise HyperparameterError(f"{field} must be a string, got {value!r}")
    elif rule.kind is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or float(value) != int(value):
            raise HyperparameterError(f"{field} must be an integer, got {value!r}")
        value = int(value)
    elif rule.kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise HyperparameterError(f"{field} must be a finite number, got {value!r}")
        value = float(value)
    if rule.choices is not None and value not in rule.choices:
        raise HyperparameterError(f"{field} is {value!r}; allowed: {', '.join(map(repr, rule.choices))}")
    if rule.low is not None and (value < rule.low or (not rule.low_inclusive and value == rule.low)):
        bound = ">=" if rule.low_inclusive else ">"
        raise HyperparameterError(f"{field} is {value!r}; must be {bound} {rule.low}")
    if rule.high is not None and value > rule.high:
        raise HyperparameterError(f"{field} is {value!r}; must be <= {rule.high}")
    return value


def resolve(spec: ModelSpec, rules: Mapping[str, Param], extra_check: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The spec's hyperparameters with defaults filled in, validated against `rules`."""
    where = f"model_spec[{spec.model_type}]"
    unknown = sorted(set(spec.hyperparameters) - set(rules))
    if unknown:
        raise HyperparameterError(
            f"{where}.hyperparameters: unknown hyperparameter(s) {unknown}; known: {sorted(rules)}"
        )
    resolved = {
        name: _check(name, spec.hyperparameters.get(name, rule.default), rule, where)
        for name, rule in sorted(rules.items())
    }
    if extra_check is not None:
        extra_check(resolved)
    return resolved
