"""The second synthetic generator: Markov switching any-to-any, 1.5-9 day regimes, fat tails, sessions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kurtosis

from forex_pipeline.data.loaders import timestamp_parser
from forex_pipeline.data.resample import resample_bars
from forex_pipeline.data.schema import assert_bar_frame
from forex_pipeline.data.synthetic import REGIMES
from forex_pipeline.data.synthetic_markov import generate_markov_bars, seasonal_scale, transition_matrix
from forex_pipeline.data.validation import validate_bars


@pytest.fixture(scope="module")
def year():
    return generate_markov_bars(365, seed=11)


def _segments(labels: pd.Series) -> pd.DataFrame:
    codes = labels.to_numpy()
    starts = np.concatenate([[0], np.flatnonzero(codes[1:] != codes[:-1]) + 1])
    ends = np.concatenate([starts[1:], [codes.size]])
    return pd.DataFrame({"regime": codes[starts], "minutes": ends - starts})


def test_same_seed_same_bars_other_seed_other_bars() -> None:
    a, b, c = generate_markov_bars(20, seed=5), generate_markov_bars(20, seed=5), generate_markov_bars(20, seed=6)
    pd.testing.assert_frame_equal(a.bars, b.bars)
    pd.testing.assert_series_equal(a.regimes, b.regimes)
    assert not np.allclose(a.bars["close"].to_numpy(), c.bars["close"].to_numpy())
    assert set(a.regimes.unique()) <= set(REGIMES)


def test_transitions_go_anywhere_but_back_to_the_same_regime(year) -> None:
    matrix = transition_matrix(np.random.default_rng(0))
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert (np.diag(matrix) == 0).all() and (matrix[~np.eye(4, dtype=bool)] > 0).all()
    segments = _segments(year.regimes)
    pairs = set(zip(segments["regime"][:-1], segments["regime"][1:], strict=True))
    assert all(a != b for a, b in pairs)
    assert len(pairs) >= 10  # of the 12 possible ordered pairs, in one year
    assert all(len({b for a, b in pairs if a == regime}) >= 2 for regime in REGIMES)


def test_regimes_last_one_and_a_half_to_nine_trading_days(year) -> None:
    days = _segments(year.regimes)["minutes"].to_numpy()[:-1] / 1440  # the last one is cut by the end
    assert days.min() >= 1.5 - 1e-9 and days.max() <= 9.0
    assert days.min() < 2.5 and days.max() > 6.5  # the whole range is used, not 3 to 7


def test_returns_are_fat_tailed_and_follow_the_sessions(year) -> None:
    close = year.bars["close"].to_numpy()
    returns = np.diff(np.log(close))
    index = year.bars.index[1:]
    trending = year.regimes.to_numpy()[1:] == "bull_trending"
    same_segment = year.regimes.to_numpy()[1:] == year.regimes.to_numpy()[:-1]
    picked = trending & same_segment
    standardised = returns[picked] / seasonal_scale(index[picked])
    assert kurtosis(standardised) > 2.0  # excess kurtosis; 0 for Gaussian returns, 6 for Student-t(5)
    by_hour = pd.Series(np.abs(returns)).groupby(np.asarray(index.hour)).mean()
    assert by_hour[13] > 2.0 * by_hour[1]  # London/New York overlap against the late Asian session


def test_regimes_are_visible_on_hourly_bars(year) -> None:
    hourly = resample_bars(year.bars, "1h")
    labels = year.regimes.groupby(year.regimes.index.floor("h")).last().reindex(hourly.index)
    returns = np.log(hourly["close"]).diff()
    drift = returns.groupby(labels).mean()
    vol = returns.groupby(labels).std()
    assert drift["bull_trending"] > 0.2 * vol["bull_trending"] > 0
    assert drift["bear_trending"] < -0.2 * vol["bear_trending"]
    assert vol["volatile_ranging"] > 2 * vol["calm_ranging"]


def test_bars_pass_validation(year) -> None:
    bars = year.bars
    assert_bar_frame(bars)
    checked, report = validate_bars(bars.reset_index(), source="synthetic", parse_timestamps=timestamp_parser("UTC"))
    assert report.rows_out == report.rows_in == len(bars)
    assert (bars["volume"] > 0).all()
    assert year.regimes.index.equals(bars.index)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="days"):
        generate_markov_bars(0, seed=1)
    with pytest.raises(ValueError, match="min_regime_days"):
        generate_markov_bars(10, seed=1, min_regime_days=5, max_regime_days=2)
    with pytest.raises(ValueError, match="tail_df"):
        generate_markov_bars(10, seed=1, tail_df=2.0)
