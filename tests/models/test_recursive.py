"""Recursive forecasting against closed forms on constructed AR series where the one-step model is exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models.registry import TrainingContext, train_model
from forex_pipeline.models.spec import ModelSpec
from forex_pipeline.models.training import recursive_forecast
from tests.models.conftest import small_settings

PHI = 0.6
GAMMA = 1e-3


def geometric_sum(phi: float, horizon: int) -> float:
    """phi + phi^2 + ... + phi^horizon."""
    return phi * (1 - phi**horizon) / (1 - phi)


def test_recursive_forecast_of_an_exact_ar1_is_the_geometric_sum():
    r_t = np.array([1e-3, -2e-3, 5e-4])
    X = np.column_stack([r_t, np.zeros(3), np.full(3, 7.0)])      # ret_lag_1, ret_lag_2, an unrelated feature
    forecast = recursive_forecast(lambda Z: PHI * Z[:, 0], lambda X: X, X, (0, 1), horizon=6)
    np.testing.assert_allclose(forecast, r_t * geometric_sum(PHI, 6), rtol=1e-12)


def test_recursive_forecast_shifts_older_lags():
    a, b = 0.5, 0.3
    r0, r_prev = 1e-3, -4e-4
    X = np.array([[r0, r_prev, 0.0]])
    forecast = recursive_forecast(lambda Z: a * Z[:, 0] + b * Z[:, 1], lambda X: X, X, (0, 1, 2), horizon=3)
    x1 = a * r0 + b * r_prev
    x2 = a * x1 + b * r0
    x3 = a * x2 + b * x1
    assert forecast[0] == pytest.approx(x1 + x2 + x3, rel=1e-12)


def ar_matrix(n: int = 1500, lags: int = 3, seed: int = 0) -> tuple[FeatureMatrix, np.ndarray, np.ndarray]:
    """Returns with r[t+1] = PHI * r[t] + GAMMA * f[t] exactly; features ret_lag_1..lags and f."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=n)
    r = np.zeros(n)
    for t in range(n - 1):
        r[t + 1] = PHI * r[t] + GAMMA * f[t]
    close = 1.1 * np.exp(np.cumsum(r))
    rows = np.arange(lags, n)
    X = np.column_stack([r[rows - k] for k in range(lags)] + [f[rows]])
    names = tuple(f"ret_lag_{k + 1}" for k in range(lags)) + ("f",)
    timestamps = pd.date_range("2019-01-01", periods=len(rows), freq="h", tz="UTC", name="timestamp")
    matrix = FeatureMatrix("ar1", timestamps, X, names, close[rows], "1h", "SYNTH")
    return matrix, r[rows], f[rows]


def test_pipeline_recursive_matches_the_closed_form_when_the_one_step_model_is_exact(tmp_path):
    horizon = 5
    matrix, r, f = ar_matrix()
    spec = ModelSpec(model_type="ridge", horizon=horizon, hyperparameters={"alpha": 1e-10})
    model = train_model(matrix, spec, TrainingContext(settings=small_settings(members=3), artifacts_dir=tmp_path))
    rows = np.arange(matrix.n_rows - 200, matrix.n_rows)
    # x_j = PHI^j r + GAMMA f (1 - PHI^j) / (1 - PHI) with f held at its value at t; the forecast is their sum.
    expected = r[rows] * geometric_sum(PHI, horizon) + GAMMA * f[rows] * (horizon - geometric_sum(PHI, horizon)) / (1 - PHI)
    preds = model.predict_members(matrix, rows, "recursive")
    assert preds.shape == (3, len(rows))
    np.testing.assert_allclose(preds, np.broadcast_to(expected, preds.shape), rtol=0, atol=1e-6 * np.abs(expected).max())


def test_direct_learns_the_conditional_expectation_of_the_horizon_return(tmp_path):
    horizon = 5
    matrix, r, f = ar_matrix(n=3000, seed=1)
    spec = ModelSpec(model_type="ridge", horizon=horizon, hyperparameters={"alpha": 1e-10})
    model = train_model(matrix, spec, TrainingContext(settings=small_settings(members=1), artifacts_dir=tmp_path))
    rows = np.arange(matrix.n_rows - 300, matrix.n_rows)
    # E[r[t+j] | t] = PHI^j r[t] + GAMMA PHI^(j-1) f[t]: future f are unknown at t and average zero.
    expected = r[rows] * geometric_sum(PHI, horizon) + GAMMA * f[rows] * geometric_sum(PHI, horizon) / PHI
    for method in ("direct", "direct_multi"):
        preds = model.predict_members(matrix, rows, method)[0]
        assert np.corrcoef(preds, expected)[0, 1] > 0.98, method
        assert np.mean((preds - expected) ** 2) < 0.05 * np.mean(expected**2), method
