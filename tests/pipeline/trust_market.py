"""Imported hourly bars for the trust tests of the real pipeline: a random walk, or a random walk with a
planted, learnable edge (next-bar momentum) on the bars of one regime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forex_pipeline.data.bar_store import import_path, write_bars
from forex_pipeline.regimes.labels import label_regimes
from forex_pipeline.settings import Settings

SYMBOL = "EURUSD"
DAYS = 200
START = pd.Timestamp("2021-01-04", tz="UTC")
AS_OF = START + pd.Timedelta(days=DAYS)
SIGMA = 2e-3


def _bars(log_close: np.ndarray) -> pd.DataFrame:
    close = 1.1 * np.exp(log_close)
    open_ = np.concatenate([[close[0]], close[:-1]])
    stamps = pd.date_range(START, periods=close.size, freq="h", tz="UTC", name="timestamp")
    spread = close * 2e-4
    return pd.DataFrame(
        {"open": open_, "high": np.maximum(open_, close) + spread, "low": np.minimum(open_, close) - spread,
         "close": close, "volume": np.zeros(close.size)},
        index=stamps,
    )


def market(seed: int, settings: Settings, edge: float = 0.0, edge_regime: str = "volatile_ranging") -> tuple[pd.DataFrame, np.ndarray]:
    """(bars, regime labels of the final closes). With an edge, the return after a bar labelled
    `edge_regime` (on the plain random walk) repeats `edge` x that bar's return: a momentum a ridge on
    ret_lag_1 learns, present only in that regime."""
    rng = np.random.default_rng(seed)
    n = DAYS * 24
    eps = SIGMA * rng.standard_normal(n)
    base = np.concatenate([[0.0], np.cumsum(eps[1:])])
    stamps = pd.date_range(START, periods=n, freq="h", tz="UTC", name="timestamp")
    labels = label_regimes(1.1 * np.exp(base), settings.regimes, timeframe="1h", timestamps=stamps)
    returns = eps.copy()
    if edge:
        for t in range(1, n - 1):
            if labels[t] == edge_regime:
                returns[t + 1] = eps[t + 1] + edge * returns[t]
    bars = _bars(np.concatenate([[0.0], np.cumsum(returns[1:])]))
    return bars, np.asarray(label_regimes(bars["close"].to_numpy(), settings.regimes, timeframe="1h", timestamps=bars.index))


def import_market(artifacts_dir: Path, bars: pd.DataFrame) -> Path:
    return write_bars(bars, import_path(artifacts_dir, SYMBOL))


def grid(name: str, alphas: tuple[float, ...] = (1.0, 100.0)) -> dict:
    return {
        "name": name,
        "feature_sets": {
            "symbols": [SYMBOL],
            "base_timeframes": ["1h"],
            "days_history": [DAYS - 2],
            "as_of": AS_OF.isoformat(),
            "indicator_timeframes": [{"rsi": ["1h"]}],
            "additional_features": [[]],
            "preprocessing": [{"warmup_bars": 50}],
        },
        "model_specs": {
            "model_types": ["ridge"],
            "encoders": ["none"],
            "horizons": [1],
            "hyperparameters": {"ridge": [{"alpha": a} for a in alphas]},
        },
    }
