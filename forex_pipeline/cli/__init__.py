"""The `forex-pipeline` console command: one typer app, one sub-app per area."""

from __future__ import annotations

import importlib
import warnings

import typer

# Dagster flags beta APIs (MultiToSingleDimensionPartitionMapping, sensor owners) on every import;
# users of the command can do nothing about it.
warnings.filterwarnings("ignore", message=r".*is currently in beta.*")

app = typer.Typer(
    no_args_is_help=True,
    help="forex_pipeline: two-phase forex model grid. Add --debug to any command for a full traceback on error.",
    pretty_exceptions_show_locals=False,
)

# Each sub-app lives in forex_pipeline/cli/<area>.py and exposes `app`; imports stay light.
for _area in ("db", "data", "grid", "queue", "regimes", "results", "bundle", "demo", "settings", "ui"):
    try:
        _module = importlib.import_module(f"forex_pipeline.cli.{_area}")
    except ModuleNotFoundError as exc:
        if exc.name != f"forex_pipeline.cli.{_area}":
            raise
        continue
    if getattr(_module, "IS_ROOT_COMMANDS", False):
        _module.register(app)
    else:
        app.add_typer(_module.app, name=_area)


@app.callback()
def _start() -> None:
    """Runs before every command: the garbage collector, off while the CLI started, is on again (a
    `reading` command turns it off for itself, cli/common.py)."""
    import gc

    gc.enable()


def main(argv: list[str] | None = None) -> None:
    """The `forex-pipeline` entry point: the app behind the one error path (cli/common.py). Without
    `argv` it is the process's command (the console script, `python -m`); with it, a call that returns
    to its caller (tests)."""
    from forex_pipeline.cli.common import run

    run(app, argv, as_process=argv is None)
