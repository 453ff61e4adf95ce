"""The HMM detector's parts: forward filter, sticky transitions, state mapping, fit on the training segment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.regimes.hmm import (
    HMM_REGIMES,
    fit_hmm,
    forward_filter,
    hmm_regime_probabilities,
    map_states,
    sticky_transitions,
)
from forex_pipeline.settings import HmmSettings


def test_forward_filter_is_hmmlearns_posterior_of_the_last_observation() -> None:
    """P(state_t | x_1..x_t) is the smoothed posterior of the last bar of the prefix x_1..x_t."""
    from hmmlearn.hmm import GaussianHMM

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.5, 60), rng.normal(0.3, 2.0, 60), rng.normal(-0.2, 1.0, 60)])
    start = np.array([0.4, 0.3, 0.2, 0.1])
    transitions = sticky_transitions(4, 1.0, 20.0)
    means = np.array([0.0, 0.3, -0.2, 0.0])
    variances = np.array([0.25, 4.0, 1.0, 9.0])
    model = GaussianHMM(4, covariance_type="diag", init_params="", params="")
    model.startprob_, model.transmat_ = start, transitions
    model.means_, model.covars_ = means[:, None], variances[:, None]
    filtered = forward_filter(x, start, transitions, means, variances)
    for t in (0, 1, 59, 60, 61, 130, 179):
        np.testing.assert_allclose(filtered[t], model.predict_proba(x[: t + 1, None])[-1], atol=1e-9)


def test_forward_filter_carries_the_prediction_over_missing_observations() -> None:
    transitions = sticky_transitions(2, 1.0, 2.0)
    x = np.array([np.nan, 0.0, np.nan])
    filtered = forward_filter(x, np.array([0.5, 0.5]), transitions, np.array([0.0, 0.0]), np.array([1.0, 4.0]))
    np.testing.assert_allclose(filtered[0], [0.5, 0.5])
    np.testing.assert_allclose(filtered[2], filtered[1] @ transitions)


def test_sticky_transitions_switch_at_a_rate_per_hour() -> None:
    hourly = sticky_transitions(4, 1.0, 120.0)
    quarter = sticky_transitions(4, 0.25, 120.0)
    np.testing.assert_allclose(hourly.sum(axis=1), 1.0)
    assert hourly[0, 0] == pytest.approx(1 - 1 / 120) and hourly[0, 1] == pytest.approx(1 / 360)
    # four 15m steps leave a state about as often as one 1h step
    assert np.linalg.matrix_power(quarter, 4)[0, 0] == pytest.approx(hourly[0, 0], abs=1e-4)
    assert sticky_transitions(4, 240.0, 120.0)[0, 0] == 0.5


def test_states_map_to_regimes_by_drift_and_volatility() -> None:
    # per-bar means and variances on 1h bars: drift per hour in hourly sds = mean / sd
    means = np.array([0.6, -0.48, 0.01, -0.02])
    variances = np.array([1.44, 1.44, 4.0, 0.25])
    regimes, drift, threshold = map_states(means, variances, np.array([1.0, 1.0, 1.0, 1.0]), 1.0, 0.25)
    assert regimes == ("bull_trending", "bear_trending", "volatile_ranging", "calm_ranging")
    np.testing.assert_allclose(drift, [0.5, -0.4, 0.005, -0.04])
    assert threshold == pytest.approx(1.44**0.25)  # geometric mean of the sds 1.2, 1.2, 2, 0.5
    # the same move per bar on 9-hour bars is a third of the drift per hour (in hourly sds): flat,
    # and with an sd above the typical one, volatile
    assert map_states(means, variances, np.ones(4), 9.0, 0.25)[0][:2] == ("volatile_ranging", "volatile_ranging")
    # the calm/volatile line follows where the training bars are: mostly calm bars pull it down
    regimes, _, threshold = map_states(np.zeros(2), np.array([0.25, 1.0]), np.array([0.9, 0.1]), 1.0, 0.25)
    assert regimes == ("calm_ranging", "volatile_ranging") and threshold < 0.6


def _regime_returns(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hourly returns of 300-hour blocks: up, calm, down, volatile, repeated; and the regime per bar."""
    rng = np.random.default_rng(seed)
    blocks = [("bull_trending", 0.5, 1.0), ("calm_ranging", 0.0, 0.3), ("bear_trending", -0.5, 1.0), ("volatile_ranging", 0.0, 3.0)]
    returns, truth = [], []
    for _ in range(3):
        for name, drift, sd in blocks:
            returns.append(1e-3 * (drift * sd + sd * rng.standard_normal(300)))
            truth += [name] * 300
    return np.concatenate(returns), np.asarray(truth)


def test_fit_finds_the_four_regimes_and_the_filter_labels_them() -> None:
    returns, truth = _regime_returns(1)
    fit = fit_hmm(returns[:2400], HmmSettings(), 1.0)
    assert sorted(fit.state_regimes) == sorted(HMM_REGIMES)
    close = 1.2 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))
    probabilities, _ = hmm_regime_probabilities(close, HmmSettings(), timeframe="1h", train_end=2400)
    labels = np.asarray(HMM_REGIMES)[np.nanargmax(probabilities[1:], axis=1)]
    assert (labels[2400:] == truth[2400:]).mean() > 0.9


def test_the_fit_sees_the_training_segment_only() -> None:
    returns, _ = _regime_returns(2)
    close = 1.2 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))
    changed = close.copy()
    changed[2400:] *= np.exp(np.random.default_rng(0).normal(0, 0.01, close.size - 2400))
    timestamps = pd.date_range("2024-01-01", periods=close.size, freq="h", tz="UTC")
    _, a = hmm_regime_probabilities(close, HmmSettings(), timeframe="1h", train_end=2400, timestamps=timestamps)
    _, b = hmm_regime_probabilities(changed, HmmSettings(), timeframe="1h", train_end=2400, timestamps=timestamps)
    np.testing.assert_array_equal(a.means, b.means)
    np.testing.assert_array_equal(a.variances, b.variances)
    _, c = hmm_regime_probabilities(changed, HmmSettings(), timeframe="1h", train_end=2500, timestamps=timestamps)
    assert not np.array_equal(a.variances, c.variances)


def test_a_regime_rare_in_training_keeps_its_state() -> None:
    """The MAP prior keeps a state for a regime the training segment barely shows (here the down
    trend: 60 of 2400 hours), so it is still recognised when it comes."""
    rng = np.random.default_rng(3)
    parts = [(0.5, 1.0, 900), (0.0, 0.3, 700), (0.0, 3.0, 740), (-0.5, 1.0, 60), (-0.5, 1.0, 600)]
    returns = np.concatenate([1e-3 * (d * s + s * rng.standard_normal(n)) for d, s, n in parts])
    fit = fit_hmm(returns[:2400], HmmSettings(), 1.0)
    assert "bear_trending" in fit.state_regimes
    close = 1.2 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))
    probabilities, _ = hmm_regime_probabilities(close, HmmSettings(), timeframe="1h", train_end=2400)
    labels = np.asarray(HMM_REGIMES)[np.nanargmax(probabilities[2500:], axis=1)]
    assert (labels == "bear_trending").mean() > 0.8


def test_fit_refuses_too_little_or_flat_data() -> None:
    with pytest.raises(ValueError, match="at least 50 training returns"):
        fit_hmm(np.zeros(10), HmmSettings(), 1.0)
    with pytest.raises(ValueError, match="no variance"):
        fit_hmm(np.zeros(100), HmmSettings(), 1.0)


def test_an_underflowing_scaled_fit_falls_back_to_the_log_space_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scaled forward pass underflowed on a year of real EUR/USD M1 bars (bench_inference); the
    log-space pass must then give the same regimes, not an exception."""
    from hmmlearn import _hmmc

    returns, _ = _regime_returns(1)
    expected = fit_hmm(returns[:2400], HmmSettings(), 1.0)

    def underflow(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ValueError("forward pass failed with underflow; consider using implementation='log' instead")

    monkeypatch.setattr(_hmmc, "forward_scaling", underflow)
    fallback = fit_hmm(returns[:2400], HmmSettings(), 1.0)
    assert fallback.state_regimes == expected.state_regimes
    np.testing.assert_allclose(fallback.means, expected.means, rtol=1e-3, atol=1e-6)
