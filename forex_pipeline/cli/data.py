"""`forex-pipeline data ...`: import bar files, write synthetic bars, list imported symbols."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from forex_pipeline.cli.common import console, fail

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(no_args_is_help=True, help="Market data: import, synthesise and list bars.")


def _symbol(value: str) -> str:
    from forex_pipeline.settings import normalize_symbol

    try:
        return normalize_symbol(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _timeframe_or_unknown(bars: pd.DataFrame) -> str:
    from forex_pipeline.data.loaders import infer_timeframe

    try:
        return infer_timeframe(bars)
    except ValueError:
        return "?"


@app.command("import")
def import_file(
    path: Path = typer.Argument(..., help="bar file: OHLCV CSV(.gz)/Parquet or HistData M1"),
    symbol: str = typer.Option(..., "--symbol", help="market name, e.g. EURUSD or EUR/USD"),
    file_format: str = typer.Option("auto", "--format", help="auto, ohlcv or histdata"),
    source_tz: str | None = typer.Option(
        None, "--source-tz", help="zone of naive timestamps (default UTC; HistData: fixed EST, UTC-5)"
    ),
) -> None:
    """Validate a bar file and store it as the symbol's imported bars (nothing is written on failure)."""
    from forex_pipeline.data.sources import import_bar_file
    from forex_pipeline.data.validation import BarValidationError
    from forex_pipeline.settings import get_settings

    key = _symbol(symbol)
    if file_format not in ("auto", "ohlcv", "histdata"):
        raise typer.BadParameter(f"--format {file_format!r} is not one of auto, ohlcv, histdata")
    settings = get_settings()
    try:
        imported = import_bar_file(
            path, key, settings.artifacts_dir, format=file_format, source_tz=source_tz, validation=settings.data.validation
        )
    except (BarValidationError, FileNotFoundError, ValueError) as exc:
        fail(f"import failed: {exc}")
    bars = imported.result.bars
    console().print(
        f"imported {key}: {len(bars)} rows, {bars.index[0]} -> {bars.index[-1]} into {imported.path}",
        highlight=False,
        soft_wrap=True,
    )
    dropped = {rule: n for rule, n in imported.result.report.dropped.items() if n}
    console().print(f"dropped: {dropped if dropped else 'none'}", highlight=False)


@app.command("synth")
def synth(
    symbol: str = typer.Option("SYNTH", "--symbol", help="name to import the synthetic bars under"),
    days: int = typer.Option(365, "--days", min=1, help="calendar days of M1 bars"),
    seed: int = typer.Option(0, "--seed", help="random seed (same seed, same bars)"),
) -> None:
    """Write regime-switching synthetic M1 bars as an import, with their ground-truth regime labels."""
    from forex_pipeline.data.bar_store import import_path
    from forex_pipeline.data.bar_store import regimes_path
    from forex_pipeline.data.bar_store import write_bars
    from forex_pipeline.data.bar_store import write_regimes
    from forex_pipeline.data.synthetic import generate_synthetic_bars
    from forex_pipeline.settings import get_settings

    key = _symbol(symbol)
    settings = get_settings()
    synthetic = generate_synthetic_bars(days, seed, symbol=key)
    target = write_bars(synthetic.bars, import_path(settings.artifacts_dir, key))
    labels = write_regimes(synthetic.regimes, regimes_path(settings.artifacts_dir, key))
    shares = ", ".join(f"{name}={share:.1%}" for name, share in synthetic.regime_proportions.items())
    console().print(f"wrote {len(synthetic.bars)} synthetic bars to {target}", highlight=False, soft_wrap=True)
    console().print(f"regime labels in {labels}: {shares}", highlight=False)


@app.command("list")
def list_imports() -> None:
    """Show imported symbols with their row count, first and last bar, and timeframe."""
    from forex_pipeline.data.bar_store import imports_dir
    from forex_pipeline.data.bar_store import read_bars
    from forex_pipeline.data.bar_store import regimes_path
    from forex_pipeline.settings import get_settings

    folder = imports_dir(get_settings().artifacts_dir)
    files = sorted(p for p in folder.glob("*.parquet") if not p.name.endswith(".regimes.parquet")) if folder.is_dir() else []
    if not files:
        console().print(f"no imported symbols in {folder}", highlight=False)
        return
    table = Table(title=f"imported bars ({folder})")
    for column in ("symbol", "rows", "first bar", "last bar", "timeframe", "regime labels"):
        table.add_column(column)
    for file in files:
        bars = read_bars(file)
        timeframe = _timeframe_or_unknown(bars)
        first, last = (str(bars.index[0]), str(bars.index[-1])) if len(bars) else ("-", "-")
        labelled = "yes" if regimes_path(folder.parent, file.stem).is_file() else "no"
        table.add_row(file.stem, str(len(bars)), first, last, timeframe, labelled)
    console().print(table)
