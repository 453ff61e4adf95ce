"""`forex-pipeline grid ...`: check a grid spec and show what training it would take (`plan`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from forex_pipeline.cli.common import DatabaseUnavailable, console, errors, read_session
from forex_pipeline.errors import EXIT_BAD_INPUT

if TYPE_CHECKING:
    from forex_pipeline.features.spec import FeatureSetSpec, Preprocessing
    from forex_pipeline.grid.estimate import EvaluationCost, GridPlan
    from forex_pipeline.grid.expand import Grid
    from forex_pipeline.grid.spec import GridSpec
    from forex_pipeline.models.spec import ModelSpec

app = typer.Typer(no_args_is_help=True, help="Grids of model configurations (feature sets x model specs).")


@app.callback()
def grid_commands() -> None:
    """Grids of model configurations (a group, so `grid plan` keeps its name whatever commands exist)."""


# ---------------------------------------------------------------- shared by the grid commands


def load_grid_or_exit(path: Path) -> tuple[GridSpec, Grid]:
    """The validated and expanded grid of a YAML file; prints every problem and exits 2 if it is invalid."""
    from forex_pipeline.grid.expand import data_problems
    from forex_pipeline.grid.expand import expand_grid
    from forex_pipeline.grid.expand import load_grid_spec
    from forex_pipeline.grid.spec import GridSpecError

    from forex_pipeline.data.sources import default_sample_dir
    from forex_pipeline.settings import get_settings

    try:
        spec = load_grid_spec(path)
        grid = expand_grid(spec)
        settings = get_settings()
        problems = data_problems(grid, settings, settings.artifacts_dir, default_sample_dir())
        if problems:
            raise GridSpecError(problems, str(path))
        return spec, grid
    except GridSpecError as exc:
        errors().print(str(exc), style="red", markup=False, highlight=False)
        raise typer.Exit(code=EXIT_BAD_INPUT) from exc


def plan_with_database(grid: Grid, use_database: bool = True) -> tuple[GridPlan, str]:
    """The plan, with trained configurations and past run times from the project DB when it is readable."""
    from forex_pipeline.grid.estimate import plan

    if not use_database:
        return plan(grid, probe=True), "project database not consulted (--no-db)"
    try:
        with read_session() as session:
            return plan(grid, session, probe=True), "trained configurations and past run times from the project database"
    except DatabaseUnavailable as exc:
        return plan(grid, probe=True), f"project database not read: {exc}"


def format_duration(seconds: float) -> str:
    """A duration for people: 45 s, 12 min, 3 h 05 min, 2 d 4 h."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours, rest = divmod(round(minutes), 60)
    if hours < 48:
        return f"{hours} h {rest:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _preprocessing_label(preprocessing: Preprocessing) -> str:
    default = type(preprocessing)()
    changed = {name: value for name, value in preprocessing.model_dump().items() if value != getattr(default, name)}
    return ", ".join(f"{k}={v}" for k, v in changed.items()) or "defaults"


def _feature_set_row(fs: FeatureSetSpec) -> list[str]:
    indicators = "; ".join(f"{name}:{','.join(tfs)}" for name, tfs in fs.indicator_timeframes.items()) or "-"
    return [
        fs.partition_key, fs.symbol, fs.base_timeframe, str(fs.days_history), fs.as_of.strftime("%Y-%m-%d %H:%M"),
        indicators, ", ".join(fs.additional_features) or "-", _preprocessing_label(fs.preprocessing),
    ]


def _model_spec_row(ms: ModelSpec) -> list[str]:
    encoder = ms.encoder if ms.encoder == "none" else f"{ms.encoder}/{ms.encoder_dim}"
    params = ", ".join(f"{k}={v}" for k, v in ms.hyperparameters.items()) or "defaults"
    return [ms.partition_key, ms.model_type, encoder, str(ms.horizon), params]


def _truncated_table(title: str, headers: list[str], rows: list[list[str]], max_rows: int) -> Table:
    """A table of the first `max_rows` rows, with a last row saying how many were left out."""
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows[:max_rows]:
        table.add_row(*row)
    if len(rows) > max_rows:
        table.add_row(f"... and {len(rows) - max_rows} more", *[""] * (len(headers) - 1))
    return table


def summary_table(grid_plan: GridPlan, concurrent_runs: int, cost: EvaluationCost | None = None) -> Table:
    """Size, already trained and the time estimate of a plan (with the evaluation's cost when given)."""
    table = Table(title=f"Grid {grid_plan.name}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows: list[tuple[str, Any]] = [
        ("grid hash", grid_plan.grid_hash[:12]),
        ("model configurations", grid_plan.size),
        ("feature sets", grid_plan.n_feature_sets),
        ("model specs", grid_plan.n_model_specs),
        ("already trained", grid_plan.already_trained),
        ("to train", grid_plan.to_train),
        ("estimated time, one run at a time", format_duration(grid_plan.estimated_seconds)),
        (f"estimated time, {concurrent_runs} concurrent runs", format_duration(grid_plan.estimated_seconds / concurrent_runs)),
    ]
    if cost is not None:
        rows += [
            ("evaluation", cost.describe()),
            ("noise references (once per feature set x horizon)", f"{cost.reference_runs} x {cost.noise_models} random-forecast models"),
            ("evaluation time included above", format_duration(cost.extra_seconds * (grid_plan.calibration.shared_rate or 1.0))),
        ]
    for what, value in rows:
        table.add_row(what, str(value))
    return table


# ---------------------------------------------------------------- commands


@app.command("plan")
def plan_command(
    grid_file: Path = typer.Argument(..., help="grid spec YAML (see examples/grids/demo.yaml)"),
    max_rows: int = typer.Option(20, "--max-rows", min=1, help="rows shown per table"),
    use_database: bool = typer.Option(True, "--db/--no-db", help="count configurations already trained in the project DB"),
) -> None:
    """Validate a grid spec and show its size, feature sets, model specs, what is trained and a time estimate."""
    from forex_pipeline.settings import get_settings

    _, grid = load_grid_or_exit(grid_file)
    grid_plan, source = plan_with_database(grid, use_database)
    settings = get_settings()
    from forex_pipeline.grid.estimate import evaluation_cost

    cost = evaluation_cost(grid_plan.pending, settings)
    out = console()
    out.print(summary_table(grid_plan, settings.queue.max_concurrent_runs, cost))
    out.print(f"{source}; {grid_plan.calibration.describe()}", style="dim", highlight=False)
    out.print(_truncated_table(
        f"Feature sets ({grid_plan.n_feature_sets})",
        ["partition key", "symbol", "base", "days", "as_of", "indicators", "additional features", "preprocessing"],
        [_feature_set_row(fs) for fs in grid_plan.feature_sets],
        max_rows,
    ))
    out.print(_truncated_table(
        f"Model specs ({grid_plan.n_model_specs})",
        ["partition key", "model type", "encoder", "horizon", "hyperparameters"],
        [_model_spec_row(ms) for ms in grid_plan.model_specs],
        max_rows,
    ))


@app.command("submit")
def submit_command(
    grid_file: Path = typer.Argument(..., help="grid spec YAML (see examples/grids/demo.yaml)"),
    name: str | None = typer.Option(None, "--name", help="queue name (default: the grid's name)"),
    run: bool = typer.Option(True, "--run/--no-run", help="work the queue now in this process (one Dagster run per batch)"),
    detach: bool = typer.Option(False, "--detach", help="hand the queue to the Dagster daemon's sensor instead"),
    priority: int = typer.Option(0, "--priority", help="queues with a higher priority are served first"),
    max_parallel: int | None = typer.Option(None, "--max-parallel", help="batch runs of this queue at once (default queue.max_concurrent_runs)"),
) -> None:
    """Queue a grid (a training_queue row) and work it through Dagster; prints the queue id first."""
    from forex_pipeline.cli.queue import run_queue_command
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store.db import get_engine, upgrade
    from forex_pipeline.queue.lifecycle import submit_grid

    _, grid = load_grid_or_exit(grid_file)
    settings = get_settings()
    upgrade(settings.database_url)
    queue_id = submit_grid(
        get_engine(settings.database_url), grid, settings.artifacts_dir, name=name, priority=priority, max_parallel=max_parallel
    )
    typer.echo(f"queue_id={queue_id}")
    if run or detach:
        run_queue_command(queue_id, detach=detach)
