"""Confidence in [0, 1] of each forecast, from its size against its recent past and member agreement.

    rank_t       = (#{j in W_t : |f_j| < |f_t|} + 0.5 * #{j in W_t : |f_j| = |f_t|}) / |W_t|
    W_t          = the `lookback_window` forecasts before t: t - L, ..., t - 1 (fewer at the very start)
    confidence_t = rank_t * agreement_t

`rank_t` is the causal percentile rank of the forecast's size among the previous L forecasts (only
forecasts up to t are used; it is 0 when there is no history yet), `agreement_t` the share of
members on the ensemble's side (`ensembles.member_agreement`). A trade is taken when
confidence >= threshold and the forecast is non-zero, so threshold 0 takes every non-zero signal.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _nested_rolling_rank(sizes: np.ndarray, lookbacks: np.ndarray, out: np.ndarray) -> None:
    """Ranks for every lookback (ascending) in one backward scan per bar: the windows are nested."""
    n = sizes.shape[0]
    n_look = lookbacks.shape[0]
    for t in range(n):
        x = sizes[t]
        twice_rank = 0.0
        j = t
        for k in range(n_look):
            start = max(0, t - lookbacks[k])
            while j > start:
                j -= 1
                v = sizes[j]
                twice_rank += (1.0 if v < x else 0.0) + (1.0 if v <= x else 0.0)
            m = t - start
            out[k, t] = 0.5 * twice_rank / m if m > 0 else 0.0


@numba.njit(cache=True, parallel=True)
def _rolling_rank_many(sizes: np.ndarray, lookbacks: np.ndarray) -> np.ndarray:
    n_series, n = sizes.shape
    out = np.empty((n_series, lookbacks.shape[0], n))
    for s in numba.prange(n_series):
        _nested_rolling_rank(sizes[s], lookbacks, out[s])
    return out


def _check_lookbacks(lookbacks: np.ndarray) -> np.ndarray:
    lookbacks = np.asarray(lookbacks, dtype=np.int64)
    if lookbacks.ndim != 1 or (lookbacks < 1).any():
        raise ValueError(f"lookback windows must be positive integers, got {lookbacks}")
    return lookbacks


def rolling_size_rank(forecasts: np.ndarray, lookbacks: np.ndarray) -> np.ndarray:
    """(F, n) forecasts, (L,) lookbacks -> (F, L, n) causal percentile ranks of |forecast|."""
    forecasts = np.asarray(forecasts, dtype=np.float64)
    if forecasts.ndim != 2:
        raise ValueError(f"forecasts must have shape (F, n), got {forecasts.shape}")
    if not np.isfinite(forecasts).all():
        raise ValueError("forecasts contain NaN or infinite values")
    lookbacks = _check_lookbacks(lookbacks)
    order = np.argsort(lookbacks, kind="stable")
    ranks = _rolling_rank_many(np.ascontiguousarray(np.abs(forecasts)), np.ascontiguousarray(lookbacks[order]))
    out = np.empty_like(ranks)
    out[:, order, :] = ranks
    return out


def confidence(forecast: np.ndarray, agreement: np.ndarray, lookback_window: int) -> np.ndarray:
    """Confidence of one forecast series (see the module docstring for the formula)."""
    forecast = np.asarray(forecast, dtype=np.float64)
    agreement = np.asarray(agreement, dtype=np.float64)
    if forecast.ndim != 1 or agreement.shape != forecast.shape:
        raise ValueError(f"forecast {forecast.shape} and agreement {agreement.shape} must be equal 1-d shapes")
    if ((agreement < 0) | (agreement > 1)).any():
        raise ValueError("agreement must lie in [0, 1]")
    rank = rolling_size_rank(forecast[None, :], np.array([lookback_window]))[0, 0]
    return rank * agreement
