"""The `latents` encoder: ONE autoencoder per feature set and latent size, cached and shared by models.

Distinction from `autoencoder`: an `autoencoder` (or `vae`) is fitted inside each model's training,
on that model's training rows, and belongs to that model alone. `latents` is fitted once per
(feature set, encoder_dim): the first model spec that asks for it trains the autoencoder on the
feature set's training segment (the rows its caller passes: the chronological
`training.train_fraction` segment, which differs between horizons by at most the embargo) with a seed
derived from the feature-set hash and dim, not from the model's seed, and writes the weights
atomically to

    <artifacts_dir>/encoders/<feature_set_hash>-<dim>.npz

Every later model spec on the same feature set and dim loads that file instead of training, so a
grid of many model specs shares one representation (and one training cost).

What is shared is the network working on standardised columns; each caller standardises with the
statistics of the rows it passes. Standardisation removes any per-column affine scaling, so callers
that pass raw features (neural families) and callers that pass scaled ones (classical families) get
the same latents from the same weights. The encoder state a model file stores holds the full weights,
so a model never depends on the cache file surviving. Cache files are plain npz (no pickles).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from forex_pipeline.models.encoders import autoencoder
from forex_pipeline.models.encoders.autoencoder import (
    AutoencoderEncoder,
    standardisation,
)
from forex_pipeline.models.files import write_atomic

KIND = "latents"
CACHE_SUBDIR = "encoders"
WEIGHTS = ("w0", "b0", "w1", "b1")
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


class LatentsCacheError(ValueError):
    """A latents cache file is unreadable or does not match its feature set; the message names it."""


def cache_path(artifacts_dir: Path, feature_set_hash: str, dim: int) -> Path:
    """Where the shared encoder of one feature set and latent size lives."""
    if not isinstance(feature_set_hash, str) or not _SAFE.match(feature_set_hash) or set(feature_set_hash) == {"."}:
        raise ValueError(f"feature_set_hash {feature_set_hash!r} is not usable in a file name")
    return Path(artifacts_dir) / CACHE_SUBDIR / f"{feature_set_hash}-{int(dim)}.npz"


def _artifacts_dir(context: Any) -> Path:
    if context is not None and getattr(context, "artifacts_dir", None) is not None:
        return Path(context.artifacts_dir)
    from forex_pipeline.settings import get_settings

    return get_settings().artifacts_dir


def read_cache(path: Path, n_features: int, dim: int) -> dict[str, np.ndarray]:
    """The cached weights, checked against the caller's column count and dim."""
    try:
        with np.load(path, allow_pickle=False) as data:
            weights = {name: np.asarray(data[name], dtype=np.float64) for name in WEIGHTS}
    except (OSError, ValueError, KeyError) as exc:
        raise LatentsCacheError(f"latents cache {path} is unreadable: {exc}") from exc
    if weights["w0"].shape[1] != n_features or weights["w1"].shape[0] != dim:
        raise LatentsCacheError(
            f"latents cache {path} holds an encoder of {weights['w0'].shape[1]} columns -> {weights['w1'].shape[0]} "
            f"latents, but the feature set has {n_features} columns and encoder_dim is {dim}"
        )
    return weights


def write_cache(path: Path, weights: dict[str, np.ndarray]) -> None:
    """Write the weights atomically (temporary file, fsync, rename)."""
    def write(temp: Path) -> None:
        with open(temp, "wb") as handle:
            np.savez(handle, **{name: weights[name] for name in WEIGHTS})

    write_atomic(path, write)


def fit(X_train: np.ndarray, dim: int, *, seed: int, context: Any, feature_set_hash: str) -> AutoencoderEncoder:
    """Load the feature set's shared encoder, training and caching it first if no model has yet."""
    from forex_pipeline.hashing import config_hash

    center, scale = standardisation(X_train, KIND)
    path = cache_path(_artifacts_dir(context), feature_set_hash, dim)
    if path.exists():
        weights = read_cache(path, X_train.shape[1], int(dim))
    else:
        Z = (np.asarray(X_train, dtype=np.float64) - center) / scale
        shared_seed = int(config_hash({"latents": feature_set_hash, "dim": int(dim)})[:15], 16)
        weights = autoencoder.train_weights(Z, int(dim), seed=shared_seed, context=context,
                                            variational=False, kind=KIND)
        write_cache(path, weights)
    return AutoencoderEncoder(center=center, scale=scale, **weights, kind=KIND)


def encoder_from_state(state: dict[str, Any]) -> AutoencoderEncoder:
    return autoencoder.encoder_from_state({**state, "kind": KIND})
