"""Member forecasts (K, n) -> one ensemble forecast (n,) and the members' agreement with it."""

from __future__ import annotations

import numpy as np

from forex_pipeline.models.base import ENSEMBLE_METHODS, Combiners


def _check_members(members: np.ndarray) -> np.ndarray:
    members = np.asarray(members, dtype=np.float64)
    if members.ndim != 2 or members.shape[0] < 1:
        raise ValueError(f"member predictions must have shape (K, n) with K >= 1, got {members.shape}")
    if not np.isfinite(members).all():
        raise ValueError("member predictions contain NaN or infinite values")
    return members


def combine(members: np.ndarray, combiners: Combiners, ensemble_method: str) -> np.ndarray:
    """The ensemble forecast: plain mean, validation-skill weighted mean, or the stacking meta-model."""
    members = _check_members(members)
    k = members.shape[0]
    if ensemble_method == "mean":
        return members.mean(axis=0)
    if ensemble_method == "weighted":
        weights = np.asarray(combiners.weights, dtype=np.float64)
        if weights.shape != (k,) or (weights < 0).any() or not np.isclose(weights.sum(), 1.0):
            raise ValueError(f"combiners.weights must be {k} non-negative numbers summing to 1, got {weights}")
        return weights @ members
    if ensemble_method == "stacking":
        coef = np.asarray(combiners.stacking_coef, dtype=np.float64)
        if coef.shape != (k,):
            raise ValueError(f"combiners.stacking_coef must have {k} entries, got shape {coef.shape}")
        return float(combiners.stacking_intercept) + coef @ members
    raise ValueError(f"ensemble_method {ensemble_method!r} is unknown; known: {ENSEMBLE_METHODS}")


def member_agreement(members: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """Share of members whose forecast has the ensemble forecast's sign, in [0, 1]; 0 where it is 0.

    Measured against the ensemble (not the majority) so that a stacking forecast opposing most
    members gets a low agreement and so a low confidence.
    """
    members = _check_members(members)
    forecast = np.asarray(forecast, dtype=np.float64)
    if forecast.shape != (members.shape[1],):
        raise ValueError(f"forecast has shape {forecast.shape}, expected ({members.shape[1]},)")
    direction = np.sign(forecast)
    return (np.sign(members) == direction).mean(axis=0) * (direction != 0)
