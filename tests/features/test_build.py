"""Window selection, feature matrix building, metadata, Parquet round trip, and real EUR/USD data."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from forex_pipeline.data.loaders import load_bars
from forex_pipeline.data.resample import resample_bars
from forex_pipeline.features.build import (
    WindowError,
    build_feature_matrix,
    load_feature_matrix,
    save_feature_matrix,
    select_window,
)
from forex_pipeline.features.preprocessing import CoverageError
from forex_pipeline.features.spec import ADDITIONAL_FEATURES, INDICATORS, FeatureSetSpec, Preprocessing
from tests.features.helpers import random_bars

ALL_TIMEFRAMES_1H = {name: ("1h", "4h", "1d") for name in INDICATORS}


def _spec(**overrides) -> FeatureSetSpec:
    values = dict(
        symbol="EUR/USD",
        base_timeframe="1h",
        days_history=40,
        as_of=datetime(2024, 4, 10, tzinfo=timezone.utc),
        indicator_timeframes={"rsi": ("1h", "4h"), "macd": ("1h",)},
        additional_features=("returns_volatility", "trading_sessions"),
        preprocessing=Preprocessing(warmup_bars=100),
    )
    values.update(overrides)
    return FeatureSetSpec(**values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"indicator_timeframes": {"ichimoku": ("1h",)}}, "unknown indicator"),
        ({"indicator_timeframes": {"rsi": ("2h",)}}, "unknown timeframe"),
        ({"indicator_timeframes": {"rsi": ("15m",)}}, "finer than base_timeframe"),
        ({"additional_features": ("moon_phase",)}, "unknown feature"),
        ({"days_history": 0}, "days_history"),
        ({"days_history": 3651}, "days_history"),
        ({"base_timeframe": "2h"}, "base_timeframe"),
        ({"preprocessing": {"scaling": "minmax"}}, "scaling"),
    ],
)
def test_spec_validation_errors(overrides: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _spec(**overrides)


def test_select_window_keeps_the_days_ending_at_as_of() -> None:
    bars = random_bars(24 * 60, start="2024-03-01")
    spec = _spec(days_history=20)
    window = select_window(bars, spec)
    as_of = pd.Timestamp(spec.as_of)
    assert window.index[0] >= as_of - pd.Timedelta(days=20)
    assert window.index[-1] + pd.Timedelta(hours=1) <= as_of
    assert window.index[-1] == bars.index[bars.index < as_of][-1]
    outside = bars.index[(bars.index < as_of - pd.Timedelta(days=20))]
    assert len(outside) and not window.index.isin(outside).any()


def test_select_window_errors_name_days_history_and_as_of() -> None:
    bars = random_bars(24 * 60, start="2024-03-01")
    with pytest.raises(WindowError, match=r"days_history=400 ending at as_of=2024-04-10.*span only"):
        select_window(bars, _spec(days_history=400))
    with pytest.raises(WindowError, match="holds no 1h bars"):
        select_window(bars, _spec(as_of=datetime(2023, 1, 1, tzinfo=timezone.utc)))
    with pytest.raises(WindowError, match="warmup_bars=500"):
        select_window(bars, _spec(days_history=10, preprocessing=Preprocessing(warmup_bars=500)))


def test_matrix_shape_metadata_and_ar_lags() -> None:
    bars = random_bars(1000, start="2024-03-01")
    spec = _spec()
    fm = build_feature_matrix(spec, bars, ar_lags=3)
    assert fm.feature_set_hash == spec.hash and fm.symbol == "EURUSD" and fm.base_timeframe == "1h"
    assert np.isfinite(fm.X).all() and fm.X.dtype == np.float64
    names = fm.feature_names
    assert [names[i] for i in fm.ar_lag_columns] == ["ret_lag_1", "ret_lag_2", "ret_lag_3"]
    assert {"rsi_14_1h", "rsi_14_4h", "macd_hist_12_26_9_1h", "session_london", "rv_20"} <= set(names)
    meta = fm.metadata
    as_of = pd.Timestamp(spec.as_of)
    in_window = bars.loc[(bars.index >= as_of - pd.Timedelta(days=40)) & (bars.index < as_of)]
    assert meta["source_rows"] == len(in_window) < len(bars)
    assert meta["rows"] == fm.n_rows == len(in_window) - meta["dropped_rows"]["warmup"] - meta["dropped_rows"]["nan_leading"]
    assert meta["n_features"] == len(names)
    assert meta["time_range"] == {"start": fm.timestamps[0].isoformat(), "end": in_window.index[-1].isoformat()}
    assert set(meta["coverage"]) >= set(names)
    np.testing.assert_array_equal(fm.close, bars["close"].loc[fm.timestamps].to_numpy())
    closes = bars["close"].to_numpy()
    position = bars.index.get_indexer(fm.timestamps)
    np.testing.assert_allclose(fm.X[:, fm.ar_lag_columns[1]], np.log(closes[position - 1] / closes[position - 2]))


def test_zero_volume_features_are_dropped_with_the_reason() -> None:
    bars = random_bars(600, start="2024-03-01", volume=False)
    spec = _spec(additional_features=("volume_profile", "vsa_analysis", "returns_volatility"))
    fm = build_feature_matrix(spec, bars)
    dropped = fm.metadata["dropped_features"]
    assert {"volume_z_50", "vp_poc_dist_100", "vsa_up_thrust", "vsa_effort_vs_result"} <= set(dropped)
    assert all("volume is zero in 100.0% of bars" in dropped[name] for name in ("volume_z_50", "vsa_no_demand"))
    assert "vsa_close_location" in fm.feature_names
    assert not any(name.startswith(("volume_", "vp_")) for name in fm.feature_names)
    assert np.isfinite(fm.X).all()


def test_coverage_failure_is_a_clear_error() -> None:
    bars = random_bars(300, start="2024-03-01")
    spec = _spec(indicator_timeframes={"sma_dist": ("1d",)}, additional_features=())
    with pytest.raises(CoverageError, match=f"feature set {spec.partition_key}: no feature reaches"):
        build_feature_matrix(spec, bars)


def test_base_bars_finer_than_base_timeframe_are_refused() -> None:
    with pytest.raises(ValueError, match="finer than base_timeframe 1h"):
        build_feature_matrix(_spec(), random_bars(600, timeframe="15m"))


def test_save_load_round_trip_bit_for_bit(tmp_path: Path) -> None:
    fm = build_feature_matrix(_spec(), random_bars(800, start="2024-03-01"))
    path = save_feature_matrix(fm, tmp_path / "sub" / "fm.parquet")
    assert [p.name for p in path.parent.iterdir()] == ["fm.parquet"]
    loaded = load_feature_matrix(path)
    assert loaded.X.tobytes() == fm.X.tobytes() and loaded.close.tobytes() == fm.close.tobytes()
    assert loaded.timestamps.equals(fm.timestamps) and str(loaded.timestamps.tz) == "UTC"
    assert loaded.feature_names == fm.feature_names and loaded.ar_lag_columns == fm.ar_lag_columns
    assert (loaded.feature_set_hash, loaded.symbol, loaded.base_timeframe) == (fm.feature_set_hash, fm.symbol, fm.base_timeframe)
    assert loaded.metadata == fm.metadata


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_feature_matrix(tmp_path / "missing.parquet")
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"a": [1.0]}), foreign)
    with pytest.raises(ValueError, match="not a feature matrix file"):
        load_feature_matrix(foreign)


def _eurusd(fx_dir: Path, name: str, timeframe: str) -> pd.DataFrame:
    return resample_bars(load_bars(fx_dir / name).bars, timeframe)


def test_real_eurusd_one_year_of_1h_builds_fast_and_clean(fx_dir: Path) -> None:
    bars = _eurusd(fx_dir, "EURUSD_M15.csv.gz", "1h")
    spec = FeatureSetSpec(
        symbol="EURUSD", base_timeframe="1h", days_history=365, as_of=datetime(2026, 2, 14, tzinfo=timezone.utc),
        indicator_timeframes=ALL_TIMEFRAMES_1H, additional_features=ADDITIONAL_FEATURES,
    )
    window = select_window(bars, spec)
    started = time.perf_counter()
    fm = build_feature_matrix(spec, window)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0
    assert fm.n_rows > 5000 and len(fm.feature_names) > 80
    assert np.isfinite(fm.X).all()
    assert "volume_z_50" in fm.feature_names and "rsi_14_1d" in fm.feature_names
    assert fm.metadata["dropped_rows"]["nan_interior"] == 0


def test_real_eurusd_m1_zero_volume_drops_volume_features(fx_dir: Path) -> None:
    bars = _eurusd(fx_dir, "EURUSD_M1.csv.gz", "1h")
    spec = FeatureSetSpec(
        symbol="EURUSD", base_timeframe="1h", days_history=365, as_of=datetime(2019, 12, 31, tzinfo=timezone.utc),
        indicator_timeframes={"rsi": ("1h", "4h"), "atr": ("1h",)}, additional_features=ADDITIONAL_FEATURES,
    )
    fm = build_feature_matrix(spec, select_window(bars, spec))
    assert np.isfinite(fm.X).all()
    assert fm.metadata["zero_volume_share"] == 1.0
    assert not any(name.startswith(("volume_", "vp_")) for name in fm.feature_names)
    assert "volume is zero" in fm.metadata["dropped_features"]["vp_vwap_dist_100"]


def test_build_ignores_bars_outside_the_spec_window() -> None:
    bars = random_bars(24 * 60, start="2024-03-01")
    spec = _spec(days_history=30)
    whole = build_feature_matrix(spec, bars)
    windowed = build_feature_matrix(spec, select_window(bars, spec))
    assert whole.timestamps.equals(windowed.timestamps)
    assert whole.X.tobytes() == windowed.X.tobytes()
    assert whole.timestamps[-1] + pd.Timedelta(hours=1) <= pd.Timestamp(spec.as_of)
    assert whole.metadata["source_rows"] == len(select_window(bars, spec))


@pytest.mark.parametrize(
    "base, indicators, additional",
    [
        ("1h", ALL_TIMEFRAMES_1H, ADDITIONAL_FEATURES),
        ("15m", {"rsi": ("15m", "4h"), "macd": ("1h",)}, ("returns_volatility", "trading_sessions")),
        ("1d", {}, ()),
    ],
)
def test_the_names_counted_from_a_spec_are_the_columns_real_bars_give(base, indicators, additional) -> None:
    """spec_feature_names runs the feature code on stand-in bars: the same columns as on real bars,
    before min_coverage (the plan-time bound on an encoder dimension)."""
    from forex_pipeline.features.build import compute_raw_features, spec_feature_names

    spec = FeatureSetSpec(symbol="EURUSD", base_timeframe=base, days_history=365, as_of="2025-01-01",
                          indicator_timeframes=indicators, additional_features=additional)
    real = compute_raw_features(spec, random_bars(2000, base, seed=4), ar_lags=3).frame.columns
    assert spec_feature_names(spec, ar_lags=3) == tuple(real)
    assert len(spec_feature_names(spec, ar_lags=7)) == len(real) + 4


def test_a_built_matrix_never_has_more_columns_than_its_spec_counts() -> None:
    """Zero volume drops the volume families at min_coverage: the spec's count is an upper bound."""
    from forex_pipeline.features.build import spec_feature_names

    spec = FeatureSetSpec(symbol="EURUSD", base_timeframe="1h", days_history=120, as_of="2024-07-01",
                          indicator_timeframes={"rsi": ("1h",)}, additional_features=("volume_profile", "returns_volatility"),
                          preprocessing=Preprocessing(warmup_bars=150))
    matrix = build_feature_matrix(spec, random_bars(3000, "1h", seed=2, volume=False), ar_lags=5)
    assert 0 < matrix.X.shape[1] < len(spec_feature_names(spec, ar_lags=5))
    assert set(matrix.feature_names) <= set(spec_feature_names(spec, ar_lags=5))
