"""`forex-pipeline regimes ...`: list, add, enable/disable custom regimes; label and test on history."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from forex_pipeline.cli.common import console, fail
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

app = typer.Typer(no_args_is_help=True, help="Market regimes: built-in (YAML) and custom (database) rule sets.")

DEFAULT_TEST_TIMEFRAMES = ("15m", "1h", "4h")


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


def parse_rule(text: str) -> tuple[str, dict[str, float] | str]:
    """A --rule option: 'FEATURE: > 0.7' / 'FEATURE > 75th percentile' (the specification's syntax,
    checked when the regime is stored) or the older 'FEATURE:MIN:MAX' with either bound empty."""
    import re

    parts = text.split(":")
    if len(parts) == 3:
        feature, low, high = (p.strip() for p in parts)
        try:
            bound = {k: float(v) for k, v in (("min", low), ("max", high)) if v}
        except ValueError as exc:
            raise typer.BadParameter(f"rule {text!r}: bounds must be numbers") from exc
        return feature, bound
    match = re.match(r"^\s*([A-Za-z_]+)\s*:?\s*([<>=].*)$", text)
    if len(parts) > 3 or match is None:
        raise typer.BadParameter(
            f"rule {text!r} is neither 'FEATURE: OPERATOR NUMBER' (e.g. 'trend_strength: > 0.7', "
            "'volatility: > 75th percentile') nor FEATURE:MIN:MAX"
        )
    return match[1], match[2].strip()


def _rules_text(rules: dict) -> str:
    from forex_pipeline.rule_syntax import describe_rules

    return describe_rules({feature: dict(bound) for feature, bound in rules.items()})


@app.command("list")
def list_regimes() -> None:
    """Every regime with its rules, origin and whether it is scored (and the detector in use)."""
    from forex_pipeline.regimes.hmm import HMM_REGIMES
    from forex_pipeline.store import regime_definitions
    from forex_pipeline.store.regime_definitions import active_regimes
    from forex_pipeline.store.db import session_scope

    engine, settings = _engine_and_settings()
    with session_scope(engine) as session:
        rows = regime_definitions.list_regime_definitions(session)
        active = active_regimes(session, settings).definitions
    hmm = settings.regimes.detector == "hmm"
    table = Table("regime", "origin", "scored", "labelled by", "rules", "description")
    for row in rows:
        rules = {f: b.model_dump(exclude_none=True) for f, b in active[row.name].rules.items()} if row.name in active else row.rules
        by = "hmm" if hmm and row.name in HMM_REGIMES else "rules"
        table.add_row(row.name, "yaml" if row.is_builtin else "custom", "yes" if row.name in active else "no", by, _rules_text(rules), row.description)
    console().print(f"detector: {settings.regimes.detector}" + (" (custom regimes are rules, matched first)" if hmm else ""))
    console().print(table)


@app.command()
def add(
    name: str,
    rule: list[str] = typer.Option(
        ..., "--rule",
        help="repeatable: 'FEATURE: > 0.7', 'FEATURE: < 50th percentile', '> 0.2 and <= 0.6', or FEATURE:MIN:MAX; "
        "features: trend_strength, returns, volatility, volatility_percentile, return_sign",
    ),
    description: str = typer.Option("", help="what the regime means"),
) -> None:
    """Add a custom regime (rules are data: no code). It is scored from the next model recorded on."""
    from forex_pipeline.store import regime_definitions
    from forex_pipeline.store.db import session_scope

    parsed = [parse_rule(r) for r in rule]
    features = [feature for feature, _ in parsed]
    repeated = sorted({f for f in features if features.count(f) > 1})
    if repeated:
        fail(f"regime {name!r}: more than one --rule on {', '.join(repeated)}; give one rule per feature "
             "(combine bounds as 'FEATURE: > 0.2 and < 0.6')")
    engine, _ = _engine_and_settings()
    rules = dict(parsed)
    try:
        with session_scope(engine) as session:
            regime_definitions.add_regime_definition(session, name, rules, description=description)
    except ValueError as exc:
        fail(str(exc))
    console().print(f"regime {name} added")


def _set_enabled(name: str, enabled: bool) -> None:
    from forex_pipeline.store import regime_definitions
    from forex_pipeline.store.db import session_scope

    engine, _ = _engine_and_settings()
    try:
        with session_scope(engine) as session:
            regime_definitions.set_regime_enabled(session, name, enabled)
    except LookupError as exc:
        fail(str(exc))
    console().print(f"regime {name} {'enabled' if enabled else 'disabled'}")


@app.command()
def enable(name: str) -> None:
    """Score this regime again."""
    _set_enabled(name, True)


@app.command()
def disable(name: str) -> None:
    """Stop scoring this regime (its row and past results stay)."""
    _set_enabled(name, False)


def _regimes(settings, detector: str | None):  # noqa: ANN001, ANN202
    from forex_pipeline.store.regime_definitions import active_regimes
    from forex_pipeline.store.db import get_engine, session_scope

    with session_scope(get_engine(settings.database_url)) as session:
        regimes = active_regimes(session, settings)
    return regimes if detector is None else regimes.model_copy(update={"detector": detector})


def _train_end(index: pd.DatetimeIndex, settings, train_end: str | None) -> int:  # noqa: ANN001
    """The first bar at/after --train-end, else the pipeline's split (training.train_fraction of the bars)."""
    import numpy as np
    import pandas as pd

    from forex_pipeline.regimes.preview import split_row

    if train_end is None:
        return split_row(len(index), settings.training.train_fraction)
    when = pd.Timestamp(train_end)
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    return int(np.searchsorted(index.asi8, when.as_unit("ns").value))


def _label(bars: pd.DataFrame, timeframe: str, regimes, end: int) -> np.ndarray:  # noqa: ANN001
    from forex_pipeline.regimes.labels import label_regimes

    try:
        return label_regimes(bars["close"].to_numpy(), regimes, timeframe=timeframe, train_end=end, timestamps=bars.index)
    except ValueError as exc:
        fail(str(exc))


DetectorOption = typer.Option(None, "--detector", help="rules or hmm (default: settings regimes.detector)")


@app.command("label")
def label(
    symbol: str = typer.Argument(..., help="a symbol with bars (import, FOREX_SAMPLE_DATA file, SYNTH or MARKOV)"),
    timeframe: str = typer.Option("1h", "--timeframe", help="base timeframe to label"),
    start: str = typer.Option(None, "--from", help="first bar to print (UTC date or time); labels use all history"),
    end: str = typer.Option(None, "--to", help="last bar to print (inclusive)"),
    output_format: str = typer.Option("csv", "--format", help="csv or json"),
    train_end: str = typer.Option(None, "--train-end", help="the HMM is fitted on bars before this time (default: training.train_fraction of the history)"),
    detector: str = DetectorOption,
) -> None:
    """Print `timestamp,regime` for every bar, to audit labels against any outside ground truth.

    Labels are computed on the whole history (so --from/--to only choose what is printed) with
    the scored regimes; the HMM is fitted on the bars before the training split.
    """
    import json

    import pandas as pd

    from forex_pipeline.data.timeframes import validate_timeframe
    from forex_pipeline.regimes.preview import bars_at, load_symbol

    if output_format not in ("csv", "json"):
        raise typer.BadParameter(f"--format {output_format!r}: use csv or json")
    if detector not in (None, "rules", "hmm"):
        raise typer.BadParameter(f"--detector {detector!r}: use rules or hmm")
    _, settings = _engine_and_settings()
    try:
        validate_timeframe(timeframe, "--timeframe")
        raw, raw_timeframe, source, _ = load_symbol(symbol, settings)
        bars = bars_at(raw, raw_timeframe, timeframe)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    regimes = _regimes(settings, detector)
    fit_end = _train_end(bars.index, settings, train_end)
    labels = _label(bars, timeframe, regimes, fit_end)
    frame = pd.DataFrame({"timestamp": bars.index, "regime": labels})
    if start is not None:
        frame = frame[frame["timestamp"] >= pd.Timestamp(start, tz="UTC")]
    if end is not None:
        frame = frame[frame["timestamp"] <= pd.Timestamp(end, tz="UTC")]
    stamps = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    fitted = "" if regimes.detector == "rules" else f", fitted on bars before {bars.index[min(fit_end, len(bars) - 1)]:%Y-%m-%dT%H:%MZ}"
    Console(stderr=True, soft_wrap=True).print(
        f"{symbol} {timeframe}: {len(bars)} bars from {source}; detector {regimes.detector}{fitted}; printing {len(frame)}",
        highlight=False,
    )
    if output_format == "json":
        typer.echo(json.dumps([{"timestamp": t, "regime": r} for t, r in zip(stamps, frame["regime"], strict=True)]))
    else:
        typer.echo("timestamp,regime")
        typer.echo("\n".join(f"{t},{r}" for t, r in zip(stamps, frame["regime"], strict=True)))


def _shares_table(labels: np.ndarray) -> Table:
    from forex_pipeline.regimes.preview import label_shares

    table = Table("regime", "bars", "share")
    for name, count, share in label_shares(labels):
        table.add_row(name, str(count), f"{share:.1%}")
    return table


def _confusion_table(confusion: pd.DataFrame) -> Table:
    table = Table("true \\ predicted", *[str(c) for c in confusion.columns])
    for name, row in confusion.iterrows():
        table.add_row(str(name), *[str(int(v)) for v in row])
    return table


@app.command("test")
def test_rules(
    symbol: str = typer.Argument(..., help="a symbol with bars (import, FOREX_SAMPLE_DATA file, SYNTH or MARKOV)"),
    timeframes: list[str] = typer.Option(None, "--timeframe", help="base timeframes to label (repeatable; default 15m, 1h, 4h)"),
    chart_dir: Path = typer.Option(None, "--chart-dir", help="where timeline charts go (default: artifacts/regimes)"),
    detector: str = DetectorOption,
) -> None:
    """Label a symbol's history on each timeframe, over the bars after the training split: accuracy
    and a confusion matrix on synthetic symbols (ground truth known), label shares and a timeline
    chart (PNG) on real ones, and how often coarser labels agree with their finer bars' majority."""
    import numpy as np
    import pandas as pd

    from forex_pipeline.data.timeframes import timeframe_minutes, validate_timeframe
    from forex_pipeline.regimes.labels import confusion_matrix, majority_labels, regime_accuracy, timeframe_agreement
    from forex_pipeline.regimes.preview import bars_at, load_symbol

    if detector not in (None, "rules", "hmm"):
        raise typer.BadParameter(f"--detector {detector!r}: use rules or hmm")
    _, settings = _engine_and_settings()
    try:
        for tf in timeframes or ():
            validate_timeframe(tf, "--timeframe")
        raw, raw_timeframe, source, truth = load_symbol(symbol, settings)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    regimes = _regimes(settings, detector)
    wanted = sorted(timeframes or DEFAULT_TEST_TIMEFRAMES, key=timeframe_minutes)
    usable = [tf for tf in wanted if timeframe_minutes(tf) >= timeframe_minutes(raw_timeframe)]
    for tf in sorted(set(wanted) - set(usable), key=timeframe_minutes):
        console().print(f"{tf}: skipped, the source bars are {raw_timeframe}")
    if not usable:
        fail(f"no timeframe at or above the source's {raw_timeframe} among {', '.join(wanted)}")
    console().print(f"{symbol}: {source}; detector {regimes.detector}; scored over the bars after the training split", highlight=False)
    evaluated: dict[str, pd.Series] = {}
    for tf in usable:
        bars = bars_at(raw, raw_timeframe, tf)
        end = _train_end(bars.index, settings, None)
        labels = _label(bars, tf, regimes, end)
        segment = np.arange(len(bars)) >= end
        evaluated[tf] = pd.Series(labels[segment], index=bars.index[segment])
        console().print(f"\n[bold]{tf}[/bold]: {segment.sum()} of {len(bars)} bars (from {bars.index[end]:%Y-%m-%d %H:%M})")
        console().print(_shares_table(labels[segment]))
        if truth is not None:
            true = majority_labels(truth, bars.index)
            accuracy = regime_accuracy(labels, true, segment)
            console().print(f"accuracy against the generator's regimes ({tf}): {accuracy:.1%}")
            console().print(_confusion_table(confusion_matrix(labels, true, segment)))
        else:
            from forex_pipeline.reporting.charts import regime_timeline_chart

            folder = chart_dir or Path(settings.artifacts_dir) / "regimes"
            path = folder / f"{symbol.replace('/', '')}_{tf}_{regimes.detector}.png"
            regime_timeline_chart(bars.index[segment], bars["close"].to_numpy()[segment], labels[segment], path, f"{symbol} {tf} regimes ({regimes.detector})")
            console().print(f"timeline chart: {path}")
    for fine, coarse in zip(usable, usable[1:], strict=False):
        agreement = timeframe_agreement(evaluated[coarse], evaluated[fine])
        console().print(f"timeframe agreement: {agreement:.1%} of {coarse} bars carry the majority label of their {fine} bars")
