"""How much a perfect-hindsight direction oracle earns per regime: a ceiling for credible scores.

For bars with ground-truth regime labels (data/synthetic.py), the oracle holds, at the close of bar
t, one unit in the direction the generator moves the price in bar t's regime: +1 in bull_trending,
-1 in bear_trending, and in the ranging regimes towards the segment's anchor (the generator's
Ornstein-Uhlenbeck level: the close just before the segment began), i.e. sign(anchor - log close_t).
Its per-bar return is position_t x log(close[t+1] / close[t]) (no costs: a property of the data,
not of a strategy), and its annualised Sharpe per regime is what no model can beat on average.
Issue 10, item 9: a credible demo keeps this at about 5 or less at 1h; real EUR/USD bests that
survive a multiple-testing correction are rarer still.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from forex_pipeline.backtest.metrics import sharpe
from forex_pipeline.data.timeframes import bars_per_year

TREND_DIRECTION: Mapping[str, int] = {"bull_trending": 1, "bear_trending": -1}


def oracle_positions(close: np.ndarray, truth: np.ndarray, trend_direction: Mapping[str, int] = TREND_DIRECTION) -> np.ndarray:
    """+1 / -1 per trending bar by `trend_direction`, towards the segment's starting level otherwise."""
    close = np.asarray(close, dtype=np.float64)
    truth = np.asarray(truth, dtype=object)
    if close.shape != truth.shape or close.ndim != 1 or close.size < 2:
        raise ValueError(f"close {close.shape} and truth {truth.shape} must be equal 1-d shapes of >= 2 bars")
    log_close = np.log(close)
    starts = np.flatnonzero(np.concatenate([[True], truth[1:] != truth[:-1]]))
    segment = np.searchsorted(starts, np.arange(close.size), side="right") - 1
    anchor = log_close[np.maximum(starts - 1, 0)][segment]
    pull = np.sign(anchor - log_close)
    direction = np.array([trend_direction.get(label, 0) for label in truth], dtype=np.float64)
    trending = np.array([label in trend_direction for label in truth])
    return np.where(trending, direction, pull)


def direction_oracle_sharpe(
    close: np.ndarray, truth: np.ndarray, timeframe: str, trend_direction: Mapping[str, int] = TREND_DIRECTION
) -> dict[str, float]:
    """Annualised Sharpe of the direction oracle per true regime (bars labelled None are skipped)."""
    close = np.asarray(close, dtype=np.float64)
    truth = np.asarray(truth, dtype=object)
    known = np.array([t is not None for t in truth])
    positions = oracle_positions(close[known], truth[known], trend_direction)
    returns = positions[:-1] * np.diff(np.log(close[known]))
    labels = truth[known][:-1]
    year = bars_per_year(timeframe)
    return {str(name): sharpe(returns[labels == name], year) for name in sorted(set(labels))}
