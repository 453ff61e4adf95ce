"""The intraday volatility profile: recovered, causal (rules) or fitted on a segment (HMM)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.regimes.seasonality import deseasonalized_returns, fitted_intraday_scale, intraday_scale


def _seasonal_returns(days: int, seed: int) -> tuple[np.ndarray, pd.DatetimeIndex, np.ndarray]:
    index = pd.date_range("2024-01-01", periods=days * 24, freq="h", tz="UTC")
    profile = np.where((index.hour >= 12) & (index.hour < 16), 2.0, 0.5)
    returns = 1e-3 * profile * np.random.default_rng(seed).standard_normal(index.size)
    returns[0] = np.nan
    return returns, index, profile


def test_the_profile_is_recovered_and_divided_out() -> None:
    returns, index, profile = _seasonal_returns(200, 1)
    scale = intraday_scale(returns, index)
    busy, quiet = profile == 2.0, profile == 0.5
    ratio = scale[busy][-100:].mean() / scale[quiet][-100:].mean()
    assert ratio == pytest.approx(4.0, rel=0.1)
    flat = returns / scale
    assert np.nanstd(flat[busy][-500:]) == pytest.approx(np.nanstd(flat[quiet][-500:]), rel=0.15)
    assert (scale[:20] == 1.0).all()  # no hour has 20 earlier returns yet


def test_the_causal_scale_of_a_bar_ignores_that_bar_and_later_ones() -> None:
    returns, index, _ = _seasonal_returns(60, 2)
    changed = returns.copy()
    changed[900:] *= 10.0
    np.testing.assert_array_equal(intraday_scale(returns, index)[:901], intraday_scale(changed, index)[:901])


def test_the_fitted_profile_uses_its_segment_only() -> None:
    returns, index, profile = _seasonal_returns(100, 3)
    changed = returns.copy()
    changed[1200:] *= 10.0
    a = fitted_intraday_scale(returns, index, 1200)
    np.testing.assert_array_equal(a, fitted_intraday_scale(changed, index, 1200))
    assert a[profile == 2.0].mean() / a[profile == 0.5].mean() == pytest.approx(4.0, rel=0.1)


def test_without_timestamps_returns_are_left_alone() -> None:
    close = np.array([1.0, 1.1, 1.05])
    np.testing.assert_allclose(deseasonalized_returns(close, None), [np.nan, np.log(1.1), np.log(1.05 / 1.1)])
    with pytest.raises(ValueError, match="timestamps"):
        intraday_scale(np.zeros(3), pd.date_range("2024-01-01", periods=2, freq="h", tz="UTC"))
