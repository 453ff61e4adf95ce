"""Timeframe names and their lengths. A bar of timeframe T opened at t is known only at t + T."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:   # pandas loads when a delta is asked for: spec validation (and the CLI) never need it
    import pandas as pd

TIMEFRAME_MINUTES: dict[str, int] = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440}
TIMEFRAMES: tuple[str, ...] = tuple(TIMEFRAME_MINUTES)
# FX trades about 260 days a year around the clock; used to annualise Sharpe and Sortino.
TRADING_DAYS_PER_YEAR = 260


def validate_timeframe(timeframe: str, field: str = "timeframe") -> str:
    if timeframe not in TIMEFRAME_MINUTES:
        raise ValueError(f"{field} {timeframe!r} is not a timeframe; known: {', '.join(TIMEFRAMES)}")
    return timeframe


def timeframe_minutes(timeframe: str) -> int:
    return TIMEFRAME_MINUTES[validate_timeframe(timeframe)]


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    import pandas as pd

    return pd.Timedelta(minutes=timeframe_minutes(timeframe))


def bars_per_year(timeframe: str) -> float:
    """Bars in a trading year for `timeframe` (daily bars: one per trading day)."""
    return TRADING_DAYS_PER_YEAR * 1440 / timeframe_minutes(timeframe)


def rows_per_day(timeframe: str) -> float:
    """Base bars per calendar day of an FX market open ~260 of 365 days, around the clock (an upper bound)."""
    return 1440 / TIMEFRAME_MINUTES[timeframe] * TRADING_DAYS_PER_YEAR / 365
