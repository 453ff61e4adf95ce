"""Fixtures for the market data tests: the real EURUSD M1 bars, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from forex_pipeline.data.loaders import load_bars


@pytest.fixture(scope="session")
def eurusd_m1_path(fx_dir: Path) -> Path:
    return fx_dir / "EURUSD_M1.csv.gz"


@pytest.fixture(scope="session")
def eurusd_m1(eurusd_m1_path: Path) -> pd.DataFrame:
    """The real EURUSD M1 bar frame (745,077 rows)."""
    return load_bars(eurusd_m1_path).bars
