"""Targets: forward log returns over a horizon, and over the sub-intervals of `direct_multi`."""

from __future__ import annotations

import numpy as np


def _positive_prices(close: np.ndarray) -> np.ndarray:
    close = np.asarray(close, dtype=np.float64)
    if close.ndim != 1:
        raise ValueError(f"close must be 1-D, got shape {close.shape}")
    if not (np.isfinite(close) & (close > 0)).all():
        raise ValueError("close must be finite and positive to take log returns")
    return close


def interval_log_return(close: np.ndarray, start: int, end: int) -> np.ndarray:
    """log(close[t+end] / close[t+start]) per row t; NaN where t+end is past the last row."""
    if not 0 <= start < end:
        raise ValueError(f"interval (start={start}, end={end}) must satisfy 0 <= start < end")
    close = _positive_prices(close)
    n = len(close)
    out = np.full(n, np.nan)
    if end < n:
        out[: n - end] = np.log(close[end:] / close[start: n - end + start])
    return out


def forward_log_return(close: np.ndarray, horizon: int) -> np.ndarray:
    """The target: log(close[t+horizon] / close[t]); NaN for the last `horizon` rows."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    return interval_log_return(close, 0, horizon)


def direct_multi_intervals(horizon: int, max_steps: int) -> list[tuple[int, int]]:
    """[0, horizon] split into min(horizon, max_steps) consecutive, near-equal (start, end) intervals."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if max_steps < 1:
        raise ValueError(f"training.direct_multi_steps must be >= 1, got {max_steps}")
    steps = min(horizon, max_steps)
    bounds = [round(i * horizon / steps) for i in range(steps + 1)]
    return list(zip(bounds[:-1], bounds[1:]))
