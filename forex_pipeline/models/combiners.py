"""Fit the `weighted` and `stacking` ensembles of one prediction method on validation predictions.

- weighted: w_k proportional to 1 / (MSE_k + eps) on the validation segment, normalised to sum to 1,
  where eps = 1e-9 * mean(y_val**2) (plus a tiny absolute floor) keeps a perfect member finite. A
  member with any non-finite validation prediction gets weight 0; if no member is usable the weights
  are uniform.
- stacking: a ridge meta-model with intercept, y ~ b + c @ members, fitted on centred validation
  member predictions with penalty `STACKING_ALPHA * trace(C) / K` (C = centred Gram matrix), so the
  shrinkage is scale-free and collinear members stay well-posed. Constant or non-finite members get
  coefficient 0; with no usable member the meta-model is the validation mean.
Both are stored as arrays in `Combiners`, so inference never trains anything.
"""

from __future__ import annotations

import numpy as np

from forex_pipeline.models.base import ENSEMBLE_METHODS, Combiners

STACKING_ALPHA = 1e-2
_EPS_RELATIVE = 1e-9
_EPS_ABSOLUTE = 1e-300


def _validate(val_member_preds: np.ndarray, y_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes: (K, n_val) predictions, (n_val,) finite targets, n_val >= 1."""
    preds = np.asarray(val_member_preds, dtype=np.float64)
    y = np.asarray(y_val, dtype=np.float64)
    if preds.ndim != 2 or preds.shape[0] < 1:
        raise ValueError(f"val_member_preds must have shape (K, n_val) with K >= 1, got {preds.shape}")
    if y.shape != (preds.shape[1],):
        raise ValueError(f"y_val has shape {y.shape}, expected ({preds.shape[1]},) to match val_member_preds")
    if y.size == 0:
        raise ValueError("y_val is empty: combiners need at least one validation row")
    if not np.all(np.isfinite(y)):
        raise ValueError("y_val holds NaN or infinite targets")
    return preds, y


def inverse_mse_weights(preds: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights proportional to 1 / validation MSE, non-negative, summing to 1, never NaN."""
    usable = np.all(np.isfinite(preds), axis=1)
    weights = np.zeros(preds.shape[0])
    if not usable.any():
        return np.full(preds.shape[0], 1.0 / preds.shape[0])
    mse = np.mean((preds[usable] - y) ** 2, axis=1)
    eps = _EPS_RELATIVE * float(np.mean(y**2)) + _EPS_ABSOLUTE
    inverse = 1.0 / (mse + eps)
    if not np.all(np.isfinite(inverse)):
        inverse = np.where(np.isfinite(inverse), 0.0, 1.0)
    weights[usable] = inverse / inverse.sum()
    return weights


def ridge_stacking(preds: np.ndarray, y: np.ndarray, alpha: float = STACKING_ALPHA) -> tuple[float, np.ndarray]:
    """(intercept, coef) of a scale-free ridge meta-model on the member predictions."""
    k = preds.shape[0]
    coef = np.zeros(k)
    usable = np.all(np.isfinite(preds), axis=1)
    if usable.any():
        usable &= np.ptp(np.where(np.isfinite(preds), preds, 0.0), axis=1) > 0
    y_mean = float(np.mean(y))
    if not usable.any():
        return y_mean, coef
    members = preds[usable]
    means = members.mean(axis=1)
    centred = members - means[:, None]
    gram = centred @ centred.T
    penalty = alpha * np.trace(gram) / members.shape[0]
    solved = np.linalg.solve(gram + penalty * np.eye(members.shape[0]), centred @ (y - y_mean))
    if not np.all(np.isfinite(solved)):
        return y_mean, coef
    coef[usable] = solved
    return y_mean - float(solved @ means), coef


def fit_combiners(val_member_preds: np.ndarray, y_val: np.ndarray) -> Combiners:
    """`weighted` weights and the `stacking` meta-model from (K, n_val) validation member predictions."""
    preds, y = _validate(val_member_preds, y_val)
    intercept, coef = ridge_stacking(preds, y)
    return Combiners(weights=inverse_mse_weights(preds, y), stacking_intercept=intercept, stacking_coef=coef)


def combine(member_preds: np.ndarray, combiners: Combiners, ensemble_method: str) -> np.ndarray:
    """One forecast per row from (K, n) member forecasts: plain mean, validation-skill weighted mean,
    or the stacking meta-model; combiners that do not fit K members are refused."""
    preds = np.asarray(member_preds, dtype=np.float64)
    if preds.ndim != 2 or preds.shape[0] < 1:
        raise ValueError(f"member predictions must have shape (K, n) with K >= 1, got {preds.shape}")
    k = preds.shape[0]
    if ensemble_method == "mean":
        return preds.mean(axis=0)
    if ensemble_method == "weighted":
        weights = np.asarray(combiners.weights, dtype=np.float64)
        if weights.shape != (k,) or (weights < 0).any() or not np.isclose(weights.sum(), 1.0):
            raise ValueError(f"combiners.weights must be {k} non-negative numbers summing to 1, got {weights}")
        return weights @ preds
    if ensemble_method == "stacking":
        coef = np.asarray(combiners.stacking_coef, dtype=np.float64)
        if coef.shape != (k,):
            raise ValueError(f"combiners.stacking_coef must have {k} entries, got shape {coef.shape}")
        return float(combiners.stacking_intercept) + coef @ preds
    raise ValueError(f"ensemble_method {ensemble_method!r} is unknown; known: {', '.join(ENSEMBLE_METHODS)}")


def combiners_to_state(combiners: Combiners) -> dict:
    """Plain arrays and floats for a model file."""
    return {
        "weights": np.asarray(combiners.weights, dtype=np.float64),
        "stacking_intercept": float(combiners.stacking_intercept),
        "stacking_coef": np.asarray(combiners.stacking_coef, dtype=np.float64),
    }


def combiners_from_state(state: dict) -> Combiners:
    """Inverse of `combiners_to_state`."""
    return Combiners(
        weights=np.asarray(state["weights"], dtype=np.float64),
        stacking_intercept=float(state["stacking_intercept"]),
        stacking_coef=np.asarray(state["stacking_coef"], dtype=np.float64),
    )
