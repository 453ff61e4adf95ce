"""`forex-pipeline settings ...`: check a settings file, the specification's `training_pipeline:` form included."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from forex_pipeline.cli.common import console, fail

app = typer.Typer(no_args_is_help=True, help="Settings files: check one and see what each key does.")


@app.command("check")
def check(path: Path = typer.Argument(..., help="a settings YAML: the project's sections or the specification's training_pipeline: document")) -> None:
    """Validate a settings file; for the specification's keys, show the setting each one sets or why it is inert."""
    from forex_pipeline.settings import SettingsError, load_settings, spec_document
    from forex_pipeline.yaml_input import YamlInputError, load_yaml

    try:
        settings = load_settings(path)
        raw = load_yaml(path, what="settings file") or {}
        _, effects = spec_document(raw, str(path))
    except (SettingsError, YamlInputError) as exc:  # one line naming the file and the field, exit 2
        fail(str(exc))
    out = console()
    out.print(f"{path}: valid settings")
    if not effects:
        out.print("(the project's own sections; no training_pipeline: document)")
        return
    table = Table("key in the file", "value", "takes effect as", "note")
    for effect in effects:
        target = effect.target if effect.target is not None else "[yellow]accepted, inert[/yellow]"
        table.add_row(effect.path, str(effect.value)[:60], target, effect.note)
    out.print(table)
    inert = sum(e.target is None for e in effects)
    out.print(f"{len(effects)} keys: {len(effects) - inert} take effect, {inert} accepted but inert")
    out.print(f"artifacts_dir={settings.artifacts_dir} checkpoints_dir={settings.checkpoints_dir}")
