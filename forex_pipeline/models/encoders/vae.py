"""The `vae` encoder: a small variational autoencoder fitted per model, applied in plain numpy.

Same architecture, standardisation, budget and per-model scope as `autoencoder`, with a Gaussian
latent: the encoder outputs a mean and a log-variance, training samples the latent by
reparameterisation and minimises reconstruction error plus the KL divergence to N(0, I) (both per
feature). At inference the latent is the posterior mean, so `transform` is deterministic and runs in
numpy from the exported weights without importing torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from forex_pipeline.models.encoders.autoencoder import (
    AutoencoderEncoder,
    standardisation,
    train_weights,
)
from forex_pipeline.models.encoders.autoencoder import (
    encoder_from_state as _autoencoder_from_state,
)

KIND = "vae"


def fit(X_train: np.ndarray, dim: int, *, seed: int, context: Any, feature_set_hash: str) -> AutoencoderEncoder:
    """Standardise the training rows, fit the VAE on them, return the numpy posterior-mean encoder."""
    center, scale = standardisation(X_train, KIND)
    Z = (np.asarray(X_train, dtype=np.float64) - center) / scale
    weights = train_weights(Z, int(dim), seed=seed, context=context, variational=True, kind=KIND)
    return AutoencoderEncoder(center=center, scale=scale, **weights, kind=KIND)


def encoder_from_state(state: dict[str, Any]) -> AutoencoderEncoder:
    return _autoencoder_from_state({**state, "kind": KIND})
