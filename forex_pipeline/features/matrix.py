"""The feature matrix of one feature set: what models train on and backtests run over.

Row t holds features known at the CLOSE of base bar t (timestamp t + base_timeframe), never later.
`close` is that bar's close, from which targets for any horizon and the simulator's returns are derived.
Features are stored unscaled; scaling is fitted on a model's training segment (features.preprocessing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

AR_LAG_PREFIX = "ret_lag_"


@dataclass(frozen=True)
class FeatureMatrix:
    feature_set_hash: str
    timestamps: pd.DatetimeIndex          # base-bar open times, UTC, strictly increasing
    X: np.ndarray                         # (n_rows, n_features) float64, unscaled, no NaN
    feature_names: tuple[str, ...]
    close: np.ndarray                     # (n_rows,) close of each base bar
    base_timeframe: str
    symbol: str
    metadata: dict[str, Any] = field(default_factory=dict)   # coverage, dropped features, ...

    def __post_init__(self) -> None:
        n = len(self.timestamps)
        if self.X.shape != (n, len(self.feature_names)):
            raise ValueError(f"feature matrix X has shape {self.X.shape}, expected ({n}, {len(self.feature_names)})")
        if self.close.shape != (n,):
            raise ValueError(f"feature matrix close has shape {self.close.shape}, expected ({n},)")

    @property
    def n_rows(self) -> int:
        return len(self.timestamps)

    @property
    def ar_lag_columns(self) -> tuple[int, ...]:
        """Column positions of ret_lag_1..ret_lag_L (1-bar log returns, lag 1 first): the recursive
        prediction method rolls these forward with its own one-step forecasts."""
        lags = sorted(
            (int(name[len(AR_LAG_PREFIX):]), i)
            for i, name in enumerate(self.feature_names)
            if name.startswith(AR_LAG_PREFIX)
        )
        return tuple(i for _, i in lags)
