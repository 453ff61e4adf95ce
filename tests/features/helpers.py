"""Synthetic bar frames for the feature tests (random walks on a regular grid, Saturdays left out)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forex_pipeline.data.timeframes import timeframe_delta


def random_bars(
    n: int,
    timeframe: str = "1h",
    seed: int = 0,
    start: str = "2024-03-01 00:00",
    volume: bool = True,
    skip_saturdays: bool = True,
) -> pd.DataFrame:
    """`n` random-walk OHLCV bars of `timeframe` (a valid bar frame); volume zero when `volume` is False."""
    step = timeframe_delta(timeframe)
    grid = pd.date_range(start, periods=int(n * 1.3) + 10, freq=step, tz="UTC", name="timestamp")
    if skip_saturdays:
        grid = grid[grid.day_of_week != 5]
    index = grid[:n]
    return bars_from_walk(np.random.default_rng(seed), index, volume)


def bars_from_walk(rng: np.random.Generator, index: pd.DatetimeIndex, volume: bool = True, start_price: float = 1.1) -> pd.DataFrame:
    """OHLCV bars along a random walk starting at `start_price`, one per timestamp of `index`."""
    n = len(index)
    close = start_price * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[start_price], close[:-1]]) * np.exp(rng.normal(0, 0.0003, n))
    wick = np.abs(rng.normal(0, 0.001, (2, n)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    vol = rng.gamma(2.0, 50.0, n) if volume else np.zeros(n)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": vol}, index=index)


def perturb_after(bars: pd.DataFrame, cut: int, seed: int) -> pd.DataFrame:
    """A copy of `bars` whose rows after position `cut` are replaced by an unrelated random walk."""
    rng = np.random.default_rng(seed)
    tail_index = bars.index[cut + 1:]
    if len(tail_index) == 0:
        return bars.copy()
    start_price = float(bars["close"].iloc[cut]) * float(np.exp(rng.normal(0, 0.05)))
    tail = bars_from_walk(rng, tail_index, volume=True, start_price=start_price)
    tail["volume"] = tail["volume"] * rng.uniform(0.1, 10.0)
    return pd.concat([bars.iloc[: cut + 1], tail])


def assert_prefix_equal(before: pd.DataFrame, after: pd.DataFrame, cut: int, exact: bool = True) -> None:
    """Rows 0..cut of two feature frames are identical (NaN equal to NaN), column by column."""
    assert list(before.columns) == list(after.columns)
    a = before.iloc[: cut + 1].to_numpy(dtype=np.float64)
    b = after.iloc[: cut + 1].to_numpy(dtype=np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if not exact:
        same |= np.isclose(a, b, rtol=1e-9, atol=1e-12)
    if not same.all():
        rows, cols = np.nonzero(~same)
        bad = sorted({before.columns[c] for c in cols})
        raise AssertionError(f"features changed at rows <= {cut} (first row {rows.min()}): {bad}")
