"""Member forecasts (K, n) -> one ensemble forecast (n,) and the members' agreement with it."""

from __future__ import annotations

import numpy as np

from forex_pipeline.models.base import Combiners
from forex_pipeline.models.combiners import combine as combine_members


def _check_members(members: np.ndarray) -> np.ndarray:
    members = np.asarray(members, dtype=np.float64)
    if members.ndim != 2 or members.shape[0] < 1:
        raise ValueError(f"member predictions must have shape (K, n) with K >= 1, got {members.shape}")
    if not np.isfinite(members).all():
        raise ValueError("member predictions contain NaN or infinite values")
    return members


def combine(members: np.ndarray, combiners: Combiners, ensemble_method: str) -> np.ndarray:
    """The ensemble forecast of finite member forecasts (models.combiners.combine does the combining)."""
    return combine_members(_check_members(members), combiners, ensemble_method)


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
