"""Issue 10, item 9: the direction oracle's Sharpe per regime on the synthetic generator at 1h."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from forex_pipeline.backtest.oracle import direction_oracle_sharpe, oracle_positions
from forex_pipeline.data.resample import resample_bars
from forex_pipeline.data.synthetic import generate_synthetic_bars
from forex_pipeline.data.timeframes import bars_per_year
from forex_pipeline.regimes.labels import majority_labels


@functools.lru_cache(maxsize=4)
def oracle_at_1h(drift_sigmas: float, days: int = 365, seed: int = 11) -> dict[str, float]:
    synthetic = generate_synthetic_bars(days, seed=seed, trend_drift_sigmas=drift_sigmas)
    bars = resample_bars(synthetic.bars, "1h")
    return direction_oracle_sharpe(bars["close"].to_numpy(), majority_labels(synthetic.regimes, bars.index), "1h")


@pytest.mark.parametrize("drift", [0.06, 0.5])
def test_the_trend_oracle_earns_what_the_drift_implies(drift: float) -> None:
    """Per hour the trend oracle earns drift / sigma: annualised drift x sqrt(bars a year), within
    about three standard errors (sqrt(bars a year / bars in the regime) ~ 1.7 over a year)."""
    measured = oracle_at_1h(drift)
    expected = drift * math.sqrt(bars_per_year("1h"))
    for regime in ("bull_trending", "bear_trending"):
        assert measured[regime] == pytest.approx(expected, rel=0.15, abs=5.0)


def test_a_drift_of_six_hundredths_sigma_is_a_credible_trend() -> None:
    """The generator's default drift (0.5 sigma an hour) hands the oracle ~40; 0.06 keeps it near 5."""
    credible = oracle_at_1h(0.06)
    assert (credible["bull_trending"] + credible["bear_trending"]) / 2 < 6.0
    assert min(oracle_at_1h(0.5)[r] for r in ("bull_trending", "bear_trending")) > 25.0


def test_oracle_positions_follow_the_drift_and_the_anchor() -> None:
    close = np.array([1.0, 1.01, 1.02, 1.03, 1.0, 1.05])
    truth = np.array(["bull_trending", "bull_trending", "calm_ranging", "calm_ranging", "bear_trending", "calm_ranging"], dtype=object)
    positions = oracle_positions(close, truth)
    # calm segment anchored at the close before it (1.01): above it -> short; bear -> short; last calm anchored at 1.0
    assert positions.tolist() == [1.0, 1.0, -1.0, -1.0, -1.0, -1.0]


def test_the_demo_symbol_is_credible_in_every_regime() -> None:
    """SYNTH (the demo's bars, data/sources.py) leaves the direction oracle about 5 annualised Sharpe or
    less in every regime at 1h: no model on them can honestly score above that on average."""
    from forex_pipeline.data.sources import synthetic_bars

    synthetic = synthetic_bars()
    bars = resample_bars(synthetic.bars, "1h")
    oracle = direction_oracle_sharpe(bars["close"].to_numpy(), majority_labels(synthetic.regimes, bars.index), "1h")
    assert set(oracle) == {"bull_trending", "bear_trending", "volatile_ranging", "calm_ranging"}
    assert max(oracle.values()) <= 5.0, oracle
