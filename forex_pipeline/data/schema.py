"""The bar frame every module exchanges.

A bar frame is a pandas DataFrame indexed by a tz-aware UTC DatetimeIndex named `timestamp` (the bar
OPEN time), strictly increasing, with float64 columns open, high, low, close, volume. Gaps are left
as gaps: no forward-filled bars.
"""

from __future__ import annotations

import pandas as pd

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
BAR_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")
INDEX_NAME = "timestamp"


def assert_bar_frame(bars: pd.DataFrame, name: str = "bars") -> None:
    """Raise ValueError naming `name` if `bars` breaks the bar-frame contract."""
    if list(bars.columns) != list(BAR_COLUMNS):
        raise ValueError(f"{name}: columns must be {list(BAR_COLUMNS)}, got {list(bars.columns)}")
    index = bars.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None or str(index.tz) != "UTC":
        raise ValueError(f"{name}: index must be a UTC DatetimeIndex")
    if index.name != INDEX_NAME:
        raise ValueError(f"{name}: index must be named {INDEX_NAME!r}, got {index.name!r}")
    if len(index) > 1 and not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError(f"{name}: timestamps must be strictly increasing")
