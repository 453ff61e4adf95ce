"""Inputs and targets of the neural families: context windows, scaling, return paths, segments.

Input of row t: the last `context_length` rows (t - L + 1 .. t) of the (optionally encoded) features,
standardised with statistics of the training rows, plus one channel with the scaled 1-bar log return
of each of those bars (known at its close). Rows before the first bar are zeros (the training mean),
so every row has a prediction and nothing after t is ever read.

Targets of row t: the future return path r[t+1 .. t+h] summarised as `P = min(h, path_points)`
consecutive chunks (chunk j = log close[t + b_{j+1}] - log close[t + b_j]); for h <= path_points a
chunk is exactly one bar. Each chunk is divided by sigma * sqrt(chunk length), sigma being the
training 1-bar return std, so the network sees unit-scale numbers whatever the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models.spec import ModelSpec


def one_bar_returns(close: np.ndarray) -> np.ndarray:
    """r[t] = log(close[t] / close[t-1]), r[0] = 0: the return of bar t, known at its close."""
    log_close = np.log(np.asarray(close, dtype=np.float64))
    out = np.zeros_like(log_close)
    out[1:] = np.diff(log_close)
    return out


def chunk_bounds(horizon: int, points: int) -> np.ndarray:
    """Boundaries 0 = b_0 < ... < b_P = horizon of P = min(horizon, points) near-equal chunks."""
    n = min(int(horizon), int(points))
    bounds = np.round(np.linspace(0, horizon, n + 1)).astype(np.int64)
    return np.unique(bounds)


def chunk_returns(log_close: np.ndarray, rows: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """(len(rows), P) log returns of each chunk of the future path after each row."""
    idx = np.asarray(rows, dtype=np.int64)[:, None] + bounds[None, :]
    if idx.max(initial=0) >= len(log_close):
        raise ValueError(f"chunk_returns: row {int(idx.max())} lies beyond the matrix ({len(log_close)} rows)")
    levels = log_close[idx]
    return np.diff(levels, axis=1)


def sub_interval_groups(bounds: np.ndarray, steps: int) -> np.ndarray:
    """Chunk-index boundaries of at most `steps` sub-intervals that together cover the path."""
    n_chunks = len(bounds) - 1
    return np.unique(np.round(np.linspace(0, n_chunks, min(steps, n_chunks) + 1)).astype(np.int64))


@dataclass(frozen=True)
class InputPipeline:
    """Encoder (optional), standardiser and return scale fitted on the training rows of one model."""

    context_length: int
    mean: np.ndarray
    scale: np.ndarray
    sigma: float
    encoder: Any = None          # an Encoder (models.encoders) or None

    @property
    def n_channels(self) -> int:
        return len(self.mean) + 1

    def features(self, matrix: FeatureMatrix, lo: int, hi: int) -> np.ndarray:
        """(hi - lo, F + 1) float32 scaled features and scaled 1-bar return of rows lo..hi-1."""
        X = matrix.X[lo:hi]
        if self.encoder is not None:
            X = self.encoder.transform(X)
        Z = (np.asarray(X, dtype=np.float64) - self.mean) / self.scale
        start = max(lo - 1, 0)
        r = one_bar_returns(matrix.close[start:hi])
        r = r[lo - start:]
        return np.column_stack([Z, r / self.sigma]).astype(np.float32)

    def padded(self, matrix: FeatureMatrix, rows: np.ndarray) -> tuple[np.ndarray, int]:
        """Feature rows needed by `rows`' windows, front-padded with L-1 zero rows, and their offset.

        The window of row t is padded[t - offset : t - offset + L]."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            raise ValueError("no rows to predict")
        if rows.min() < 0 or rows.max() >= matrix.n_rows:
            raise ValueError(f"rows must lie in [0, {matrix.n_rows}); got {rows.min()}..{rows.max()}")
        L = self.context_length
        lo = max(int(rows.min()) - L + 1, 0)
        hi = int(rows.max()) + 1
        block = self.features(matrix, lo, hi)
        pad = np.zeros((L - 1, block.shape[1]), dtype=np.float32)
        return np.concatenate([pad, block]), lo

    def state(self) -> dict[str, Any]:
        return {
            "context_length": int(self.context_length),
            "mean": self.mean,
            "scale": self.scale,
            "sigma": float(self.sigma),
            "encoder": None if self.encoder is None else self.encoder.to_state(),
        }


def pipeline_from_state(state: dict[str, Any]) -> InputPipeline:
    """Rebuild an InputPipeline from `InputPipeline.state()` (numpy arrays and plain values)."""
    encoder = None
    if state.get("encoder") is not None:
        from forex_pipeline.models.encoders import encoder_from_state

        encoder = encoder_from_state(state["encoder"])
    return InputPipeline(
        context_length=int(state["context_length"]),
        mean=np.asarray(state["mean"], dtype=np.float64),
        scale=np.asarray(state["scale"], dtype=np.float64),
        sigma=float(state["sigma"]),
        encoder=encoder,
    )


@dataclass(frozen=True)
class Segments:
    """Training and validation rows of one model (targets defined, embargoed from each other)."""

    train: np.ndarray
    validation: np.ndarray


def model_segments(matrix: FeatureMatrix, spec: ModelSpec, settings: Any) -> Segments:
    """The chronological train/validation rows of features.splits, keeping rows whose target exists."""
    from forex_pipeline.features.splits import split_rows

    splits = split_rows(
        matrix.n_rows, spec.horizon, settings.training.train_fraction, settings.training.validation_fraction
    )
    limit = matrix.n_rows - spec.horizon
    train = np.asarray(splits.train, dtype=np.int64)
    validation = np.asarray(splits.validation, dtype=np.int64)
    return Segments(train=train[train < limit], validation=validation[validation < limit])


def horizon_target(matrix: FeatureMatrix, horizon: int, rows: np.ndarray) -> np.ndarray:
    """Forward log return over `horizon` bars at `rows` (features.targets)."""
    from forex_pipeline.features.targets import forward_log_return

    return np.asarray(forward_log_return(matrix.close, horizon), dtype=np.float64)[rows]


def fit_pipeline(matrix: FeatureMatrix, spec: ModelSpec, train_rows: np.ndarray, context_length: int,
                 *, seed: int, context: Any) -> InputPipeline:
    """Fit the encoder (if any), the standardiser and the return scale on the training rows only."""
    encoder = None
    X_train = matrix.X[train_rows]
    if spec.encoder != "none":
        from forex_pipeline.models.encoders import fit_encoder

        encoder = fit_encoder(
            spec.encoder, X_train, spec.encoder_dim,
            seed=seed, context=context, feature_set_hash=matrix.feature_set_hash,
        )
        X_train = encoder.transform(X_train)
    X_train = np.asarray(X_train, dtype=np.float64)
    mean = X_train.mean(axis=0)
    scale = X_train.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    returns = one_bar_returns(matrix.close)[train_rows[train_rows > 0]]
    sigma = float(np.std(returns))
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError("close: the training segment has no price movement (1-bar return std is 0)")
    return InputPipeline(context_length, mean, scale, sigma, encoder)
