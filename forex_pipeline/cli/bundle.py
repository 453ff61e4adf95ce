"""`forex-pipeline bundle ...`: export the regime bests as a deploy bundle, show one, run one on a symbol's bars.

The same functions as the explorer's Deploy button and the Python API (forex_pipeline/pipeline/bundle.py).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from forex_pipeline.cli.common import console

app = typer.Typer(no_args_is_help=True, help="Deploy bundles: the regime bests of one market as one verified archive.")


@app.command("export")
def export(
    output: Path = typer.Option(..., "--output", "-o", help="the archive to write (.zip)"),
    symbol: str = typer.Option(None, "--symbol", help="market of the bests to bundle (needed when the bests trade several)"),
    timeframe: str = typer.Option(None, "--timeframe", help="base timeframe of the bests to bundle"),
) -> None:
    """Write the best kept model of every scored regime (one market), its inference configuration, feature
    columns, trust figures and checksums, and the regime settings, as one zip archive."""
    from forex_pipeline.pipeline.bundle import export_bundle
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store.db import get_engine, upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    manifest = export_bundle(get_engine(settings.database_url), settings, output, symbol=symbol, base_timeframe=timeframe)
    regimes = ", ".join(entry["regime"] for entry in manifest["entries"])
    console().print(f"wrote {output}: {manifest['symbol']} {manifest['base_timeframe']}, regimes {regimes}", highlight=False, soft_wrap=True)


@app.command("show")
def show(path: Path = typer.Argument(..., help="a bundle archive")) -> None:
    """Verify a bundle (every checksum) and list its regimes, models, inference configurations and trust figures."""
    from forex_pipeline.pipeline.bundle import describe, load_bundle

    bundle = load_bundle(path)
    summary = describe(bundle)
    table = Table("regime", "model", "inference", "sharpe", "holdout", "deflated", "p-value", "significant")
    for row in summary.to_dict("records"):
        inference = f"{row['prediction_method']}/{row['ensemble_method']} c>={row['confidence_threshold']:g} lb={row['lookback_window']}"
        table.add_row(
            row["regime"], row["model"], inference, *(_number(row.get(k)) for k in ("score", "holdout_score", "deflated_sharpe", "null_p_value")),
            str(row.get("significant")),
        )
    console().print(f"{path}: {bundle.symbol} {bundle.base_timeframe}, detector {bundle.regimes.detector}, checksums verified", highlight=False)
    console().print(table)


def _number(value: object) -> str:
    return "" if value is None else f"{float(value):.3f}"  # type: ignore[arg-type]


@app.command("run")
def run(
    path: Path = typer.Argument(..., help="a bundle archive"),
    symbol: str = typer.Option(None, "--symbol", help="bars to run on (default: the bundle's symbol): an import, a sample file, SYNTH, MARKOV"),
    start: str = typer.Option(None, "--from", help="first bar to trade (UTC); earlier bars are history (default: after train_fraction of the bars)"),
    output: Path = typer.Option(None, "--output", "-o", help="CSV file to write (default: stdout)"),
) -> None:
    """Label each bar of a symbol's history with the bundle's regimes and route it to that regime's model:
    CSV of timestamp, regime, model, forecast, confidence, signal, position."""
    from forex_pipeline.errors import InputError
    from forex_pipeline.io import atomic_write_text
    from forex_pipeline.pipeline.bundle import load_bundle, run_bundle
    from forex_pipeline.regimes.preview import bars_at, load_symbol
    from forex_pipeline.settings import get_settings

    bundle = load_bundle(path)
    try:
        raw, raw_timeframe, source, _ = load_symbol(symbol or bundle.symbol, get_settings())
        bars = bars_at(raw, raw_timeframe, bundle.base_timeframe)
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc)) from exc
    positions = run_bundle(bundle, bars, start=start)
    text = positions.to_csv(index_label="timestamp", date_format="%Y-%m-%dT%H:%M:%SZ", float_format="%.8g")
    if output is None:
        typer.echo(text, nl=False)
        return
    atomic_write_text(output, text)
    traded = int((positions["position"] != 0).sum())
    console().print(f"wrote {output}: {len(positions)} bars of {source}, {traded} with a position", highlight=False, soft_wrap=True)

