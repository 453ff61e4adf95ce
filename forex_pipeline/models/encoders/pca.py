"""The `pca` encoder: scikit-learn PCA fitted on the training rows, stored as mean and components."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

KIND = "pca"


@dataclass(frozen=True)
class PCAEncoder:
    """(X - mean) @ components.T, with `dim` = min(requested dim, n_features, n_train_rows) components."""

    mean: np.ndarray          # (n_features,)
    components: np.ndarray    # (dim, n_features)
    explained_variance_ratio: np.ndarray
    kind: str = KIND

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.mean.shape[0]:
            raise ValueError(f"encoder pca was fitted on {self.mean.shape[0]} columns, got shape {X.shape}")
        return (X - self.mean) @ self.components.T

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "mean": self.mean.copy(),
            "components": self.components.copy(),
            "explained_variance_ratio": self.explained_variance_ratio.copy(),
        }


def fit(X_train: np.ndarray, dim: int, *, seed: int, context: Any, feature_set_hash: str) -> PCAEncoder:
    """PCA on the training rows only; the component count is capped at the feature and row counts."""
    from sklearn.decomposition import PCA

    X_train = np.asarray(X_train, dtype=np.float64)
    if X_train.ndim != 2 or X_train.shape[0] < 2:
        raise ValueError(f"encoder pca needs at least 2 training rows, got shape {X_train.shape}")
    if dim < 1:
        raise ValueError(f"encoder_dim must be >= 1 for pca, got {dim}")
    n_components = min(int(dim), X_train.shape[1], X_train.shape[0])
    pca = PCA(n_components=n_components, svd_solver="full", random_state=seed).fit(X_train)
    return PCAEncoder(
        mean=np.asarray(pca.mean_, dtype=np.float64),
        components=np.asarray(pca.components_, dtype=np.float64),
        explained_variance_ratio=np.asarray(pca.explained_variance_ratio_, dtype=np.float64),
    )


def encoder_from_state(state: dict[str, Any]) -> PCAEncoder:
    return PCAEncoder(
        mean=np.asarray(state["mean"], dtype=np.float64),
        components=np.asarray(state["components"], dtype=np.float64),
        explained_variance_ratio=np.asarray(state["explained_variance_ratio"], dtype=np.float64),
    )
