"""The regime definitions view's logic: what a button asks for, the candidate regimes a test on history
uses, and the actions carried out after confirmation (each in one transaction)."""

from __future__ import annotations

import pytest

from forex_pipeline.explorer import definitions


def _record(context, name: str):  # noqa: ANN001, ANN202
    from forex_pipeline.store.regime_definitions import get_regime_definition

    with context.read_session() as session:
        return get_regime_definition(session, name)


def test_save_plans_an_add_then_an_update_with_rules_checked_as_regimes_add_checks_them(context) -> None:
    rules = {"trend_strength": "< 0.3", "volatility_percentile": "< 40th percentile"}
    plan = definitions.plan(context, "save", "quiet_range", "calm", rules)
    assert plan["action"] == "add" and plan["text"] == "trend_strength < 0.3, volatility_percentile < 40th percentile"
    assert _record(context, "quiet_range") is None                 # planning writes nothing
    assert definitions.apply(context, plan) == "regime quiet_range: added"
    assert _record(context, "quiet_range").rules == {
        "trend_strength": {"max": 0.3, "max_inclusive": False},
        "volatility_percentile": {"max": 0.4, "max_inclusive": False, "percentile": True},
    }
    edit = definitions.plan(context, "save", "quiet_range", "calmer", {"trend_strength": "<= 0.2"})
    assert edit["action"] == "update"
    definitions.apply(context, edit)
    record = _record(context, "quiet_range")
    assert record.rules == {"trend_strength": {"max": 0.2}} and record.description == "calmer"


@pytest.mark.parametrize(
    ("button", "name", "rules", "message"),
    [
        ("save", "", {"trend_strength": "< 0.3"}, "name is empty"),
        ("save", "calm_ranging", {"trend_strength": "< 0.3"}, "is built in: its rules come from the settings file"),
        ("save", "odd", {"trend_strength": "> 1.5"}, "can never match"),
        ("save", "odd", {"volatility": "> 75th percentil"}, "volatility"),
        ("save", "odd", {}, "at least one rule"),
        ("delete", "calm_ranging", {}, "built in"),
        ("disable", "nothing_here", {}, "not defined"),
    ],
)
def test_a_refused_action_names_why_and_writes_nothing(context, button: str, name: str, rules: dict, message: str) -> None:
    with pytest.raises((ValueError, LookupError), match=message):
        definitions.plan(context, button, name, "", rules)
    assert _record(context, "odd") is None


def test_enable_disable_and_delete_after_confirmation(context) -> None:
    definitions.apply(context, definitions.plan(context, "save", "quiet_range", "", {"trend_strength": "< 0.3"}))
    definitions.apply(context, definitions.plan(context, "disable", "calm_ranging", "", {}))
    assert _record(context, "calm_ranging").enabled is False
    rows = {row["name"]: row for row in definitions.definition_rows(context)}
    assert rows["calm_ranging"]["scored"] is False and rows["quiet_range"]["origin"] == "custom"
    definitions.apply(context, definitions.plan(context, "enable", "calm_ranging", "", {}))
    assert _record(context, "calm_ranging").enabled is True
    assert definitions.apply(context, definitions.plan(context, "delete", "quiet_range", "", {})) == "regime quiet_range: deleted"
    assert _record(context, "quiet_range") is None


def test_candidate_regimes_put_the_edited_regime_where_saving_would(context) -> None:
    regimes = definitions.candidate_regimes(context, "quiet_range", "", {"trend_strength": "< 0.3"})
    names = list(regimes.definitions)
    assert names[-1] == "quiet_range" and set(names[:-1]) == set(context.settings.regimes.definitions)
    assert regimes.definitions["quiet_range"].rules["trend_strength"].max == 0.3
    assert _record(context, "quiet_range") is None
    definitions.apply(context, definitions.plan(context, "disable", "calm_ranging", "", {}))
    # a disabled built-in stays out unless it is the regime being tested
    assert "calm_ranging" not in definitions.candidate_regimes(context, "quiet_range", "", {"trend_strength": "< 0.3"}).definitions
    assert "calm_ranging" in definitions.candidate_regimes(context, "calm_ranging", "", {}).definitions


def test_test_on_history_shows_the_share_of_the_edited_regime(context) -> None:
    definitions.apply(context, definitions.plan(context, "disable", "calm_ranging", "", {}))
    result = definitions.test_on_history(context, "quiet_range", "", {"trend_strength": "< 0.3"}, "SYNTH", "4h")
    table = next(child for child in result.children if getattr(child, "id", None) == "definitions-shares")
    rows = {row.id: [cell.children for cell in row.children] for row in table.children[1:]}
    assert int(rows["definitions-share-quiet_range"][1]) > 0
    assert _record(context, "quiet_range") is None
    with pytest.raises(FileNotFoundError, match="no bars for symbol NOPE"):
        definitions.test_on_history(context, "", "", {}, "NOPE", "1h")
