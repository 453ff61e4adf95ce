"""Synthetic regime-switching bars: determinism, regime shares, weekends, valid OHLC, visible regimes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.data.loaders import timestamp_parser
from forex_pipeline.data.resample import resample_bars
from forex_pipeline.data.schema import assert_bar_frame
from forex_pipeline.data.synthetic import REGIMES, generate_synthetic_bars
from forex_pipeline.data.validation import validate_bars
from forex_pipeline.settings import get_settings


@pytest.fixture(scope="module")
def year():
    return generate_synthetic_bars(365, seed=11)


def test_regime_names_are_the_configured_ones() -> None:
    assert set(REGIMES) == set(get_settings().regimes.definitions)


def test_same_seed_same_bars_other_seed_other_bars() -> None:
    a = generate_synthetic_bars(20, seed=5)
    b = generate_synthetic_bars(20, seed=5)
    c = generate_synthetic_bars(20, seed=6)
    pd.testing.assert_frame_equal(a.bars, b.bars)
    pd.testing.assert_series_equal(a.regimes, b.regimes)
    assert a.bars.index.equals(c.bars.index)
    assert not np.allclose(a.bars["close"].to_numpy(), c.bars["close"].to_numpy())


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_every_regime_has_a_fair_share_over_60_days(seed: int) -> None:
    shares = generate_synthetic_bars(60, seed=seed).regime_proportions
    assert set(shares) == set(REGIMES)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert all(0.10 <= share <= 0.40 for share in shares.values()), shares


def test_regimes_are_persistent(year) -> None:
    codes = year.regimes.to_numpy()
    switches = int((codes[1:] != codes[:-1]).sum())
    trading_days = len(codes) / 1440
    assert trading_days / (switches + 1) >= 3.0


def test_no_weekend_bars_and_one_minute_spacing_in_the_week(year) -> None:
    index = year.bars.index
    day, hour = index.day_of_week, index.hour
    assert not (day == 5).any()
    assert not ((day == 4) & (hour >= 22)).any()
    assert not ((day == 6) & (hour < 22)).any()
    assert ((day == 6) & (hour == 22)).any()
    steps = np.diff(index.asi8) // 60_000_000_000
    assert set(np.unique(steps)) == {1, 48 * 60 + 1}


def test_bars_pass_validation_and_look_like_fx(year) -> None:
    bars = year.bars
    assert_bar_frame(bars)
    raw = bars.reset_index()
    checked, report = validate_bars(raw, source="synthetic", parse_timestamps=timestamp_parser("UTC"))
    assert report.rows_out == report.rows_in == len(bars)
    assert checked.equals(bars)
    assert (bars["volume"] > 0).all()
    assert 0.8 < bars["close"].min() and bars["close"].max() < 1.4
    assert year.regimes.index.equals(bars.index)


def test_regimes_are_visible_on_hourly_bars(year) -> None:
    hourly = resample_bars(year.bars, "1h")
    labels = year.regimes.groupby(year.regimes.index.floor("h")).last().reindex(hourly.index)
    returns = np.log(hourly["close"]).diff()
    drift = returns.groupby(labels).mean()
    vol = returns.groupby(labels).std()
    assert drift["bull_trending"] > 2 * vol["bull_trending"] / np.sqrt(len(hourly) / 4) > 0
    assert drift["bear_trending"] < 0 and abs(drift["bear_trending"]) > 3 * abs(drift["calm_ranging"])
    assert drift["bull_trending"] > 0.2 * vol["bull_trending"]
    assert vol["volatile_ranging"] > 2 * vol["calm_ranging"]
    net_50 = np.log(hourly["close"]).diff(50).abs()
    path_50 = returns.abs().rolling(50).sum()
    efficiency = (net_50 / path_50).groupby(labels).median()
    assert efficiency["bull_trending"] > 0.3 and efficiency["bear_trending"] > 0.3
    assert efficiency["calm_ranging"] < 0.25 and efficiency["volatile_ranging"] < 0.25


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="days"):
        generate_synthetic_bars(0, seed=1)
    with pytest.raises(ValueError, match="min_regime_days"):
        generate_synthetic_bars(10, seed=1, min_regime_days=5, max_regime_days=2)
