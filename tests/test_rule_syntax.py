"""The specification's rule syntax: parsed into the {min, max} model, errors that name what is wrong."""

from __future__ import annotations

import pytest

from forex_pipeline.rule_syntax import RuleSyntaxError, describe_bound, describe_rules, parse_rule_text
from forex_pipeline.settings import Bound, SettingsError, parse_settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("> 0.7", {"min": 0.7, "min_inclusive": False}),
        (">= 0.25", {"min": 0.25, "min_inclusive": True}),
        ("<0", {"max": 0.0, "max_inclusive": False}),
        ("<= -1", {"max": -1.0, "max_inclusive": True}),
        ("> 75th percentile", {"min": 0.75, "min_inclusive": False, "percentile": True}),
        ("< 50th Percentile", {"max": 0.5, "max_inclusive": False, "percentile": True}),
        ("> 0.2 and <= 0.6", {"min": 0.2, "min_inclusive": False, "max": 0.6, "max_inclusive": True}),
        ("> 1e-3", {"min": 0.001, "min_inclusive": False}),
    ],
)
def test_rule_texts_parse_into_bounds(text: str, expected: dict) -> None:
    assert parse_rule_text("x", text) == expected
    Bound(**expected)  # the bound model accepts what the parser makes


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (">> 0.7", "is not a comparison"),
        ("about 0.7", "is not a comparison"),
        ("> seventy", "is not a comparison"),
        ("> 175th percentile", "percentile 175 is outside 0..100"),
        ("> 0.1 and > 0.2", "two lower bounds"),
        ("> 0.1 and < 50th percentile", "mixes values and percentiles"),
        ("  ", "is empty"),
    ],
)
def test_bad_rule_texts_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(RuleSyntaxError, match=problem) as error:
        parse_rule_text("trend_strength", text)
    assert "rule trend_strength" in str(error.value)


def test_text_and_min_max_forms_mean_the_same_in_settings() -> None:
    regimes = parse_settings(
        {"regimes": {"definitions": {
            "a": {"rules": {"trend_strength": ">= 0.7", "volatility": "< 50th percentile"}},
            "b": {"rules": {"trend_strength": {"min": 0.7}, "volatility": {"max": 0.5, "max_inclusive": False, "percentile": True}}},
        }}}
    ).regimes
    assert regimes.definitions["a"].rules == regimes.definitions["b"].rules


def test_a_bad_rule_in_settings_names_the_regime_the_rule_and_the_problem() -> None:
    with pytest.raises(SettingsError) as error:
        parse_settings({"regimes": {"definitions": {"wild": {"rules": {"volatility": "> 75th percentil"}}}}})
    message = str(error.value)
    assert "regimes.definitions.wild.rules" in message and "rule volatility: '> 75th percentil'" in message
    assert "is not a comparison" in message
    with pytest.raises(SettingsError, match=r"definitions\.odd\.rules.*unknown regime rule feature\(s\) \['moon'\]"):
        parse_settings({"regimes": {"definitions": {"odd": {"rules": {"moon": "> 1"}}}}})
    with pytest.raises(SettingsError, match=r"definitions\.odd\.rules\.returns.*min 1.0 is greater than max 0.0"):
        parse_settings({"regimes": {"definitions": {"odd": {"rules": {"returns": "> 1 and < 0"}}}}})


def test_bounds_describe_themselves_in_the_text_form() -> None:
    for text in ("> 0.7", ">= 0.25", "< 40th percentile", "> 0.2 and <= 0.6", ">= 1st percentile"):
        assert describe_bound(parse_rule_text("x", text)) == text
    assert describe_bound({"min": 0.25}) == ">= 0.25"  # the older {min, max} rows
    assert describe_rules({"trend_strength": {"min": 0.45}, "returns": {"min": 0.0, "min_inclusive": False}}) == (
        "trend_strength >= 0.45, returns > 0"
    )
