"""The inference grid: every (prediction method, ensemble method, threshold, lookback) of one model.

Inference configurations never trigger training: they only change how a trained model's member
forecasts become trades. Configurations sharing (method, ensemble, lookback) share one
(forecast, confidence) series; the threshold alone only filters it, which the simulator exploits.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Any

from forex_pipeline.hashing import config_hash
from forex_pipeline.models.base import ENSEMBLE_METHODS, PREDICTION_METHODS
from forex_pipeline.settings import InferenceGridSettings


@dataclass(frozen=True, order=True)
class InferenceConfig:
    """One inference configuration; `hash` is the canonical sha256 stored with every backtest row."""

    prediction_method: str
    ensemble_method: str
    confidence_threshold: float
    lookback_window: int

    def __post_init__(self) -> None:
        if self.prediction_method not in PREDICTION_METHODS:
            raise ValueError(f"prediction_method {self.prediction_method!r} is unknown; known: {PREDICTION_METHODS}")
        if self.ensemble_method not in ENSEMBLE_METHODS:
            raise ValueError(f"ensemble_method {self.ensemble_method!r} is unknown; known: {ENSEMBLE_METHODS}")
        if not 0.0 <= float(self.confidence_threshold) <= 1.0:
            raise ValueError(f"confidence_threshold {self.confidence_threshold} must lie in [0, 1]")
        if int(self.lookback_window) != self.lookback_window or self.lookback_window < 2:
            raise ValueError(f"lookback_window {self.lookback_window} must be an integer >= 2")
        object.__setattr__(self, "confidence_threshold", float(self.confidence_threshold))
        object.__setattr__(self, "lookback_window", int(self.lookback_window))

    def canonical(self) -> dict[str, Any]:
        return {
            "prediction_method": self.prediction_method,
            "ensemble_method": self.ensemble_method,
            "confidence_threshold": self.confidence_threshold,
            "lookback_window": self.lookback_window,
        }

    @property
    def hash(self) -> str:
        return config_hash(self.canonical())

    @property
    def series_key(self) -> tuple[str, str, int]:
        """The (forecast, confidence) series this configuration thresholds."""
        return (self.prediction_method, self.ensemble_method, self.lookback_window)


def inference_configs(grid: InferenceGridSettings) -> list[InferenceConfig]:
    """All configurations of the grid, ordered method, ensemble, lookback, threshold (series-major)."""
    return [
        InferenceConfig(method, ensemble, threshold, lookback)
        for method, ensemble, lookback, threshold in product(
            grid.prediction_methods, grid.ensemble_methods, grid.lookback_windows, grid.confidence_thresholds
        )
    ]


def series_keys(configs: list[InferenceConfig]) -> list[tuple[str, str, int]]:
    """Distinct series keys in first-seen order (27 for the default grid)."""
    return list(dict.fromkeys(c.series_key for c in configs))
