"""`forex-pipeline demo`: the demo grid end to end on the embedded storage, then the regime bests."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from forex_pipeline.errors import EXIT_FAILED
from forex_pipeline.keys import QueueStatus
from rich.console import Console


IS_ROOT_COMMANDS = True
DEFAULT_GRID = Path(__file__).resolve().parents[2] / "examples" / "grids" / "demo.yaml"
console = Console(soft_wrap=True)


def demo(grid: Path = typer.Option(DEFAULT_GRID, help="grid spec to run")) -> None:
    """Train the demo grid through Dagster, backtest every inference configuration, print the bests."""
    from forex_pipeline.cli.results import bests as print_bests
    from forex_pipeline.cli.runner import run_in_foreground
    from forex_pipeline.grid.expand import load_grid_spec
    from forex_pipeline.settings import dagster_home, get_settings
    from forex_pipeline.store.db import get_engine, upgrade
    from forex_pipeline.queue.lifecycle import submit_grid

    started = time.perf_counter()
    settings = get_settings()
    upgrade(settings.database_url)
    spec = load_grid_spec(grid)
    engine = get_engine(settings.database_url)
    queue_id = submit_grid(engine, spec, settings.artifacts_dir)
    console.print(f"demo grid {spec.name!r} queued as {queue_id}; database {settings.database_url}")
    final = run_in_foreground(queue_id, console)
    console.print(
        f"queue {queue_id} {final.status}: {final.completed_models} trained, {final.failed_models} failed, "
        f"{final.kept_models} kept, {final.deleted_models} files deleted in {time.perf_counter() - started:.0f}s"
    )
    print_bests(regime=None, fmt="table", output=None)
    for line in significance_lines(engine, settings):
        console.print(line, highlight=False, markup=False)
    console.print(
        f"\nOpen the Dagster UI with `DAGSTER_HOME={dagster_home()} dagster dev` and browse the asset "
        "`regime_bests` (tables and charts) and the `grid_batch` runs."
    )
    if final.status != QueueStatus.COMPLETED or final.failed_models:
        raise typer.Exit(EXIT_FAILED)


def significance_lines(engine, settings) -> list[str]:  # noqa: ANN001 - Engine, Settings
    """Plain words per regime: is its best significant, or luck, and why (docs/regimes.md)."""
    from forex_pipeline.pipeline.trust import plain_words
    from forex_pipeline.store.db import session_scope
    from forex_pipeline.store.regime_best_models import current_bests
    from forex_pipeline.store.regime_definitions import active_regimes

    with session_scope(engine) as session:
        bests = current_bests(session)
        regimes = list(active_regimes(session, settings).definitions)
    top = bests[bests["rank"] == 1]
    if top.empty:
        return ["No regime has a best yet, so nothing can be significant."]
    thresholds = settings.regimes.significance
    significant = [str(r) for r in top.loc[top["significant"].fillna(False).astype(bool), "regime"]]
    lines = ["", "Which bests can be trusted (selection Sharpe tested against N trials, random forecasts and the holdout):"]
    for _, row in top.iterrows():
        lines.append(f"  {row['regime']}: {row['partition_key']} - {plain_words(row.to_dict(), thresholds)}")
    for regime in sorted(set(regimes) - set(top["regime"])):
        lines.append(
            f"  {regime}: no best - no configuration made {settings.regimes.min_trades} trades in bars labelled {regime} "
            "(`forex-pipeline regimes test SYMBOL` shows how many bars the detector gave it)"
        )
    if significant:
        lines.append(f"Significant: {', '.join(significant)}. Every other regime's best is indistinguishable from luck.")
    else:
        lines.append("No best is significant: on these bars every regime's best is indistinguishable from luck.")
    return lines


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
