"""Regime definitions view: the built-in and custom regimes, a rule editor, and "test on history".

The editor holds one rule text per regime feature in the specification's syntax ("> 0.7",
"< 50th percentile", "> 0.2 and <= 0.6"; empty = no rule on that feature), checked by
store.regime_definitions.validated_rules, the check `forex-pipeline regimes add` goes through.
"Test on history" labels any symbol and timeframe with the scored regimes as they would be with the
edited regime saved (regimes/preview.py) and shows the label shares and the timeline; nothing is
written. Save (add or edit), enable, disable and delete each ask for confirmation and run in one
transaction. Built-in regimes take their rules from the settings file: they can be disabled and
enabled here, not edited or deleted.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import dash_ag_grid as dag
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from forex_pipeline.explorer.common import (
    EXPECTED_ERRORS, ExplorerContext, banner, banner_slot, confirm_dialog, error_message, outcome_banner, section, toolbar,
)
from forex_pipeline.settings import REGIME_FEATURES

GRID_ID = "definitions-grid"
DEFAULT_SYMBOL = "SYNTH"
DEFAULT_TIMEFRAME = "1h"
RULE_EXAMPLES: dict[str, str] = {
    "trend_strength": "> 0.7",
    "returns": "> 0",
    "volatility": "<= 0.002",
    "volatility_percentile": "> 75th percentile",
    "return_sign": ">= 1",
}
COLUMNS: tuple[dict[str, Any], ...] = (
    {"field": "name", "headerName": "regime"},
    {"field": "origin", "headerName": "origin", "width": 100},
    {"field": "enabled", "headerName": "enabled", "width": 100},
    {"field": "scored", "headerName": "scored", "width": 100},
    {"field": "labelled_by", "headerName": "labelled by", "width": 120},
    {"field": "rules", "headerName": "rules", "flex": 1, "minWidth": 300},
    {"field": "description", "headerName": "description", "flex": 1},
)
CONFIRMATIONS: dict[str, str] = {
    "add": "Add the custom regime {name} with rules {rules}? It is scored from the next model recorded on.",
    "update": "Save the new rules of {name}: {rules}? Bests already recorded keep the labels they were scored with.",
    "enable": "Enable {name}? It is scored again from the next model recorded on.",
    "disable": "Disable {name}? It is no longer scored; its row and past results stay.",
    "delete": "Delete the custom regime {name} and its regime bests? This cannot be undone.",
}


def layout(context: ExplorerContext) -> html.Div:
    """Definitions grid, the rule editor with its actions, and the test-on-history panel."""
    from forex_pipeline.data.timeframes import TIMEFRAMES

    label = {"display": "inline-block", "width": "180px"}
    rule_inputs = [
        html.Div([html.Label(feature, htmlFor=f"definitions-rule-{feature}", style=label),
                  dcc.Input(id=f"definitions-rule-{feature}", type="text", placeholder=f"e.g. {RULE_EXAMPLES[feature]}",
                            debounce=False, style={"width": "260px"})],
                 style={"margin": "2px 0"})
        for feature in REGIME_FEATURES
    ]
    return html.Div(
        [
            banner_slot("definitions"),
            dag.AgGrid(
                id=GRID_ID, rowData=[], columnDefs=list(COLUMNS), getRowId="params.data.name",
                defaultColDef={"sortable": True, "resizable": True},
                dashGridOptions={"rowSelection": {"mode": "singleRow", "enableClickSelection": True}, "domLayout": "autoHeight",
                                 "animateRows": False},
            ),
            section(
                "Rule editor",
                html.P("Select a regime to edit it, or start a new one. One rule per feature in the specification's syntax "
                       "('> 0.7', '< 50th percentile', '> 0.2 and <= 0.6'); leave a feature empty for no rule. "
                       "A regime matches a bar when all its rules hold; the first matching regime wins.",
                       style={"color": "#555"}),
                html.Div([html.Label("name", htmlFor="definitions-name", style=label),
                          dcc.Input(id="definitions-name", type="text", placeholder="e.g. quiet_range", style={"width": "260px"})]),
                html.Div([html.Label("description", htmlFor="definitions-description", style=label),
                          dcc.Input(id="definitions-description", type="text", style={"width": "520px"})]),
                *rule_inputs,
                toolbar([("New", "definitions-new"), ("Save", "definitions-save"), ("Enable", "definitions-enable"),
                         ("Disable", "definitions-disable"), ("Delete", "definitions-delete")]),
            ),
            section(
                "Test on history (nothing is saved)",
                html.Div(
                    [
                        html.Label("symbol", htmlFor="definitions-symbol", style={"marginRight": "6px"}),
                        dcc.Input(id="definitions-symbol", type="text", value=DEFAULT_SYMBOL, style={"width": "120px", "marginRight": "12px"}),
                        html.Label("timeframe", htmlFor="definitions-timeframe", style={"marginRight": "6px"}),
                        dcc.Dropdown(id="definitions-timeframe", options=list(TIMEFRAMES), value=DEFAULT_TIMEFRAME, clearable=False,
                                     style={"width": "100px", "display": "inline-block", "verticalAlign": "middle", "marginRight": "12px"}),
                        html.Button("Test on history", id="definitions-test"),
                    ],
                    style={"margin": "6px 0"},
                ),
                dcc.Loading(html.Div(id="definitions-test-result")),
            ),
            confirm_dialog("definitions-confirm"),
            dcc.Store(id="definitions-pending"),
        ]
    )


# ----------------------------------------------------------------------------------------------- data
def definition_rows(context: ExplorerContext) -> list[dict[str, Any]]:
    """Every regime with its origin, state, detector and rules (the rules that are scored for built-ins)."""
    from forex_pipeline.regimes.hmm import HMM_REGIMES
    from forex_pipeline.rule_syntax import describe_rules
    from forex_pipeline.store.regime_definitions import active_regimes, list_regime_definitions

    with context.read_session() as session:
        records = list_regime_definitions(session)
        active = active_regimes(session, context.settings).definitions
    hmm = context.settings.regimes.detector == "hmm"
    rows = []
    for record in records:
        rules = {f: b.model_dump(exclude_none=True) for f, b in active[record.name].rules.items()} if record.name in active else record.rules
        rows.append(
            {
                "name": record.name, "origin": "yaml" if record.is_builtin else "custom", "enabled": record.enabled,
                "scored": record.name in active, "labelled_by": "hmm" if hmm and record.name in HMM_REGIMES else "rules",
                "rules": describe_rules(rules), "description": record.description,
            }
        )
    return rows


def editor_rules(texts: dict[str, str | None]) -> dict[str, str]:
    """The rule texts typed in the editor, one per feature, empty ones left out."""
    return {feature: text.strip() for feature, text in texts.items() if text and text.strip()}


def rule_texts(context: ExplorerContext, name: str) -> tuple[str, dict[str, str]]:
    """(description, rule text per feature) of a stored regime, for the editor."""
    from forex_pipeline.rule_syntax import describe_bound
    from forex_pipeline.store.regime_definitions import get_regime_definition

    with context.read_session() as session:
        record = get_regime_definition(session, name)
    if record is None:
        raise LookupError(f"regime {name!r} is not defined")
    rules = record.rules
    if record.is_builtin and name in context.settings.regimes.definitions:
        rules = {f: b.model_dump(exclude_none=True) for f, b in context.settings.regimes.definitions[name].rules.items()}
    return record.description, {feature: describe_bound(bound) for feature, bound in rules.items()}


def _builtin(context: ExplorerContext, name: str) -> bool:
    from forex_pipeline.store.regime_definitions import get_regime_definition

    with context.read_session() as session:
        record = get_regime_definition(session, name)
    return record is not None and record.is_builtin


def candidate_regimes(context: ExplorerContext, name: str, description: str, rules: dict[str, str]):  # noqa: ANN201
    """The scored regimes (a RegimeSettings) as they would be with `name` saved with these rules (checked as
    `regimes add` checks them), enabled; a built-in regime is tested with its YAML rules."""
    from forex_pipeline.regimes.catalog import active_regimes
    from forex_pipeline.store.regime_definitions import RegimeDefinitionRecord, list_regime_definitions, validated_rules

    with context.read_session() as session:
        records = list_regime_definitions(session)
    existing = next((r for r in records if r.name == name), None)
    if existing is not None and existing.is_builtin:
        rows = [r if r.name != name else RegimeDefinitionRecord(**{**r.__dict__, "enabled": True}) for r in records]
        return active_regimes(context.settings.regimes, rows)
    checked = validated_rules(name, description, rules)
    now = datetime.now(timezone.utc)
    candidate = RegimeDefinitionRecord(
        id=existing.id if existing else 0, name=name, description=description, rules=checked, enabled=True,
        is_builtin=False, created_at=existing.created_at if existing else now, updated_at=now,
    )
    rows = [candidate if r.name == name else r for r in records] + ([] if existing else [candidate])
    return active_regimes(context.settings.regimes, rows)


def test_on_history(context: ExplorerContext, name: str, description: str, rules: dict[str, str], symbol: str, timeframe: str) -> html.Div:
    """Label shares and the timeline of `symbol` at `timeframe` with the edited regime in place (nothing saved)."""
    from forex_pipeline.explorer.figures import timeline_figure
    from forex_pipeline.regimes.preview import preview_regimes

    if not symbol or not symbol.strip():
        raise ValueError("symbol is empty; give a symbol with bars (an import, a FOREX_SAMPLE_DATA file, SYNTH or MARKOV)")
    regimes = candidate_regimes(context, name, description, rules) if name else _scored(context)
    preview = preview_regimes(symbol.strip(), timeframe, regimes, context.settings)
    cell = {"padding": "2px 12px", "borderBottom": "1px solid #eee", "textAlign": "left"}
    shares = html.Table(
        [html.Tr([html.Th("regime", style=cell), html.Th("bars", style=cell), html.Th("share", style=cell)])]
        + [html.Tr([html.Td(r, style=cell), html.Td(str(n), style=cell), html.Td(f"{s:.1%}", style=cell)], id=f"definitions-share-{r}")
           for r, n, s in preview.shares],
        id="definitions-shares", style={"borderCollapse": "collapse", "margin": "6px 0"},
    )
    counts = {r: n for r, n, _ in preview.shares}
    warning = []
    if name and counts.get(name, 0) == 0:
        warning = [html.P(
            f"{name} labels no bar here: regimes are matched in order (built-ins first, then custom regimes; the HMM "
            "detector matches custom regimes first) and the first match wins, so every bar it would match went to an "
            "earlier regime or matched none. Loosen its rules, or disable the regime that claims those bars.",
            id="definitions-test-warning", style={"color": "#8a4b00"},
        )]
    title = f"{preview.symbol} {preview.timeframe}: {len(preview.labels)} bars after the training split ({preview.detector} detector)"
    return html.Div(
        [
            html.P(f"{preview.symbol} {preview.timeframe} from {preview.source}; {preview.n_bars} bars labelled, shares over the "
                   f"{len(preview.labels)} after the training split" + (f", with {name} as edited" if name else "")),
            shares,
            *warning,
            dcc.Graph(figure=timeline_figure(preview.timestamps, preview.close, preview.labels, title)),
        ]
    )


def _scored(context: ExplorerContext):  # noqa: ANN202 - RegimeSettings
    from forex_pipeline.store.regime_definitions import active_regimes

    with context.read_session() as session:
        return active_regimes(session, context.settings)


def apply(context: ExplorerContext, pending: dict[str, Any]) -> str:
    """Carry out a confirmed action in one transaction; the outcome in words (store errors propagate)."""
    from forex_pipeline.store import regime_definitions as store

    action, name = str(pending["action"]), str(pending["name"])
    with context.write_session() as session:
        if action == "add":
            store.add_regime_definition(session, name, pending["rules"], description=str(pending["description"]))
        elif action == "update":
            store.update_regime_definition(session, name, rules=pending["rules"], description=str(pending["description"]))
        elif action in ("enable", "disable"):
            store.set_regime_enabled(session, name, action == "enable")
        elif action == "delete":
            store.delete_regime_definition(session, name)
        else:
            raise ValueError(f"unknown action {action!r}")
    return f"regime {name}: {dict(add='added', update='saved', enable='enabled', disable='disabled', delete='deleted')[action]}"


def plan(context: ExplorerContext, button: str, name: str, description: str, rules: dict[str, str]) -> dict[str, Any]:
    """The action a button asks for, checked before the confirmation is shown (ValueError/LookupError
    with the reason): save = add or update; built-ins cannot be edited or deleted."""
    from forex_pipeline.rule_syntax import describe_rules
    from forex_pipeline.store.regime_definitions import get_regime_definition, validated_rules

    if not name:
        raise ValueError("name is empty; select a regime or type the name of a new one")
    with context.read_session() as session:
        record = get_regime_definition(session, name)
    if button == "save":
        if record is not None and record.is_builtin:
            raise ValueError(f"regime {name!r} is built in: its rules come from the settings file (regimes.definitions); "
                             "edit them there, or disable it here")
        checked = validated_rules(name, description, rules)
        action = "update" if record is not None else "add"
        return {"action": action, "name": name, "description": description, "rules": rules, "text": describe_rules(checked)}
    if record is None:
        raise LookupError(f"regime {name!r} is not defined; save it first")
    if button == "delete" and record.is_builtin:
        raise ValueError(f"regime {name!r} is built in (from the settings); disable it instead")
    return {"action": button, "name": name, "description": description, "rules": rules, "text": ""}


# ------------------------------------------------------------------------------------------ callbacks
RULE_STATES = [State(f"definitions-rule-{feature}", "value") for feature in REGIME_FEATURES]
RULE_OUTPUTS = [Output(f"definitions-rule-{feature}", "value") for feature in REGIME_FEATURES]


def _texts(values: tuple[Any, ...]) -> dict[str, str]:
    return editor_rules(dict(zip(REGIME_FEATURES, values, strict=True)))


def register_callbacks(app: Dash, context: ExplorerContext) -> None:
    """Grid refresh, editor fill, test on history, and the confirm-then-act actions."""

    @app.callback(Output(GRID_ID, "rowData"), Input("tabs", "value"), Input("definitions-banner", "children"))
    def _rows(tab: str, _banner: Any):  # noqa: ANN202
        if tab != "definitions":
            return no_update
        return definition_rows(context)

    @app.callback(
        Output("definitions-name", "value"), Output("definitions-description", "value"), *RULE_OUTPUTS,
        Input(GRID_ID, "cellClicked"), Input("definitions-new", "n_clicks"), prevent_initial_call=True,
    )
    def _fill(clicked: dict[str, Any] | None, _new: int | None):  # noqa: ANN202
        # cellClicked (not selectedRows) so that clicking the selected row again reloads it after "New"
        if ctx.triggered_id == "definitions-new" or not clicked or not clicked.get("rowId"):
            return "", "", *([""] * len(REGIME_FEATURES))
        name = str(clicked["rowId"])
        try:
            description, texts = rule_texts(context, name)
        except EXPECTED_ERRORS:
            return no_update, no_update, *([no_update] * len(REGIME_FEATURES))
        return name, description, *(texts.get(feature, "") for feature in REGIME_FEATURES)

    @app.callback(
        Output("definitions-test-result", "children"), Output("definitions-banner", "children"),
        Input("definitions-test", "n_clicks"),
        State("definitions-name", "value"), State("definitions-description", "value"), *RULE_STATES,
        State("definitions-symbol", "value"), State("definitions-timeframe", "value"), prevent_initial_call=True,
    )
    def _test(_clicks: int | None, name: str | None, description: str | None, *rest: Any):  # noqa: ANN202
        *values, symbol, timeframe = rest
        try:
            result = test_on_history(context, (name or "").strip(), description or "", _texts(tuple(values)), symbol or "", timeframe)
        except (*EXPECTED_ERRORS, FileNotFoundError) as exc:
            return html.Div(), banner(error_message(exc), "error")
        return result, banner()

    @app.callback(
        Output("definitions-confirm", "message"), Output("definitions-confirm", "displayed"), Output("definitions-pending", "data"),
        Output("definitions-banner", "children", allow_duplicate=True),
        Input("definitions-save", "n_clicks"), Input("definitions-enable", "n_clicks"), Input("definitions-disable", "n_clicks"),
        Input("definitions-delete", "n_clicks"),
        State("definitions-name", "value"), State("definitions-description", "value"), *RULE_STATES, prevent_initial_call=True,
    )
    def _ask(_s: int | None, _e: int | None, _d: int | None, _x: int | None, name: str | None, description: str | None, *values: Any):  # noqa: ANN202
        button = str(ctx.triggered_id).removeprefix("definitions-")
        try:
            pending = plan(context, button, (name or "").strip(), description or "", _texts(values))
        except EXPECTED_ERRORS as exc:
            return no_update, False, None, banner(error_message(exc), "error")
        message = CONFIRMATIONS[pending["action"]].format(name=pending["name"], rules=pending["text"])
        return message, True, pending, banner()

    @app.callback(
        Output("definitions-banner", "children", allow_duplicate=True),
        Input("definitions-confirm", "submit_n_clicks"), State("definitions-pending", "data"), prevent_initial_call=True,
    )
    def _act(_submitted: int | None, pending: dict[str, Any] | None):  # noqa: ANN202
        if not pending:
            return no_update
        return outcome_banner(lambda: apply(context, pending))
