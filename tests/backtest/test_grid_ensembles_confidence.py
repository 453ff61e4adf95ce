"""Inference grid, ensembles and confidence on hand-made inputs."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from forex_pipeline.backtest.confidence import confidence, rolling_size_rank
from forex_pipeline.backtest.ensembles import combine, member_agreement
from forex_pipeline.backtest.inference_grid import (
    InferenceConfig,
    inference_configs,
    series_keys,
)
from forex_pipeline.models.base import Combiners
from forex_pipeline.settings import InferenceGridSettings

COMBINERS = Combiners(weights=np.array([0.5, 0.25, 0.25]), stacking_intercept=0.1, stacking_coef=np.array([1.0, -1.0, 2.0]))
MEMBERS = np.array([[1.0, -2.0, 0.0], [3.0, 2.0, -1.0], [-1.0, 4.0, -2.0]])


def test_default_grid_has_135_unique_configurations_and_27_series() -> None:
    configs = inference_configs(InferenceGridSettings())
    assert len(configs) == 135
    assert len({c.hash for c in configs}) == 135
    assert len(series_keys(configs)) == 27


def test_grid_of_any_size() -> None:
    grid = InferenceGridSettings(
        prediction_methods=["direct"], ensemble_methods=["mean", "stacking"], confidence_thresholds=[0.0, 0.5], lookback_windows=[10]
    )
    configs = inference_configs(grid)
    assert [(c.ensemble_method, c.confidence_threshold) for c in configs] == [
        ("mean", 0.0), ("mean", 0.5), ("stacking", 0.0), ("stacking", 0.5)
    ]


def test_hash_is_sha256_of_sorted_compact_json() -> None:
    config = InferenceConfig("recursive", "weighted", 0.3, 100)
    text = '{"confidence_threshold":0.3,"ensemble_method":"weighted","lookback_window":100,"prediction_method":"recursive"}'
    assert config.hash == hashlib.sha256(text.encode()).hexdigest()
    assert InferenceConfig("recursive", "weighted", 0.3, 100).hash == config.hash
    assert InferenceConfig("recursive", "weighted", 0.5, 100).hash != config.hash
    assert json.loads(text) == config.canonical()


def test_bad_configuration_is_named() -> None:
    with pytest.raises(ValueError, match="prediction_method"):
        InferenceConfig("sideways", "mean", 0.3, 100)
    with pytest.raises(ValueError, match="confidence_threshold"):
        InferenceConfig("direct", "mean", 1.5, 100)
    with pytest.raises(ValueError, match="lookback_window"):
        InferenceConfig("direct", "mean", 0.5, 1)


def test_ensembles_by_hand() -> None:
    np.testing.assert_allclose(combine(MEMBERS, COMBINERS, "mean"), [1.0, 4 / 3, -1.0])
    np.testing.assert_allclose(combine(MEMBERS, COMBINERS, "weighted"), [0.5 + 0.75 - 0.25, -1.0 + 0.5 + 1.0, -0.25 - 0.5])
    np.testing.assert_allclose(combine(MEMBERS, COMBINERS, "stacking"), [0.1 + 1 - 3 - 2, 0.1 - 2 - 2 + 8, 0.1 + 0 + 1 - 4])
    with pytest.raises(ValueError, match="ensemble_method"):
        combine(MEMBERS, COMBINERS, "median")
    with pytest.raises(ValueError, match="weights"):
        combine(MEMBERS, Combiners(np.array([0.5, 0.5]), 0.0, np.zeros(3)), "weighted")


def test_agreement_is_share_of_members_on_the_forecast_side() -> None:
    forecast = np.array([1.0, -0.5, 0.0])
    np.testing.assert_allclose(member_agreement(MEMBERS, forecast), [2 / 3, 1 / 3, 0.0])


def test_rolling_rank_by_hand() -> None:
    f = np.array([[1.0, -3.0, 2.0, 2.0, -0.5, 4.0]])
    ranks = rolling_size_rank(f, np.array([2, 3]))
    # window 2: previous two sizes; ties count half; no history -> 0
    np.testing.assert_allclose(ranks[0, 0], [0.0, 1.0, 0.5, 0.25, 0.0, 1.0])
    np.testing.assert_allclose(ranks[0, 1], [0.0, 1.0, 0.5, (1 + 0.5) / 3, 0.0, 1.0])


def test_confidence_is_causal_and_in_unit_interval() -> None:
    rng = np.random.default_rng(0)
    f = rng.normal(size=400)
    agreement = rng.random(400)
    c = confidence(f, agreement, 50)
    assert ((c >= 0) & (c <= 1)).all()
    changed = f.copy()
    changed[250:] = rng.normal(size=150) * 10
    np.testing.assert_array_equal(confidence(changed, agreement, 50)[:250], c[:250])


def test_confidence_rises_with_size_and_agreement() -> None:
    f = np.concatenate([np.linspace(0.1, 1.0, 60), [5.0, 0.01]])
    full = confidence(f, np.ones(62), 50)
    half = confidence(f, np.full(62, 0.5), 50)
    assert full[60] == 1.0 and full[61] == 0.0
    assert half[60] == 0.5
