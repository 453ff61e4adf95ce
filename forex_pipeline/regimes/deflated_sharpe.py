"""Deflated Sharpe ratio (Bailey & Lopez de Prado, 2014): is the best of N trials better than luck?

All Sharpe ratios here are per bar (not annualised): annualised / sqrt(bars_per_year).

    SR0 = sqrt(V) * ((1 - g) * Z(1 - 1/N) + g * Z(1 - 1/(N e)))      expected max Sharpe of N null trials
    DSR = Phi((SR - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2))

with V the variance of the trials' Sharpe ratios, g the Euler-Mascheroni constant, Z the standard
normal quantile, Phi its CDF, T the number of returns behind SR, skew and kurt (non-excess, 3 for
normal) of those returns. N <= 1 or V = 0 means no selection among trials: SR0 = 0 and DSR is the
probabilistic Sharpe ratio against 0.
"""

from __future__ import annotations

import math
from statistics import NormalDist

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """SR0: the expected maximum Sharpe of `n_trials` independent null trials with that variance."""
    if sharpe_variance < 0 or math.isnan(sharpe_variance):
        raise ValueError(f"sharpe_variance must be a non-negative number, got {sharpe_variance}")
    if n_trials <= 1 or sharpe_variance == 0:
        return 0.0
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def probabilistic_sharpe(
    sharpe: float, benchmark: float, n_obs: int, skewness: float = 0.0, kurtosis: float = 3.0
) -> float:
    """P(true Sharpe > benchmark) given the observed per-bar Sharpe; NaN where undefined."""
    if not math.isfinite(sharpe) or n_obs < 2:
        return float("nan")
    var = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if not var > 0:
        return float("nan")
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var))


def deflated_sharpe(
    sharpe: float,
    n_trials: int,
    sharpe_variance: float,
    n_obs: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """Deflated Sharpe ratio in [0, 1] of a per-bar Sharpe chosen as the best of `n_trials`."""
    return probabilistic_sharpe(sharpe, expected_max_sharpe(n_trials, sharpe_variance), n_obs, skewness, kurtosis)
