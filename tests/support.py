"""Shared test helpers: a tiny grid on the synthetic symbol and settings sized for tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from forex_pipeline.settings import DEFAULT_SETTINGS_FILE

TINY_GRID = {
    "name": "tiny",
    "feature_sets": {
        "symbols": ["SYNTH"],
        "base_timeframes": ["1h"],
        "days_history": [150],
        "as_of": "2021-01-05T00:00:00Z",
        "indicator_timeframes": [{"rsi": ["1h"], "atr": ["1h"]}],
        "additional_features": [["returns_volatility"]],
        "preprocessing": [{"warmup_bars": 100}],
    },
    "model_specs": {
        "model_types": ["ridge", "elasticnet"],
        "encoders": ["none"],
        "horizons": [1, 3, 6],
        "hyperparameters": {"ridge": [{"alpha": 1.0}], "elasticnet": [{"alpha": 0.001, "l1_ratio": 0.5}]},
    },
}


def write_test_settings(path: Path, **overrides: dict) -> Path:
    """The project's settings with small, fast values (and `overrides` per section) written to `path`."""
    raw = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
    raw["training"]["members"] = 2
    raw["queue"]["models_per_run"] = 2
    raw["queue"]["min_free_disk_gb"] = 0.0
    raw["file_management"]["keep_top_n_per_regime"] = 1
    raw["regimes"]["min_trades"] = 3
    raw["recovery"]["heartbeat_seconds"] = 1
    for section, values in overrides.items():
        raw[section].update(values)
    path.write_text(yaml.safe_dump(raw))
    return path


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, every: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)
