"""Combiners on constructed validation predictions: skill gets weight, degenerate members never give NaN."""

from __future__ import annotations

import numpy as np
import pytest

from forex_pipeline.models.combiners import combine, fit_combiners


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(3)


def test_perfect_member_gets_most_weight(rng):
    y = rng.normal(0, 1e-3, 500)
    preds = np.vstack([y, y + rng.normal(0, 1e-3, 500), rng.normal(0, 1e-3, 500)])
    combiners = fit_combiners(preds, y)
    assert combiners.weights[0] > 0.99
    assert np.isclose(combiners.weights.sum(), 1.0)
    assert combiners.stacking_coef[0] == pytest.approx(1.0, abs=0.05)
    assert np.abs(combiners.stacking_coef[1:]).max() < 0.05
    assert np.mean((combine(preds, combiners, "stacking") - y) ** 2) < 0.01 * np.mean(y**2)


def test_weights_are_inverse_validation_mse():
    y = np.zeros(4)
    errors = np.array([[1.0, -1.0, 1.0, -1.0], [2.0, 0.0, 2.0, 0.0], [2.0, -2.0, 2.0, -2.0]])   # MSE 1, 2, 4
    combiners = fit_combiners(errors, y)
    np.testing.assert_allclose(combiners.weights, np.array([4.0, 2.0, 1.0]) / 7.0, rtol=1e-9)


@pytest.mark.parametrize(
    "preds",
    [
        np.vstack([np.full(50, 3e-4), np.linspace(-1e-3, 1e-3, 50)]),   # one constant member
        np.full((3, 50), 2e-4),                                          # every member constant and equal
        np.zeros((2, 50)),                                               # every member zero
        np.vstack([np.full(50, np.nan), np.linspace(-1, 1, 50)]),       # one NaN member
        np.full((2, 50), np.nan),                                       # nothing usable
        np.tile(np.linspace(-1e-3, 1e-3, 50), (4, 1)),                  # identical (collinear) members
    ],
)
def test_degenerate_members_give_finite_combiners(preds):
    y = np.linspace(-1e-3, 1e-3, 50) ** 2
    combiners = fit_combiners(preds, y)
    assert np.isfinite(combiners.weights).all() and (combiners.weights >= 0).all()
    assert np.isclose(combiners.weights.sum(), 1.0)
    assert np.isfinite(combiners.stacking_coef).all() and np.isfinite(combiners.stacking_intercept)
    usable = np.isfinite(preds).all(axis=1)
    assert (combiners.weights[~usable] == 0).all() or not usable.any()


def test_constant_members_stack_to_the_validation_mean():
    y = np.array([1.0, 2.0, 3.0, 6.0])
    combiners = fit_combiners(np.full((2, 4), 5.0), y)
    assert combiners.stacking_intercept == pytest.approx(3.0)
    assert np.array_equal(combiners.stacking_coef, np.zeros(2))


def test_single_member_and_bad_shapes():
    y = np.array([1.0, -1.0, 0.5])
    assert np.array_equal(fit_combiners(np.array([[0.9, -1.1, 0.4]]), y).weights, np.array([1.0]))
    with pytest.raises(ValueError, match="y_val"):
        fit_combiners(np.zeros((2, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="val_member_preds"):
        fit_combiners(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        fit_combiners(np.zeros((2, 3)), np.array([0.0, np.nan, 1.0]))
