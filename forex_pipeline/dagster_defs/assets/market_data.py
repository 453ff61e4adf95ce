"""`raw_bars` (validated source bars per symbol) and `bars` (resampled per symbol x base timeframe).

Both write Parquet through data.bar_store and return metadata; downstream assets read the files.
"""


import dagster as dg
import pandas as pd

from forex_pipeline.dagster_defs.resources import ForexStorage
from forex_pipeline.data.timeframes import TIMEFRAMES
from forex_pipeline.pipeline.artifacts import BarsArtifact, build_bars, build_raw_bars
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


def _check_results(artifact: BarsArtifact) -> list[dg.AssetCheckResult]:
    """The artifact's validation and gap findings as this asset's check results."""
    if artifact.validation_error is None:
        valid = dg.AssetCheckResult(check_name=VALID_CHECK, passed=True)
    else:
        valid = dg.AssetCheckResult(check_name=VALID_CHECK, passed=False, metadata={"error": artifact.validation_error})
    gaps = artifact.gaps
    gap = dg.AssetCheckResult(
        check_name=GAP_CHECK,
        passed=len(gaps) == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "gaps_over_limit": len(gaps),
            "longest": str(gaps["duration"].max()) if len(gaps) else "-",
            "limit_minutes": artifact.gap_limit_minutes,
        },
    )
    return [valid, gap]


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
    artifact = build_raw_bars(context.partition_key, storage.settings, storage.artifacts, storage.sample_dir)
    return dg.MaterializeResult(
        metadata={
            **_range_metadata(artifact.bars),
            "timeframe": artifact.timeframe,
            "source": artifact.source,
            "gaps_over_limit": len(artifact.gaps),
            "path": dg.MetadataValue.path(str(artifact.path)),
        },
        check_results=_check_results(artifact),
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
    artifact = build_bars(keys["symbol"], keys["base_timeframe"], storage.settings, storage.artifacts, storage.sample_dir)
    return dg.MaterializeResult(
        metadata={
            **_range_metadata(artifact.bars),
            "source_rows": artifact.source_rows,
            "gaps_over_limit": len(artifact.gaps),
            "path": dg.MetadataValue.path(str(artifact.path)),
        },
        check_results=_check_results(artifact),
    )
