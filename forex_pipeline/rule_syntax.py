"""The specification's rule syntax, e.g. `trend_strength: "> 0.7"`, `volatility: "> 75th percentile"`.

A rule text is one or more comparisons joined by `and`:

    "> 0.7"                      value above 0.7 (strict)
    ">= 0.25"                    value at least 0.25
    "< 50th percentile"          below the 50th percentile of the feature's own trailing history
    "> 0.2 and <= 0.6"           a range

It parses into the same bound model as the `{min, max}` form (see `forex_pipeline.settings.Bound`):
`min`/`max` with `min_inclusive`/`max_inclusive`, and `percentile: true` when the numbers are
percentile ranks (stored as fractions: "75th percentile" -> 0.75). A rule compares either values
or percentiles, never both. Nothing here imports the project, so settings can use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_COMPARISON = re.compile(
    rf"^\s*(?P<op>>=|<=|>|<|=>|=<)\s*(?P<number>{_NUMBER})\s*(?P<pct>(?:st|nd|rd|th)?\s*percentile)?\s*$",
    re.IGNORECASE,
)
_OPERATORS = {">": ("min", False), ">=": ("min", True), "=>": ("min", True), "<": ("max", False), "<=": ("max", True), "=<": ("max", True)}


class RuleSyntaxError(ValueError):
    """A rule text that cannot be read; the message names the rule and what is wrong."""


def parse_rule_text(feature: str, text: str) -> dict[str, Any]:
    """'> 75th percentile' -> {'min': 0.75, 'min_inclusive': False, 'percentile': True}.

    Raises RuleSyntaxError naming `feature`, the text and the problem (unknown operator, a number
    that is not one, a percentile outside 0..100, two lower bounds, values mixed with percentiles).
    """
    where = f"rule {feature}: {text!r}"
    if not isinstance(text, str) or not text.strip():
        raise RuleSyntaxError(f"{where} is empty; write e.g. '> 0.7' or '< 50th percentile'")
    bound: dict[str, Any] = {}
    kinds = set()
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        match = _COMPARISON.match(part)
        if match is None:
            raise RuleSyntaxError(
                f"{where}: {part.strip()!r} is not a comparison; write OPERATOR NUMBER [th percentile] "
                "with OPERATOR one of >, >=, <, <= (e.g. '> 0.7', '<= 0.3', '> 75th percentile'), "
                "several joined by 'and'"
            )
        side, inclusive = _OPERATORS[match["op"]]
        value = float(match["number"])
        is_percentile = match["pct"] is not None
        kinds.add(is_percentile)
        if is_percentile:
            if not 0 <= value <= 100:
                raise RuleSyntaxError(f"{where}: percentile {value:g} is outside 0..100")
            value /= 100.0
        if side in bound:
            raise RuleSyntaxError(f"{where}: two {'lower' if side == 'min' else 'upper'} bounds; give one of each at most")
        bound[side] = value
        bound[f"{side}_inclusive"] = inclusive
    if len(kinds) > 1:
        raise RuleSyntaxError(f"{where}: mixes values and percentiles; a rule compares one or the other")
    if kinds == {True}:
        bound["percentile"] = True
    return bound


def describe_bound(bound: Mapping[str, Any]) -> str:
    """The rule text of a bound (the inverse of parse_rule_text): '>= 0.25', '< 40th percentile'."""
    percentile = bool(bound.get("percentile"))
    parts = []
    for side, strict_op, loose_op in (("min", ">", ">="), ("max", "<", "<=")):
        value = bound.get(side)
        if value is None:
            continue
        op = loose_op if bound.get(f"{side}_inclusive", True) else strict_op
        parts.append(f"{op} {_ordinal(value * 100)} percentile" if percentile else f"{op} {value:g}")
    return " and ".join(parts)


def _ordinal(number: float) -> str:
    """75 -> '75th', 1 -> '1st', 22 -> '22nd', 12.5 -> '12.5th'."""
    text = f"{round(number, 6):g}"
    if not text.isdigit():
        return f"{text}th"
    n = int(text)
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_rules(rules: Mapping[str, Mapping[str, Any]]) -> str:
    """'trend_strength >= 0.45, returns > 0' for a regime's rules (bounds as dicts)."""
    return ", ".join(f"{feature} {describe_bound(bound)}" for feature, bound in rules.items())
