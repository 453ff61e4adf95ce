"""Regime labelling: rule features over spans of time, custom rules from data, both detectors causal,
custom regimes with the HMM, accuracy on both synthetic generators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from forex_pipeline.regimes.hmm import hmm_regime_probabilities
from forex_pipeline.regimes.labels import (
    REGIME_UNCLASSIFIED,
    apply_rules,
    confusion_matrix,
    label_regimes,
    majority_labels,
    regime_accuracy,
    rule_features,
    timeframe_agreement,
)
from forex_pipeline.settings import (
    DEFAULT_SETTINGS_FILE,
    RegimeSettings,
    SettingsError,
    load_settings,
    parse_settings,
)


@pytest.fixture(scope="module")
def regimes() -> RegimeSettings:
    return load_settings(DEFAULT_SETTINGS_FILE).regimes


@pytest.fixture(scope="module")
def rules(regimes: RegimeSettings) -> RegimeSettings:
    return regimes.model_copy(update={"detector": "rules"})


def noisy(n: int, drift: float, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 1.1 * np.exp(np.cumsum(drift + sigma * rng.standard_normal(n)))


def hours(n: int, start: str = "2024-01-01", freq: str = "h") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq=freq, tz="UTC")


def test_trend_strength_is_a_two_scale_efficiency_ratio() -> None:
    close = np.exp(np.array([0.0, 0.01, 0.03, 0.0, 0.05, 0.04, 0.01]))
    settings = RegimeSettings(trend_hours=4, trend_step_hours=1, volatility_hours=2, percentile_hours=10, deseasonalize=False)
    features = rule_features(close, settings, timeframe="1h")
    nan = np.nan
    # ER over 4 hours and over the last 2 hours (1-hour steps on 1h bars), averaged; the sign and
    # `returns` are the last 2 hours' move
    expected = [nan, nan, nan, nan, (0.05 / 0.11 + 0.02 / 0.08) / 2, (0.03 / 0.11 + 0.04 / 0.06) / 2, (0.02 / 0.12 + 1.0) / 2]
    np.testing.assert_allclose(features["trend_strength"], expected, equal_nan=True)
    np.testing.assert_array_equal(features["return_sign"], [nan, nan, nan, nan, 1, 1, -1])
    np.testing.assert_allclose(features["returns"], [nan, nan, nan, nan, 0.02, 0.04, -0.04], equal_nan=True)
    # realised volatility per square-root hour over 2 hours: sqrt((r_t^2 + r_{t-1}^2) / 2)
    r = np.diff(np.log(close))
    np.testing.assert_allclose(features["volatility"].iloc[2:], np.sqrt((r[1:] ** 2 + r[:-1] ** 2) / 2))


def test_windows_are_spans_of_time_the_same_at_every_timeframe() -> None:
    """On a 4-hour step grid the efficiency ratio of a 1h bar equals that of the 15m bar closing at the
    same moment: the same setting measures the same thing at both timeframes."""
    settings = RegimeSettings(trend_hours=48, trend_step_hours=4, deseasonalize=False)
    fine_index = hours(4 * 24 * 20, freq="15min")
    fine = pd.Series(noisy(len(fine_index), 2e-5, 5e-4, 3), index=fine_index)
    coarse = fine.resample("1h", label="left", closed="left").last()
    fine_trend = pd.Series(rule_features(fine.to_numpy(), settings, timeframe="15m")["trend_strength"].to_numpy(), index=fine_index)
    coarse_trend = rule_features(coarse.to_numpy(), settings, timeframe="1h")["trend_strength"].to_numpy()
    same_moment = fine_trend.reindex(coarse.index + pd.Timedelta(minutes=45)).to_numpy()
    defined = ~np.isnan(coarse_trend)
    assert defined.sum() > 300
    np.testing.assert_allclose(same_moment[defined], coarse_trend[defined])


def test_clean_trends_and_ranges(rules: RegimeSettings) -> None:
    n = 1500
    up = label_regimes(noisy(n, 3e-4, 4e-4, 1), rules, timeframe="1h")
    down = label_regimes(noisy(n, -3e-4, 4e-4, 2), rules, timeframe="1h")
    assert (up[300:] == "bull_trending").mean() > 0.95
    assert (down[300:] == "bear_trending").mean() > 0.95
    # volatility is ranked against its own past: calm stretches (200 bars) take 40% of the time,
    # the calm/volatile percentile of the defaults, and alternate with wild ones (300 bars)
    phase = np.arange(8 * 500) % 500
    sigmas = np.where(phase < 200, 1e-4, 1e-3)
    rng = np.random.default_rng(3)
    x = np.zeros(sigmas.size)
    for t in range(1, sigmas.size):
        x[t] = 0.5 * x[t - 1] + sigmas[t] * rng.standard_normal()
    labels = label_regimes(1.1 * np.exp(x), rules, timeframe="1h")
    settled = (((phase >= 40) & (phase < 200)) | (phase >= 240)) & (np.arange(sigmas.size) >= 1000)
    assert (labels[settled & (sigmas < 5e-4)] == "calm_ranging").mean() > 0.95
    assert (labels[settled & (sigmas > 5e-4)] == "volatile_ranging").mean() > 0.95


def test_custom_regime_from_data_only_and_first_match_wins() -> None:
    raw = {
        "regimes": {
            "detector": "rules",
            "trend_hours": 10,
            "trend_step_hours": 1,
            "volatility_hours": 5,
            "percentile_hours": 50,
            "definitions": {
                "strong_up": {"rules": {"trend_strength": ">= 0.9", "returns": "> 0"}},
                "any_up": {"rules": {"return_sign": {"min": 1}}},
            },
        }
    }
    settings = parse_settings(raw).regimes
    close = np.exp(np.concatenate([np.linspace(0, 0.1, 40), 0.1 + 0.01 * np.sin(np.arange(40))]))
    labels = label_regimes(close, settings, timeframe="1h")
    assert set(labels[15:40]) == {"strong_up"}
    assert labels[0] == REGIME_UNCLASSIFIED and labels[9] == REGIME_UNCLASSIFIED
    assert set(labels[52:]) <= {"any_up", REGIME_UNCLASSIFIED}
    assert "any_up" in set(labels[50:])


def test_strict_and_inclusive_bounds_and_percentile_rules() -> None:
    features = pd.DataFrame({"trend_strength": [0.7, 0.7, 0.8], "returns": [0.0, 1e-3, -1e-3], "volatility": [1.0, 2.0, 3.0]})
    definitions = parse_settings(
        {"regimes": {"definitions": {
            "above": {"rules": {"trend_strength": "> 0.7"}},
            "up": {"rules": {"returns": "> 0"}},
            "at_least": {"rules": {"trend_strength": ">= 0.7"}},
        }}}
    ).regimes.definitions
    assert list(apply_rules(features, definitions)) == ["at_least", "up", "above"]
    # "> 50th percentile" ranks each value among the feature's own trailing values
    ranked = parse_settings({"regimes": {"definitions": {"busy": {"rules": {"volatility": "> 50th percentile"}}}}}).regimes.definitions
    rising = pd.DataFrame({"volatility": np.arange(1.0, 41.0)})
    falling = pd.DataFrame({"volatility": np.arange(40.0, 0.0, -1.0)})
    assert (apply_rules(rising, ranked, percentile_bars=30)[20:] == "busy").all()
    assert (apply_rules(falling, ranked, percentile_bars=30)[20:] == REGIME_UNCLASSIFIED).all()


def test_nan_features_never_match() -> None:
    features = pd.DataFrame({"trend_strength": [np.nan, 0.5], "volatility_percentile": [0.5, np.nan], "return_sign": [1, 1]})
    settings = parse_settings({"regimes": {"definitions": {"x": {"rules": {"trend_strength": {"max": 1.0}}}}}}).regimes
    assert list(apply_rules(features, settings.definitions)) == [REGIME_UNCLASSIFIED, "x"]


def test_bar_count_windows_are_refused_with_what_replaced_them() -> None:
    with pytest.raises(SettingsError, match=r"spans of time.*trend_window -> trend_hours"):
        parse_settings({"regimes": {"trend_window": 40}})


def _perturbed_after(close: np.ndarray, t: int, seed: int) -> np.ndarray:
    changed = close.copy()
    changed[t + 1 :] *= np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, 3e-3, close.size - t - 1)))
    return changed


@hypothesis_settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), cut=st.integers(0, 1_299))
def test_rule_labels_at_t_do_not_change_when_data_after_t_changes(rules: RegimeSettings, seed: int, cut: int) -> None:
    close = noisy(1_300, 0.0, 5e-4, seed)
    timestamps = hours(close.size)
    changed = _perturbed_after(close, cut, seed + 1)
    a = label_regimes(close, rules, timeframe="1h", timestamps=timestamps)
    b = label_regimes(changed, rules, timeframe="1h", timestamps=timestamps)
    np.testing.assert_array_equal(a[: cut + 1], b[: cut + 1])
    fa = rule_features(close, rules, timeframe="1h", timestamps=timestamps).iloc[: cut + 1]
    fb = rule_features(changed, rules, timeframe="1h", timestamps=timestamps).iloc[: cut + 1]
    pd.testing.assert_frame_equal(fa, fb)


@hypothesis_settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), cut=st.integers(600, 1_299))
def test_hmm_labels_at_t_do_not_change_when_data_after_t_changes(regimes: RegimeSettings, seed: int, cut: int) -> None:
    """Fitted on bars before train_end = 600, filtered forward: a label from train_end on depends on
    bars up to its own only (a Viterbi path or smoothed probabilities would fail this)."""
    assert regimes.detector == "hmm"
    rng = np.random.default_rng(seed)
    sigma = np.repeat(rng.choice([2e-4, 8e-4], 13), 100)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0.0, 1.0, 1_300) * sigma))
    timestamps = hours(close.size)
    changed = _perturbed_after(close, cut, seed + 1)
    a = label_regimes(close, regimes, timeframe="1h", train_end=600, timestamps=timestamps)
    b = label_regimes(changed, regimes, timeframe="1h", train_end=600, timestamps=timestamps)
    np.testing.assert_array_equal(a[: cut + 1], b[: cut + 1])
    # the probabilities behind the labels too (an argmax can hide a small look-ahead)
    pa, _ = hmm_regime_probabilities(close, regimes.hmm, timeframe="1h", train_end=600, timestamps=timestamps)
    pb, _ = hmm_regime_probabilities(changed, regimes.hmm, timeframe="1h", train_end=600, timestamps=timestamps)
    np.testing.assert_array_equal(pa[: cut + 1], pb[: cut + 1])


def test_hmm_labels_change_with_the_training_segment_only_through_the_fit(regimes: RegimeSettings) -> None:
    """Data after train_end cannot move the fit: changing bar 900 of 1300 leaves bars < 900 alone,
    while changing the training segment may relabel anything."""
    close = noisy(1_300, 0.0, 5e-4, 5)
    a = label_regimes(close, regimes, timeframe="1h", train_end=600)
    b = label_regimes(_perturbed_after(close, 900, 1), regimes, timeframe="1h", train_end=600)
    np.testing.assert_array_equal(a[:901], b[:901])


def test_hmm_needs_a_long_enough_training_segment(regimes: RegimeSettings) -> None:
    with pytest.raises(ValueError, match=r"at least 240 trading hours.*train_end=100"):
        label_regimes(noisy(500, 0.0, 5e-4, 1), regimes, timeframe="1h", train_end=100)
    with pytest.raises(ValueError, match="train_end must be in"):
        label_regimes(noisy(500, 0.0, 5e-4, 1), regimes, timeframe="1h", train_end=501)


def test_with_the_hmm_custom_regimes_are_rules_matched_first_and_disabled_builtins_never_emitted(regimes: RegimeSettings) -> None:
    definitions = {name: d for name, d in regimes.definitions.items() if name != "calm_ranging"}
    definitions = parse_settings(
        {"regimes": {"definitions": {"late_rally": {"rules": {"returns": "> 0.004", "trend_strength": ">= 0.6"}}}}}
    ).regimes.definitions | definitions
    settings = regimes.model_copy(update={"definitions": definitions})
    rng = np.random.default_rng(2)
    sigma = np.repeat([2e-4, 8e-4, 2e-4, 8e-4], 400)
    drift = np.where(np.arange(1_600) >= 1_300, 6e-4, 0.0)
    close = 1.1 * np.exp(np.cumsum(drift + sigma * rng.standard_normal(1_600)))
    timestamps = hours(close.size)
    labels = label_regimes(close, settings, timeframe="1h", train_end=800, timestamps=timestamps)
    assert "calm_ranging" not in set(labels)
    assert REGIME_UNCLASSIFIED in set(labels[800:])                # the HMM's calm bars: calm_ranging is disabled
    assert (labels[1_400:] == "late_rally").mean() > 0.8      # the rule regime claims its bars first
    full = label_regimes(close, regimes, timeframe="1h", train_end=800, timestamps=timestamps)
    rest = (labels != "late_rally") & (full != "calm_ranging")
    np.testing.assert_array_equal(labels[rest], full[rest])  # every other bar: the HMM's label


def test_majority_labels_accuracy_confusion_and_agreement() -> None:
    minutes = pd.date_range("2024-01-01", periods=8, freq="min", tz="UTC")
    fine = pd.Series(["a", "a", "a", "b", "b", "b", "c", "c"], index=minutes)
    bars = pd.DatetimeIndex(minutes[[0, 4, 6]])
    assert list(majority_labels(fine, bars)) == ["a", "b", "c"]
    tied = pd.Series(["b", "a", "c", "c"], index=minutes[:4])
    assert list(majority_labels(tied, pd.DatetimeIndex(minutes[[0, 2]]))) == ["a", "c"]
    assert regime_accuracy(np.array(["a", "x", "c"]), np.array(["a", "b", "c"], dtype=object)) == pytest.approx(2 / 3)
    assert regime_accuracy(np.array(["a", "x"]), np.array(["a", "b"], dtype=object), valid=np.array([True, False])) == 1.0
    with pytest.raises(ValueError, match="shape"):
        regime_accuracy(np.array(["a"]), np.array(["a", "b"], dtype=object))
    confusion = confusion_matrix(np.array(["a", "x", "c", "a"]), np.array(["a", "b", "c", None], dtype=object))
    assert confusion.loc["b", "x"] == 1 and confusion.loc["a", "a"] == 1 and confusion.to_numpy().sum() == 3
    coarse = pd.Series(["a", "c", "b"], index=bars)
    assert timeframe_agreement(coarse, fine) == pytest.approx(1 / 3)


@pytest.mark.slow
@pytest.mark.parametrize("generator", ["tours", "markov"])
@pytest.mark.parametrize("detector", ["hmm", "rules"])
def test_accuracy_on_both_synthetic_generators(regimes: RegimeSettings, detector: str, generator: str) -> None:
    """Seed 11 is neither a tuning seed (100-107) nor a benchmark seed (1-4); fitted on the first
    half, scored on the second. Measured on it: hmm 95/89/83% (tours) and 94/90/82% (Markov) at
    15m/1h/4h; rules 82/82/78% and 78/77/75%. The floors guard against regressions."""
    from forex_pipeline.data.resample import resample_bars
    from forex_pipeline.data.synthetic import generate_synthetic_bars
    from forex_pipeline.data.synthetic_markov import generate_markov_bars

    synthetic = (generate_synthetic_bars if generator == "tours" else generate_markov_bars)(365, seed=11)
    settings = regimes.model_copy(update={"detector": detector})
    for timeframe in ("15m", "1h", "4h"):
        bars = resample_bars(synthetic.bars, timeframe)
        half = len(bars) // 2
        truth = majority_labels(synthetic.regimes, bars.index)
        labels = label_regimes(bars["close"].to_numpy(), settings, timeframe=timeframe, train_end=half, timestamps=bars.index)
        accuracy = regime_accuracy(labels, truth, np.arange(len(bars)) >= half)
        assert accuracy > ACCURACY_FLOOR[detector][timeframe], (detector, generator, timeframe, accuracy)


# The specification asks > 85% on data with known regimes; the targets are >= 85% at 15m
# and 1h and >= 75% at 4h. The HMM (the default) meets them; the rules do not (docs/regimes.md).
ACCURACY_FLOOR = {
    "hmm": {"15m": 0.85, "1h": 0.85, "4h": 0.75},
    "rules": {"15m": 0.74, "1h": 0.74, "4h": 0.72},
}
