"""The `pca` encoder: scikit-learn PCA fitted on the training rows, stored as plain arrays.

Columns are standardised with training-row statistics before the PCA (a correlation-matrix PCA), so
the encoder is correct whether its caller passes scaled features (classical families) or raw ones;
on already standardised input that step is the identity up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

KIND = "pca"


@dataclass(frozen=True)
class PCAEncoder:
    """((X - center) / scale - mean) @ components.T with min(dim, n_features, n_train_rows) components."""

    center: np.ndarray        # (n_features,) training column means
    scale: np.ndarray         # (n_features,) training column standard deviations (1 where constant)
    mean: np.ndarray          # (n_features,) PCA mean of the standardised training rows
    components: np.ndarray    # (dim, n_features)
    explained_variance_ratio: np.ndarray
    kind: str = KIND

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.center.shape[0]:
            raise ValueError(f"encoder pca was fitted on {self.center.shape[0]} columns, got shape {X.shape}")
        return ((X - self.center) / self.scale - self.mean) @ self.components.T

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "center": self.center.copy(),
            "scale": self.scale.copy(),
            "mean": self.mean.copy(),
            "components": self.components.copy(),
            "explained_variance_ratio": self.explained_variance_ratio.copy(),
        }


def fit(X_train: np.ndarray, dim: int, *, seed: int, context: Any, feature_set_hash: str) -> PCAEncoder:
    """PCA on the standardised training rows only; the component count is capped at features and rows."""
    from sklearn.decomposition import PCA

    X_train = np.asarray(X_train, dtype=np.float64)
    if X_train.ndim != 2 or X_train.shape[0] < 2 or X_train.shape[1] < 1:
        raise ValueError(f"encoder pca needs at least 2 training rows and 1 column, got shape {X_train.shape}")
    if not np.isfinite(X_train).all():
        raise ValueError("encoder pca: the training rows hold NaN or inf")
    if dim < 1:
        raise ValueError(f"model_spec.encoder_dim must be >= 1 for pca, got {dim}")
    center = X_train.mean(axis=0)
    scale = X_train.std(axis=0)
    scale = np.where(scale > 1e-12 * np.maximum(np.abs(center), 1.0), scale, 1.0)
    standardised = (X_train - center) / scale
    n_components = min(int(dim), X_train.shape[1], X_train.shape[0])
    pca = PCA(n_components=n_components, svd_solver="full", random_state=seed).fit(standardised)
    return PCAEncoder(
        center=center,
        scale=scale,
        mean=np.asarray(pca.mean_, dtype=np.float64),
        components=np.asarray(pca.components_, dtype=np.float64),
        explained_variance_ratio=np.asarray(pca.explained_variance_ratio_, dtype=np.float64),
    )


def encoder_from_state(state: dict[str, Any]) -> PCAEncoder:
    return PCAEncoder(
        center=np.asarray(state["center"], dtype=np.float64),
        scale=np.asarray(state["scale"], dtype=np.float64),
        mean=np.asarray(state["mean"], dtype=np.float64),
        components=np.asarray(state["components"], dtype=np.float64),
        explained_variance_ratio=np.asarray(state["explained_variance_ratio"], dtype=np.float64),
    )
