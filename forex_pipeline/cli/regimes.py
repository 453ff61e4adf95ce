"""`forex-pipeline regimes ...`: list, add, enable/disable custom regimes, and test the rules on history."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="Market regimes: built-in (YAML) and custom (database) rule sets.")


def console() -> Console:
    return Console(soft_wrap=True)


def _fail(message: str) -> None:
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _engine_and_settings():  # noqa: ANN202
    from forex_pipeline.settings import get_settings
    from forex_pipeline.store import regime_definitions
    from forex_pipeline.store.db import get_engine, session_scope, upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    engine = get_engine(settings.database_url)
    with session_scope(engine) as session:
        regime_definitions.seed_regime_definitions(session, settings)
    return engine, settings


def parse_rule(text: str) -> tuple[str, dict[str, float]]:
    """'feature:min:max' with either bound empty, e.g. 'trend_strength:0.3:' or 'volatility_percentile::0.2'."""
    parts = text.split(":")
    if len(parts) != 3:
        raise typer.BadParameter(f"rule {text!r} is not FEATURE:MIN:MAX (leave a bound empty to omit it)")
    feature, low, high = parts
    try:
        bound = {k: float(v) for k, v in (("min", low), ("max", high)) if v.strip()}
    except ValueError as exc:
        raise typer.BadParameter(f"rule {text!r}: bounds must be numbers") from exc
    return feature, bound


def describe_rules(rules: dict[str, dict[str, float]]) -> str:
    """'trend_strength >= 0.25, return_sign <= -1'."""
    parts = []
    for feature, bound in rules.items():
        limits = [f"{op} {bound[key]:g}" for key, op in (("min", ">="), ("max", "<=")) if bound.get(key) is not None]
        parts.append(f"{feature} {' and '.join(limits)}")
    return ", ".join(parts)


@app.command("list")
def list_regimes() -> None:
    """Every regime with its rules, origin and whether it is scored."""
    from forex_pipeline.store.regime_definitions import active_regimes
    from forex_pipeline.store import regime_definitions
    from forex_pipeline.store.db import session_scope

    engine, settings = _engine_and_settings()
    with session_scope(engine) as session:
        rows = regime_definitions.list_regime_definitions(session)
        active = active_regimes(session, settings).definitions
    table = Table("regime", "origin", "scored", "rules", "description")
    for row in rows:
        rules = {f: b.model_dump(exclude_none=True) for f, b in active[row.name].rules.items()} if row.name in active else row.rules
        table.add_row(row.name, "yaml" if row.is_builtin else "custom", "yes" if row.name in active else "no", describe_rules(rules), row.description)
    console().print(table)


@app.command()
def add(
    name: str,
    rule: list[str] = typer.Option(..., "--rule", help="FEATURE:MIN:MAX, repeatable; features: trend_strength, volatility_percentile, return_sign"),
    description: str = typer.Option("", help="what the regime means"),
) -> None:
    """Add a custom regime (rules are data: no code). It is scored from the next model recorded on."""
    from forex_pipeline.store import regime_definitions
    from forex_pipeline.store.db import session_scope

    engine, _ = _engine_and_settings()
    rules = dict(parse_rule(r) for r in rule)
    try:
        with session_scope(engine) as session:
            regime_definitions.add_regime_definition(session, name, rules, description=description)
    except ValueError as exc:
        _fail(str(exc))
    console().print(f"regime {name} added")


def _set_enabled(name: str, enabled: bool) -> None:
    from forex_pipeline.store import regime_definitions
    from forex_pipeline.store.db import session_scope

    engine, _ = _engine_and_settings()
    try:
        with session_scope(engine) as session:
            regime_definitions.set_regime_enabled(session, name, enabled)
    except LookupError as exc:
        _fail(str(exc))
    console().print(f"regime {name} {'enabled' if enabled else 'disabled'}")


@app.command()
def enable(name: str) -> None:
    """Score this regime again."""
    _set_enabled(name, True)


@app.command()
def disable(name: str) -> None:
    """Stop scoring this regime (its row and past results stay)."""
    _set_enabled(name, False)


@app.command("test")
def test_rules(
    symbol: str = typer.Argument(..., help="a symbol with bars (import, FOREX_SAMPLE_DATA file, or SYNTH)"),
    timeframe: str = typer.Option("1h", help="base timeframe to label"),
) -> None:
    """Label a symbol's history with the scored regimes: share of bars per regime (and, for SYNTH,
    accuracy against the generator's ground truth)."""
    import numpy as np

    from forex_pipeline.data.resample import resample_bars
    from forex_pipeline.data.sources import default_sample_dir, load_raw_bars
    from forex_pipeline.store.regime_definitions import active_regimes
    from forex_pipeline.regimes.labels import label_regimes, majority_labels, regime_accuracy, regime_features
    from forex_pipeline.store.db import session_scope

    engine, settings = _engine_and_settings()
    try:
        raw = load_raw_bars(symbol, settings, default_sample_dir())
        bars = raw.bars if raw.timeframe == timeframe else resample_bars(raw.bars, timeframe)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    with session_scope(engine) as session:
        regimes = active_regimes(session, settings)
    labels = np.asarray(label_regimes(bars["close"].to_numpy(), regimes))
    table = Table("regime", "bars", "share")
    names, counts = np.unique(labels, return_counts=True)
    for name, count in sorted(zip(names, counts), key=lambda x: -x[1]):
        table.add_row(str(name), str(count), f"{count / len(labels):.1%}")
    console().print(f"{symbol} {timeframe}: {len(labels)} bars from {raw.source}")
    console().print(table)
    if raw.source.startswith("synthetic"):
        from forex_pipeline.data.synthetic import generate_synthetic_bars
        from forex_pipeline.data.sources import SYNTH_DAYS, SYNTH_SEED

        truth = majority_labels(generate_synthetic_bars(SYNTH_DAYS, SYNTH_SEED).regimes, bars.index)
        valid = regime_features(bars["close"].to_numpy(), regimes).notna().all(axis=1).to_numpy()
        console().print(f"accuracy against the generator's regimes: {regime_accuracy(labels, truth, valid):.1%}")
