"""Encoders: map scaled feature rows to the representation a model family trains on.

`fit_encoder(kind, ...)` dispatches lazily to one module per kind: none and pca here, autoencoder,
vae and latents in their own modules (imported only when asked for, so torch stays unloaded for the
classical families). Every encoder module exposes

    fit(X_train, dim, *, seed, context, feature_set_hash) -> Encoder
    encoder_from_state(state: dict) -> Encoder

An `Encoder` has `transform(X) -> np.ndarray` and `to_state() -> dict` holding numpy arrays and plain
scalars/strings only, with `state["kind"]` naming the module; model files store that state, never a
pickled encoder object. Encoders are fitted on training rows only.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from forex_pipeline.models.lazy_import import import_listed

ENCODER_MODULES: dict[str, str] = {
    "none": "forex_pipeline.models.encoders.identity",
    "pca": "forex_pipeline.models.encoders.pca",
    "autoencoder": "forex_pipeline.models.encoders.autoencoder",
    "vae": "forex_pipeline.models.encoders.vae",
    "latents": "forex_pipeline.models.encoders.latents",
}


class EncoderError(ValueError):
    """An encoder kind is unknown or its module is unavailable, or an encoder state is malformed."""


@runtime_checkable
class Encoder(Protocol):
    kind: str

    def transform(self, X: np.ndarray) -> np.ndarray: ...

    def to_state(self) -> dict[str, Any]: ...


def encoder_module(kind: str) -> ModuleType:
    """Import the module that implements encoder `kind`; a clear error naming the encoder otherwise."""
    return import_listed(ENCODER_MODULES, kind, "encoder", EncoderError)


def fit_encoder(kind: str, X_train: np.ndarray, dim: int, *, seed: int, context: Any, feature_set_hash: str) -> Encoder:
    """Fit encoder `kind` with latent size `dim` on the (scaled) training rows only."""
    module = encoder_module(kind)
    return module.fit(np.asarray(X_train, dtype=np.float64), dim, seed=seed, context=context, feature_set_hash=feature_set_hash)


def encoder_from_state(state: dict[str, Any]) -> Encoder:
    """Rebuild an encoder from the state `to_state()` returned."""
    if not isinstance(state, dict) or "kind" not in state:
        raise EncoderError("encoder state must be a dict with a 'kind' entry")
    return encoder_module(str(state["kind"])).encoder_from_state(state)
