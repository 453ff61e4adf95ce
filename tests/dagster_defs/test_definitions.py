"""The Dagster code location loads, holds the asset graph of DESIGN.md, and stays light to import."""

import subprocess
import sys

import dagster as dg

from forex_pipeline.dagster_defs.definitions import defs


def test_definitions_hold_the_asset_graph():
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert keys == {"raw_bars", "bars", "features", "trained_model", "inference_backtests", "regime_bests"}
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("raw_bars") in graph.get(dg.AssetKey("bars")).parent_keys
    assert dg.AssetKey("features") in graph.get(dg.AssetKey("trained_model")).parent_keys
    assert "grid_batch" in {job.name for job in defs.resolve_all_job_defs()}


def test_loading_the_code_location_imports_no_heavy_library():
    code = (
        "import sys; import forex_pipeline.dagster_defs.definitions; "
        "print(','.join(m for m in ('torch', 'lightgbm', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
