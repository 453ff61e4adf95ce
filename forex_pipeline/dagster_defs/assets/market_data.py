"""`raw_bars` (validated source bars per symbol) and `bars` (resampled per symbol x base timeframe).

Both write Parquet through data.bar_store and return metadata; downstream assets read the files.
"""


import dagster as dg
import pandas as pd

from forex_pipeline.data.bar_store import bars_path, raw_bars_path, read_bars, write_bars
from forex_pipeline.data.resample import find_gaps, resample_bars
from forex_pipeline.data.sources import load_raw_bars
from forex_pipeline.data.timeframes import TIMEFRAMES, timeframe_minutes
from forex_pipeline.data.validation import validate_bars
from forex_pipeline.dagster_defs.resources import ForexStorage
from forex_pipeline.settings import get_settings

symbol_partitions = dg.StaticPartitionsDefinition(sorted(get_settings().data.symbols))
bars_partitions = dg.MultiPartitionsDefinition(
    {"symbol": symbol_partitions, "base_timeframe": dg.StaticPartitionsDefinition(list(TIMEFRAMES))}
)

VALID_CHECK = "passes_validation_rules"
GAP_CHECK = "no_gap_over_limit"


def _range_metadata(bars: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    first = bars.index[0].isoformat() if len(bars) else "-"
    last = bars.index[-1].isoformat() if len(bars) else "-"
    return {
        "rows": dg.MetadataValue.int(len(bars)),
        "first_bar": dg.MetadataValue.text(first),
        "last_bar": dg.MetadataValue.text(last),
    }


def _checks(bars: pd.DataFrame, source: str, max_gap_minutes: int, timeframe: str) -> tuple[list, int]:
    """Re-validate the stored frame under the strict policy, and flag gaps over the configured limit."""
    try:
        validate_bars(bars.reset_index(), source=source)
        valid = dg.AssetCheckResult(check_name=VALID_CHECK, passed=True)
    except ValueError as exc:
        valid = dg.AssetCheckResult(check_name=VALID_CHECK, passed=False, metadata={"error": str(exc)})
    gaps = find_gaps(bars, pd.Timedelta(minutes=max_gap_minutes), timeframe=timeframe)
    longest = str(gaps["duration"].max()) if len(gaps) else "-"
    gap = dg.AssetCheckResult(
        check_name=GAP_CHECK,
        passed=len(gaps) == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"gaps_over_limit": len(gaps), "longest": longest, "limit_minutes": max_gap_minutes},
    )
    return [valid, gap], len(gaps)


@dg.asset(
    partitions_def=symbol_partitions,
    group_name="market_data",
    check_specs=[
        dg.AssetCheckSpec(VALID_CHECK, asset="raw_bars", description="every validation rule holds"),
        dg.AssetCheckSpec(GAP_CHECK, asset="raw_bars", description="no gap longer than data.max_gap_minutes"),
    ],
    description="Validated source bars per symbol (imported file, FOREX_SAMPLE_DATA file, or synthetic SYNTH).",
)
def raw_bars(context: dg.AssetExecutionContext, storage: ForexStorage) -> dg.MaterializeResult:
    symbol = context.partition_key
    settings = storage.settings
    loaded = load_raw_bars(symbol, settings, storage.sample_dir, storage.artifacts)
    path = raw_bars_path(storage.artifacts, symbol)
    write_bars(loaded.bars, path)
    checks, n_gaps = _checks(loaded.bars, str(path), settings.data.max_gap_minutes, loaded.timeframe)
    return dg.MaterializeResult(
        metadata={
            **_range_metadata(loaded.bars),
            "timeframe": loaded.timeframe,
            "source": loaded.source,
            "gaps_over_limit": n_gaps,
            "path": dg.MetadataValue.path(str(path)),
        },
        check_results=checks,
    )


@dg.asset(
    partitions_def=bars_partitions,
    group_name="market_data",
    deps=[
        dg.AssetDep(
            "raw_bars",
            partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="symbol"),
        )
    ],
    check_specs=[
        dg.AssetCheckSpec(VALID_CHECK, asset="bars", description="every validation rule holds"),
        dg.AssetCheckSpec(GAP_CHECK, asset="bars", description="no gap longer than data.max_gap_minutes"),
    ],
    description="Bars resampled from raw_bars to a base timeframe (no forward-filled bars).",
)
def bars(context: dg.AssetExecutionContext, storage: ForexStorage) -> dg.MaterializeResult:
    keys = context.partition_key.keys_by_dimension
    symbol, timeframe = keys["symbol"], keys["base_timeframe"]
    settings = storage.settings
    raw = read_bars(raw_bars_path(storage.artifacts, symbol))
    resampled = resample_bars(raw, timeframe)
    path = bars_path(storage.artifacts, symbol, timeframe)
    write_bars(resampled, path)
    limit = max(settings.data.max_gap_minutes, timeframe_minutes(timeframe))
    checks, n_gaps = _checks(resampled, str(path), limit, timeframe)
    return dg.MaterializeResult(
        metadata={
            **_range_metadata(resampled),
            "source_rows": len(raw),
            "gaps_over_limit": n_gaps,
            "path": dg.MetadataValue.path(str(path)),
        },
        check_results=checks,
    )
