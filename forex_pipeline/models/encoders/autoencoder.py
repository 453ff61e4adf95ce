"""The `autoencoder` encoder: a small PyTorch autoencoder fitted per model, applied in plain numpy.

Fitted inside each model's training on that model's training rows (so two model specs on one feature
set fit two autoencoders; `latents` is the shared, once-per-feature-set variant). Columns are first
standardised with training-row statistics, which makes the encoder indifferent to whether its caller
passes raw features (neural families) or already scaled ones (classical families).

Network: standardised features -> tanh hidden layer (min(256, max(32, 4 x dim)) units) -> `dim`
linear latents -> tanh hidden -> reconstruction; Adam on reconstruction MSE, early stopping on the last
10% of the training rows, at most `training.neural.max_epochs` epochs and
ENCODER_BUDGET_SHARE x `training.neural.max_seconds` seconds (a graceful stop at the budget).

Inference: `to_state()` exports the encoder half as numpy arrays, and `transform` runs it in numpy,
so loading a model and encoding features never imports torch. torch is imported only inside `fit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

KIND = "autoencoder"
ENCODER_BUDGET_SHARE = 0.2
VALIDATION_SHARE = 0.1
PATIENCE = 5
MIN_ROWS = 20
TRAINING_RUNS = 0      # torch fits performed in this process (the latents cache test reads it)
STATE_ARRAYS = ("center", "scale", "w0", "b0", "w1", "b1")


@dataclass(frozen=True)
class AutoencoderEncoder:
    """latent = tanh(((X - center) / scale) @ w0.T + b0) @ w1.T + b1, all numpy."""

    center: np.ndarray
    scale: np.ndarray
    w0: np.ndarray
    b0: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    kind: str = KIND

    @property
    def dim(self) -> int:
        return int(self.w1.shape[0])

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.center.shape[0]:
            raise ValueError(f"encoder {self.kind} was fitted on {self.center.shape[0]} columns, got shape {X.shape}")
        hidden = np.tanh(((X - self.center) / self.scale) @ self.w0.T + self.b0)
        return hidden @ self.w1.T + self.b1

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, **{name: getattr(self, name).copy() for name in STATE_ARRAYS}}


def encoder_from_state(state: dict[str, Any]) -> AutoencoderEncoder:
    """Rebuild the numpy encoder from `to_state()`; a clear error naming a missing or malformed array."""
    missing = [name for name in STATE_ARRAYS if name not in state]
    if missing:
        raise ValueError(f"encoder {state.get('kind', KIND)!r} state lacks {missing}")
    arrays = {name: np.asarray(state[name], dtype=np.float64) for name in STATE_ARRAYS}
    if arrays["w0"].shape[1] != arrays["center"].shape[0] or arrays["w1"].shape[1] != arrays["w0"].shape[0]:
        raise ValueError(f"encoder {state.get('kind', KIND)!r} state has inconsistent weight shapes")
    return AutoencoderEncoder(**arrays, kind=str(state.get("kind", KIND)))


def standardisation(X_train: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Training column means and standard deviations (1 where a column is constant)."""
    X_train = np.asarray(X_train, dtype=np.float64)
    if X_train.ndim != 2 or X_train.shape[0] < MIN_ROWS or X_train.shape[1] < 1:
        raise ValueError(f"encoder {kind} needs at least {MIN_ROWS} training rows and 1 column, got shape {X_train.shape}")
    if not np.isfinite(X_train).all():
        raise ValueError(f"encoder {kind}: the training rows hold NaN or inf")
    center = X_train.mean(axis=0)
    scale = X_train.std(axis=0)
    return center, np.where(scale > 1e-12 * np.maximum(np.abs(center), 1.0), scale, 1.0)


def hidden_width(dim: int) -> int:
    return int(min(256, max(32, 4 * dim)))


def _settings(context: Any) -> Any:
    if context is not None and getattr(context, "settings", None) is not None:
        return context.settings
    from forex_pipeline.settings import get_settings

    return get_settings()


def train_weights(Z: np.ndarray, dim: int, *, seed: int, context: Any, variational: bool,
                  kind: str) -> dict[str, np.ndarray]:
    """Fit an (variational) autoencoder on standardised rows `Z`; return the encoder half as numpy."""
    import time

    import torch
    from torch import nn

    from forex_pipeline.models.torch_training import cpu_threads, deterministic, fit_network

    global TRAINING_RUNS
    if dim < 1:
        raise ValueError(f"model_spec.encoder_dim must be >= 1 for {kind}, got {dim}")
    settings = _settings(context)
    neural = settings.training.neural
    n_features, hidden = Z.shape[1], hidden_width(dim)
    split = len(Z) - max(int(len(Z) * VALIDATION_SHARE), 2)
    train_t = (torch.from_numpy(Z[:split].astype(np.float32)),)
    val_t = (torch.from_numpy(Z[split:].astype(np.float32)),)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Linear(n_features, hidden)
            self.latent = nn.Linear(hidden, dim)
            self.log_var = nn.Linear(hidden, dim) if variational else None
            self.decoder = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, n_features))

    def loss(net: nn.Module, batch: tuple[torch.Tensor, ...], generator: torch.Generator) -> torch.Tensor:
        (x,) = batch
        h = torch.tanh(net.encoder(x))
        mu = net.latent(h)
        if not variational:
            return ((net.decoder(mu) - x) ** 2).mean()
        log_var = net.log_var(h).clamp(-10, 10)
        z = mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=generator)
        recon = ((net.decoder(z) - x) ** 2).sum(dim=1)
        kl = -0.5 * (1 + log_var - mu**2 - log_var.exp()).sum(dim=1)
        return (recon + kl).mean() / n_features

    with cpu_threads(neural.cpu_threads), deterministic(seed):
        net = Net()
        fit_network(
            net, loss, train_t, val_t, max_epochs=neural.max_epochs, batch_size=neural.batch_size,
            learning_rate=1e-3, weight_decay=0.0, patience=PATIENCE,
            deadline=time.monotonic() + ENCODER_BUDGET_SHARE * neural.max_seconds, seed=seed,
            name=f"encoder {kind}",
        )
    TRAINING_RUNS += 1
    return {
        "w0": net.encoder.weight.detach().double().numpy().copy(),
        "b0": net.encoder.bias.detach().double().numpy().copy(),
        "w1": net.latent.weight.detach().double().numpy().copy(),
        "b1": net.latent.bias.detach().double().numpy().copy(),
    }


def fit(X_train: np.ndarray, dim: int, *, seed: int, context: Any, feature_set_hash: str) -> AutoencoderEncoder:
    """Standardise the training rows, fit the autoencoder on them, return its numpy encoder."""
    center, scale = standardisation(X_train, KIND)
    Z = (np.asarray(X_train, dtype=np.float64) - center) / scale
    weights = train_weights(Z, int(dim), seed=seed, context=context, variational=False, kind=KIND)
    return AutoencoderEncoder(center=center, scale=scale, **weights)
