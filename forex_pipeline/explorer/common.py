"""What the explorer's views share: the context (database, artifacts, settings), sessions, the
message banner and confirmation dialogs, and the one way a view turns an expected error into a message.

Every action that changes data runs in one `write_session` (one transaction: all or nothing) after a
confirmation dialog, and reports its outcome in the view's banner; a refused action (InputError,
OperationError, ValueError from the store) shows its message and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dash import dcc, html

from forex_pipeline.errors import InputError, OperationError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from forex_pipeline.settings import Settings

BANNER_STYLES: dict[str, dict[str, str]] = {
    "info": {"background": "#e8f1fb", "border": "1px solid #9cc3ea", "color": "#123"},
    "success": {"background": "#e9f7ee", "border": "1px solid #8fd0a6", "color": "#0b3d1c"},
    "error": {"background": "#fdecec", "border": "1px solid #eb9c9c", "color": "#5c0b0b"},
}
# Expected failures of a user action: shown in the banner, never as a traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (InputError, OperationError, ValueError, LookupError)


@dataclass
class ExplorerContext:
    """What every view needs: the project database, the artifacts folder and the settings."""

    database_url: str
    artifacts_dir: Path
    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        """One engine (connection pool) per app, made on first use."""
        if self._engine is None:
            from forex_pipeline.store.db import make_engine

            self._engine = make_engine(self.database_url)
        return self._engine

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reads (no commit)."""
        from sqlalchemy.orm import Session

        with Session(self.engine) as session:
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back (and re-raised) on any error."""
        from forex_pipeline.store.db import session_scope

        with session_scope(self.engine) as session:
            yield session


def banner(text: str = "", kind: str = "info") -> html.Div:
    """A message banner (info, success or error); empty text renders nothing."""
    if not text:
        return html.Div()
    style = {"padding": "8px 12px", "margin": "8px 0", "borderRadius": "4px", "whiteSpace": "pre-wrap", **BANNER_STYLES[kind]}
    return html.Div(text, role="alert" if kind == "error" else "status", className=f"banner banner-{kind}", style=style)


def banner_slot(view: str) -> html.Div:
    """The place a view's messages appear: `{view}-banner`."""
    return html.Div(id=f"{view}-banner")


def toolbar(buttons: Sequence[tuple[str, str]], *extra: Any) -> html.Div:
    """A view's row of action buttons, given as (label, id), followed by `extra` components."""
    return html.Div(
        [*(html.Button(label, id=component_id, style={"marginRight": "8px"}) for label, component_id in buttons), *extra],
        style={"margin": "8px 0"},
    )


def confirm_dialog(component_id: str) -> dcc.ConfirmDialog:
    """A browser confirmation dialog; a callback sets its `message` and `displayed`, then acts on `submit_n_clicks`."""
    return dcc.ConfirmDialog(id=component_id, message="")


def error_message(exc: BaseException) -> str:
    """The one-line message of an expected error (the store and pipeline messages name the row and field)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def run_label(feature_set: dict[str, Any], model_spec: dict[str, Any], fallback: str) -> str:
    """The readable name of a run's configuration (`EURUSD 1h 365d | rf h5 max_depth=4`) from its stored
    specs; `fallback` (the partition key) when they no longer validate, so a row never goes nameless."""
    from pydantic import ValidationError

    from forex_pipeline.features.spec import FeatureSetSpec
    from forex_pipeline.models.spec import ModelSpec

    try:
        return f"{FeatureSetSpec.model_validate(feature_set).label} | {ModelSpec.model_validate(model_spec).label}"
    except (ValidationError, ValueError):
        return fallback


def section(title: str, *children: Any) -> html.Section:
    """A titled block of a view."""
    return html.Section([html.H3(title, style={"margin": "12px 0 6px"}), *children])


def outcome_banner(action: Callable[[], str]) -> html.Div:
    """Run a confirmed data-changing action: its message in a success banner, or the message of an
    expected error in an error banner (the action's own transaction has then changed nothing)."""
    try:
        return banner(action(), "success")
    except EXPECTED_ERRORS as exc:
        return banner(error_message(exc), "error")
