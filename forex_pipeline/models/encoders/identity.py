"""The `none` encoder: scaled features pass through unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

KIND = "none"


@dataclass(frozen=True)
class IdentityEncoder:
    """Passes rows through; remembers the column count to refuse a mismatched matrix."""

    n_features: int
    kind: str = KIND

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"encoder none was fitted on {self.n_features} columns, got shape {X.shape}")
        return X

    def to_state(self) -> dict[str, Any]:
        return {"kind": KIND, "n_features": int(self.n_features)}


def fit(X_train: np.ndarray, dim: int, *, seed: int, context: Any, feature_set_hash: str) -> IdentityEncoder:
    """The identity on the training matrix's columns (`dim` is ignored)."""
    return IdentityEncoder(n_features=int(np.asarray(X_train).shape[1]))


def encoder_from_state(state: dict[str, Any]) -> IdentityEncoder:
    return IdentityEncoder(n_features=int(state["n_features"]))
