"""Additional feature families: values against hand calculations, sessions with DST, zero volume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.features.additional import (
    CANDLESTICK_PATTERNS,
    ar_lag_features,
    candlestick_patterns,
    compute_additional,
    returns_volatility,
    session_flags,
    trading_sessions,
    volume_profile,
    vsa_analysis,
)
from forex_pipeline.features.spec import ADDITIONAL_FEATURES, Preprocessing
from tests.features.helpers import random_bars


def _utc(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(stamps), tz="UTC")


def test_ret_lags_are_the_latest_known_one_bar_returns() -> None:
    close = np.array([1.0, 1.1, 1.21, 1.0, 2.0])
    lags = ar_lag_features(close, 3)
    assert list(lags.columns) == ["ret_lag_1", "ret_lag_2", "ret_lag_3"]
    assert lags["ret_lag_1"].iloc[4] == pytest.approx(np.log(2.0 / 1.0))
    assert lags["ret_lag_2"].iloc[4] == pytest.approx(np.log(1.0 / 1.21))
    assert lags["ret_lag_3"].iloc[4] == pytest.approx(np.log(1.21 / 1.1))
    assert np.isnan(lags["ret_lag_3"].iloc[2])
    with pytest.raises(ValueError, match="ar_lags"):
        ar_lag_features(close, 0)


def test_returns_volatility_matches_pandas() -> None:
    bars = random_bars(400, seed=11)
    got = returns_volatility(bars, rv_window=10)
    close = bars["close"].reset_index(drop=True)
    returns = np.log(close).diff()
    np.testing.assert_allclose(got["logret_20"], np.log(close / close.shift(20)), rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got["rv_10"], returns.rolling(10).std(), rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got["vol_ratio_10_50"], returns.rolling(10).std() / returns.rolling(50).std(), rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize(
    ("moment", "open_expected"),
    [
        ("2025-07-09 07:00", 1.0),   # 08:00 BST: London opens at 07:00 UTC in summer
        ("2025-07-09 06:45", 0.0),
        ("2025-07-09 16:00", 0.0),   # 17:00 BST: closed
        ("2025-01-15 08:00", 1.0),   # 08:00 GMT: London opens at 08:00 UTC in winter
        ("2025-01-15 07:00", 0.0),
        ("2025-01-15 16:45", 1.0),
        ("2025-07-12 10:00", 0.0),   # Saturday
    ],
)
def test_london_session_follows_british_summer_time(moment: str, open_expected: float) -> None:
    assert session_flags(_utc(moment))["session_london"].iloc[0] == open_expected


def test_new_york_sydney_tokyo_sessions_follow_their_local_clocks() -> None:
    flags = session_flags(_utc("2025-07-09 12:00", "2025-01-15 12:00", "2025-01-15 13:00"))
    np.testing.assert_array_equal(flags["session_new_york"], [1.0, 0.0, 1.0])
    # Sydney opens 07:00 local: 20:00 UTC the day before in January (AEDT), 21:00 UTC in July (AEST).
    sydney = session_flags(_utc("2025-01-14 20:00", "2025-07-08 20:00", "2025-07-08 21:00"))["session_sydney"]
    np.testing.assert_array_equal(sydney, [1.0, 0.0, 1.0])
    tokyo = session_flags(_utc("2025-07-09 00:00", "2025-07-09 09:00"))["session_tokyo"]
    np.testing.assert_array_equal(tokyo, [1.0, 0.0])
    both = session_flags(_utc("2025-07-09 13:00"))
    assert both["overlap_london_new_york"].iloc[0] == 1.0 and both["sessions_open"].iloc[0] == 2.0


def test_trading_sessions_use_the_bar_close_time() -> None:
    bars = random_bars(48, seed=1, start="2025-07-09 00:00")
    got = trading_sessions(bars, "1h")
    # The bar opened 06:00 UTC closes 07:00 UTC = 08:00 in London: open; the 05:00 bar is not.
    assert got.loc[pd.Timestamp("2025-07-09 06:00", tz="UTC"), "session_london"] == 1.0
    assert got.loc[pd.Timestamp("2025-07-09 05:00", tz="UTC"), "session_london"] == 0.0
    hour = 7.0
    assert got.loc[pd.Timestamp("2025-07-09 06:00", tz="UTC"), "hour_sin"] == pytest.approx(np.sin(2 * np.pi * hour / 24))


def test_candlestick_patterns_are_minus_one_zero_or_one() -> None:
    bars = random_bars(2000, seed=12)
    got = candlestick_patterns(bars)
    assert got.shape[1] == len(CANDLESTICK_PATTERNS) >= 10
    assert set(np.unique(got.to_numpy())) <= {-1.0, 0.0, 1.0}
    assert (got != 0).any().sum() >= 5


def test_bullish_engulfing_is_plus_one() -> None:
    bars = random_bars(30, seed=2)
    last = bars.index[-2:]
    bars.loc[last[0], ["open", "high", "low", "close"]] = [1.105, 1.106, 1.099, 1.100]
    bars.loc[last[1], ["open", "high", "low", "close"]] = [1.099, 1.108, 1.098, 1.107]
    assert candlestick_patterns(bars)["cdl_engulfing"].iloc[-1] == 1.0


def test_volume_profile_position_by_hand() -> None:
    bars = random_bars(300, seed=13)
    got = volume_profile(bars)
    window = bars.iloc[-100:]
    typical = (window["high"] + window["low"] + window["close"]) / 3
    close = bars["close"].iloc[-1]
    below = window["volume"][typical <= close].sum() / window["volume"].sum()
    vwap = (typical * window["volume"]).sum() / window["volume"].sum()
    assert got["vp_volume_below_close_100"].iloc[-1] == pytest.approx(below, rel=1e-9)
    assert got["vp_vwap_dist_100"].iloc[-1] == pytest.approx(close / vwap - 1, rel=1e-9)
    assert got["vp_poc_dist_100"].iloc[-1] == pytest.approx(close / typical.iloc[0] - 1, abs=0.05)
    volume = bars["volume"].iloc[-50:]
    assert got["volume_z_50"].iloc[-1] == pytest.approx((volume.iloc[-1] - volume.mean()) / volume.std(), rel=1e-9)
    assert 0 < got["volume_pct_50"].iloc[-1] <= 1


def test_vsa_flags_a_stopping_volume_bar() -> None:
    bars = random_bars(120, seed=14)
    bars["volume"] = 100.0
    previous_close = bars["close"].iloc[-2]
    last = bars.index[-1]
    bars.loc[last, ["open", "high", "low", "close", "volume"]] = [
        previous_close, previous_close * 1.0005, previous_close * 0.99, previous_close * 0.999, 500.0
    ]
    got = vsa_analysis(bars).iloc[-1]
    assert got["vsa_stopping_volume"] == 1.0
    assert got["vsa_volume_rel"] == pytest.approx(500.0 / ((49 * 100.0 + 500.0) / 50))
    assert got["vsa_close_location"] == pytest.approx((0.999 - 0.99) / (1.0005 - 0.99))
    assert got["vsa_no_supply"] == 0.0


@pytest.mark.parametrize("family", ["volume_profile", "vsa_analysis"])
def test_zero_volume_gives_nan_never_inf(family: str) -> None:
    bars = random_bars(400, seed=15, volume=False)
    got = compute_additional(bars, "1h", (family,), Preprocessing())[family]
    assert not np.isinf(got.to_numpy()).any()
    volume_columns = [c for c in got.columns if c not in ("vsa_spread_rel", "vsa_close_location")]
    assert got[volume_columns].isna().all().all()


def test_compute_additional_names_unknown_family() -> None:
    with pytest.raises(ValueError, match="unknown"):
        compute_additional(random_bars(50), "1h", ("moon_phase",), Preprocessing())
    assert set(compute_additional(random_bars(300), "1h", ADDITIONAL_FEATURES, Preprocessing())) == set(ADDITIONAL_FEATURES)
