"""`raw_bars` and `bars` materialize in a test instance with their checks passing on real data."""

import dagster as dg
import pandas as pd
import pytest

from forex_pipeline.dagster_defs.assets.market_data import bars, raw_bars
from forex_pipeline.data.bar_store import bars_path, raw_bars_path, read_bars
from forex_pipeline.dagster_defs.resources import ForexStorage


@pytest.fixture()
def storage(isolated_storage, fx_dir):
    return ForexStorage(artifacts_dir=str(isolated_storage / "artifacts"), sample_data_dir=str(fx_dir))


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


@pytest.mark.slow
def test_raw_bars_and_bars_materialize_on_real_eurusd(storage):
    with dg.instance_for_test() as instance:
        raw = dg.materialize([raw_bars], partition_key="EURUSD", resources={"storage": storage}, instance=instance)
        assert raw.success
        assert all(_check_results(raw).values()), _check_results(raw)
        metadata = raw.asset_materializations_for_node("raw_bars")[0].metadata
        assert metadata["rows"].value == 745_077
        assert metadata["timeframe"].value == "1m"

        key = dg.MultiPartitionKey({"symbol": "EURUSD", "base_timeframe": "1h"})
        hourly = dg.materialize([raw_bars, bars], selection=[bars], partition_key=key, resources={"storage": storage}, instance=instance)
        assert hourly.success
        assert _check_results(hourly)["passes_validation_rules"]

    stored_raw = read_bars(raw_bars_path(storage.artifacts, "EURUSD"))
    stored_1h = read_bars(bars_path(storage.artifacts, "EURUSD", "1h"))
    # every 1h bar aggregates the M1 bars opened inside its hour, computed independently here
    hour = stored_raw.index.floor("h")
    expected = stored_raw.groupby(hour).agg(high=("high", "max"), low=("low", "min"), close=("close", "last"))
    assert stored_1h.index.equals(expected.index.rename(stored_1h.index.name))
    assert (stored_1h["high"].to_numpy() == expected["high"].to_numpy()).all()
    assert (stored_1h["close"].to_numpy() == expected["close"].to_numpy()).all()


def test_raw_bars_flags_long_gaps_as_a_warning(storage, isolated_storage):
    settings_bars = dg.materialize(
        [raw_bars], partition_key="SYNTH", resources={"storage": storage}, instance=dg.DagsterInstance.ephemeral()
    )
    checks = _check_results(settings_bars)
    assert checks["passes_validation_rules"] is True
    # synthetic bars skip weekends (48 h) which is under the default 72 h limit
    assert checks["no_gap_over_limit"] is True
    bars_frame = read_bars(raw_bars_path(storage.artifacts, "SYNTH"))
    assert bars_frame.index.tz is not None and len(bars_frame) > 100_000
    assert isinstance(bars_frame.index, pd.DatetimeIndex)
