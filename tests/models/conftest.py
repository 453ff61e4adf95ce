"""Fixtures of the model tests: real EUR/USD 1h bars (2019 H1) and a small causal FeatureMatrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.settings import Settings, parse_settings

AR_LAGS = 5


@pytest.fixture(scope="session")
def eurusd_1h(fx_dir: Path) -> pd.DataFrame:
    """EUR/USD 1h bars for the first half of 2019, through the project's loader and resampler."""
    from forex_pipeline.data.loaders import load_bars
    from forex_pipeline.data.resample import resample_bars

    bars = resample_bars(load_bars(fx_dir / "EURUSD_M1.csv.gz").bars, "1h")
    return bars.loc["2019-01-01":"2019-06-30"]


def simple_matrix(bars: pd.DataFrame, feature_set_hash: str = "eurusd-1h-test") -> FeatureMatrix:
    """Causal features known at each bar's close: ret_lag_1..5, 24-bar volatility and SMA distance, range, hour."""
    close = bars["close"].to_numpy(dtype=np.float64)
    returns = np.diff(np.log(close), prepend=np.nan)
    frame = pd.DataFrame(index=bars.index)
    for lag in range(1, AR_LAGS + 1):
        frame[f"ret_lag_{lag}"] = pd.Series(returns, index=bars.index).shift(lag - 1)
    frame["vol_24"] = pd.Series(returns, index=bars.index).rolling(24).std()
    frame["sma_dist_24"] = bars["close"] / bars["close"].rolling(24).mean() - 1.0
    frame["range"] = (bars["high"] - bars["low"]) / bars["close"]
    hours = bars.index.hour.to_numpy()
    frame["hour_sin"] = np.sin(2 * np.pi * hours / 24)
    frame["hour_cos"] = np.cos(2 * np.pi * hours / 24)
    frame = frame.dropna()
    return FeatureMatrix(
        feature_set_hash=feature_set_hash,
        timestamps=pd.DatetimeIndex(frame.index),
        X=np.ascontiguousarray(frame.to_numpy(dtype=np.float64)),
        feature_names=tuple(frame.columns),
        close=bars["close"].loc[frame.index].to_numpy(dtype=np.float64),
        base_timeframe="1h",
        symbol="EURUSD",
    )


@pytest.fixture(scope="session")
def eurusd_matrix(eurusd_1h: pd.DataFrame) -> FeatureMatrix:
    return simple_matrix(eurusd_1h)


def small_settings(members: int = 2, **training: object) -> Settings:
    """Default settings with few members (tests stay fast)."""
    return parse_settings({"training": {"members": members, **training}})
