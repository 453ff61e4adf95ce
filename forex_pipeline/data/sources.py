"""Where a symbol's raw bars come from, and loading them validated.

Looked up in this order:
1. an imported file, artifacts/imports/SYMBOL.parquet (written by `forex-pipeline data import`/`synth`);
2. the finest file for the symbol in the sample directory (FOREX_SAMPLE_DATA), named like
   EURUSD_M1.csv.gz, EURUSD_M15.csv.gz, GBPNZD_H1.csv.gz (also .csv and .parquet);
3. synthetic bars when the symbol is SYNTH (SYNTH_DAYS days, seed SYNTH_SEED: always the same bars), with
   credible edges: trends drift SYNTH_TREND_DRIFT_SIGMAS hourly sigmas an hour and ranges revert with a
   half-life of a week, so the perfect-hindsight direction oracle earns at most about 5 annualised Sharpe
   per regime at 1h (backtest/oracle.py; issue 10). The generator's stronger defaults serve the regime
   label benchmarks, where the regimes must be recognisable (docs/regimes.md says why both exist).
Otherwise a clear error lists every place that was looked at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import pandas as pd

from forex_pipeline.data.bar_store import import_path, read_bars, write_bars
from forex_pipeline.data.loaders import FileFormat, LoadResult, bar_file_span, infer_timeframe, load_bars
from forex_pipeline.data.schema import assert_bar_frame
from forex_pipeline.data.synthetic import SyntheticBars, generate_synthetic_bars, trading_minutes
from forex_pipeline.settings import Settings, ValidationSettings, normalize_symbol

SYNTH_SYMBOL = "SYNTH"
SYNTH_DAYS = 365
SYNTH_SEED = 7
SYNTH_START = "2020-01-06"
SYNTH_TREND_DRIFT_SIGMAS = 0.03
SYNTH_RANGE_HALF_LIFE_MINUTES = 7 * 1440.0
SAMPLE_DATA_ENV = "FOREX_SAMPLE_DATA"
# File-name timeframe codes, finest first.
SAMPLE_TIMEFRAMES: dict[str, str] = {"M1": "1m", "M5": "5m", "M15": "15m", "M30": "30m", "H1": "1h", "H4": "4h", "D1": "1d"}
SAMPLE_SUFFIXES: tuple[str, ...] = (".csv.gz", ".csv", ".parquet")

SourceKind = Literal["import", "sample", "synthetic"]


@dataclass(frozen=True)
class BarSource:
    """One place a symbol's raw bars come from."""

    symbol: str
    kind: SourceKind
    path: Path | None
    timeframe: str | None

    @property
    def description(self) -> str:
        if self.kind == "synthetic":
            return f"synthetic {self.symbol} bars ({SYNTH_DAYS} days, seed {SYNTH_SEED})"
        return f"{self.kind} file {self.path}"


def synthetic_bars(symbol: str = SYNTH_SYMBOL) -> SyntheticBars:
    """The SYNTH symbol's bars and true regimes: the same every time (the demo and the tests read them)."""
    return generate_synthetic_bars(
        SYNTH_DAYS, SYNTH_SEED, start=SYNTH_START, symbol=symbol,
        trend_drift_sigmas=SYNTH_TREND_DRIFT_SIGMAS, range_half_life_minutes=SYNTH_RANGE_HALF_LIFE_MINUTES,
    )


@dataclass(frozen=True)
class RawBars:
    """Validated raw bars of a symbol, where they came from, and their timeframe."""

    bars: pd.DataFrame
    source: str
    timeframe: str


def default_sample_dir() -> Path | None:
    """FOREX_SAMPLE_DATA when set, else None."""
    value = os.environ.get(SAMPLE_DATA_ENV)
    return Path(value) if value else None


def sample_candidates(symbol: str, sample_dir: Path) -> list[Path]:
    """The sample file names that could hold `symbol`, finest timeframe first."""
    key = normalize_symbol(symbol)
    return [sample_dir / f"{key}_{code}{suffix}" for code in SAMPLE_TIMEFRAMES for suffix in SAMPLE_SUFFIXES]


def resolve_source(symbol: str, artifacts_dir: Path | str, sample_dir: Path | None) -> BarSource:
    """The first of: imported file, finest sample file, synthetic (SYNTH only); else a clear error."""
    key = normalize_symbol(symbol)
    imported = import_path(artifacts_dir, key)
    if imported.is_file():
        return BarSource(key, "import", imported, None)
    looked = [str(imported)]
    if sample_dir is not None:
        for candidate in sample_candidates(key, Path(sample_dir)):
            if candidate.is_file():
                code = candidate.name[len(key) + 1 :].split(".")[0]
                return BarSource(key, "sample", candidate, SAMPLE_TIMEFRAMES[code])
        looked.append(f"{Path(sample_dir)}/{key}_{{{','.join(SAMPLE_TIMEFRAMES)}}}{{{','.join(SAMPLE_SUFFIXES)}}}")
    else:
        looked.append(f"no sample directory ({SAMPLE_DATA_ENV} not set)")
    if key == SYNTH_SYMBOL:
        return BarSource(key, "synthetic", None, "1m")
    raise FileNotFoundError(
        f"no bars for symbol {key}: looked for {'; '.join(looked)}; synthetic bars exist only for {SYNTH_SYMBOL}. "
        f"Import a file with `forex-pipeline data import PATH --symbol {key}`"
    )


@dataclass(frozen=True)
class BarSpan:
    """The open times of the first and last bars a source holds, read without loading its bars."""

    source: BarSource
    first: pd.Timestamp
    last: pd.Timestamp

    def describe(self) -> str:
        days = (self.last - self.first) / pd.Timedelta(days=1)
        return (
            f"{self.source.symbol} has bars from {self.first:%Y-%m-%d %H:%M} to {self.last:%Y-%m-%d %H:%M} UTC "
            f"({days:.0f} days; source: {self.source.description})"
        )


def source_span(source: BarSource) -> BarSpan:
    """First and last bar of `source`: Parquet statistics of an import, the edge rows of a sample
    file, the generator's calendar for synthetic bars (plan-time checks; loading is for training)."""
    if source.kind == "synthetic":
        minutes = trading_minutes(pd.Timestamp(SYNTH_START), SYNTH_DAYS)
        return BarSpan(source, minutes[0], minutes[-1])
    assert source.path is not None
    stat = source.path.stat()
    first, last = _file_span(str(source.path), stat.st_mtime_ns, stat.st_size)
    return BarSpan(source, first, last)


@lru_cache(maxsize=256)
def _file_span(path: str, mtime_ns: int, size: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """bar_file_span, remembered per file version (a long-lived process such as the Dagster code
    server reads each sample file once, and again only after it changes)."""
    del mtime_ns, size  # part of the cache key only
    return bar_file_span(path)


def load_raw_bars(
    symbol: str, settings: Settings, sample_dir: Path | None = None, artifacts_dir: Path | None = None
) -> RawBars:
    """Resolve a symbol's source (imports under `artifacts_dir`, default settings.artifacts_dir) and load it."""
    source = resolve_source(symbol, artifacts_dir or settings.artifacts_dir, sample_dir)
    if source.kind == "synthetic":
        bars = synthetic_bars(source.symbol).bars
    elif source.kind == "import":
        bars = read_bars(source.path)
    else:
        bars = load_bars(source.path, validation=settings.data.validation).bars
    assert_bar_frame(bars, name=source.description)
    timeframe = source.timeframe or infer_timeframe(bars)
    return RawBars(bars=bars, source=source.description, timeframe=timeframe)


@dataclass(frozen=True)
class ImportResult:
    """An imported bar file: where it was stored, the bars and the validation report."""

    path: Path
    result: LoadResult


def import_bar_file(
    path: Path | str,
    symbol: str,
    artifacts_dir: Path | str,
    *,
    format: FileFormat = "auto",
    source_tz: str | None = None,
    validation: ValidationSettings | None = None,
) -> ImportResult:
    """Validate a bar file and store it as artifacts/imports/SYMBOL.parquet; on any error write nothing."""
    target = import_path(artifacts_dir, symbol)
    result = load_bars(path, format=format, source_tz=source_tz, validation=validation)
    if result.bars.empty:
        raise ValueError(f"{path}: no bars left after validation ({result.report.summary()})")
    return ImportResult(path=write_bars(result.bars, target), result=result)
