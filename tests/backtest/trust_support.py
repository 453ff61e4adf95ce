"""A grid on constructed bars, end to end through the trust figures (no training, no database).

Bars: hourly log returns sigma * eps; regimes are blocks of 80 bars cycling through the four YAML
regimes. A signal x_t (known at the close of t) predicts the next bar's return by `edge` x sigma x
x_t in `edge_regime` only (edge = 0: a random walk). Each "model" forecasts from x_t with its own
member noise, as a trained model would, and runs the full 135-configuration grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forex_pipeline.backtest.run import run_baseline_backtests, run_evaluation_backtests, run_noise_backtests
from forex_pipeline.backtest.segments import evaluation_segments
from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.models.base import PREDICTION_METHODS, Combiners
from forex_pipeline.models.spec import ModelSpec
from forex_pipeline.regimes.selection import select_regime_bests
from forex_pipeline.regimes.significance import annotate_bests, regime_pbo, regime_trials
from forex_pipeline.settings import Settings

REGIMES = ("bull_trending", "bear_trending", "volatile_ranging", "calm_ranging")
N_BARS = 4000
TEST = np.arange(1000, N_BARS)
SIGMA = 2e-3


class SignalModel:
    """K = 5 members = the signal plus member noise (a model that learned x_t, imperfectly)."""

    def __init__(self, seed: int, horizon: int = 1, noise: float = 0.5) -> None:
        self.model_spec = ModelSpec(model_type="ridge", horizon=horizon)
        self.feature_set_hash = "fs"
        self.combiners = {m: Combiners(np.full(5, 0.2), 0.0, np.full(5, 0.2)) for m in PREDICTION_METHODS}
        self.seed = seed
        self.noise = noise

    @property
    def n_members(self) -> int:
        return 5

    def predict_members(self, matrix: FeatureMatrix, rows: np.ndarray, method: str) -> np.ndarray:
        rng = np.random.default_rng([self.seed, PREDICTION_METHODS.index(method)])
        x = matrix.X[rows, 0]
        return x[None, :] + self.noise * rng.standard_normal((5, rows.size))


def make_market(seed: int, edge: float, edge_regime: str = "volatile_ranging") -> tuple[FeatureMatrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.asarray(REGIMES, dtype=object)[(np.arange(N_BARS) // 80 + seed) % 4]
    x = rng.standard_normal(N_BARS)
    nxt = SIGMA * rng.standard_normal(N_BARS)
    nxt += np.where(labels == edge_regime, edge * SIGMA * x, 0.0)          # r_{t+1} = close[t+1] / close[t]
    close = 1.1 * np.exp(np.concatenate([[0.0], np.cumsum(nxt[:-1])]))
    stamps = pd.date_range("2022-01-03", periods=N_BARS, freq="h", tz="UTC", name="timestamp")
    return FeatureMatrix("fs", stamps, x[:, None], ("signal",), close, "1h", "EURUSD"), labels


@dataclass(frozen=True)
class GridOutcome:
    bests: pd.DataFrame        # rank-1 best per regime with every trust figure
    rows: pd.DataFrame         # every backtest row of every model


def evaluate_grid(matrix: FeatureMatrix, labels: np.ndarray, settings: Settings, n_models: int = 2, noise_models: int = 60) -> GridOutcome:
    frames = []
    for m in range(n_models):
        model = SignalModel(seed=m)
        frame = run_evaluation_backtests(model, matrix, TEST, labels, settings, "EURUSD").frame
        frames.append(frame.assign(model_config_hash=f"model{m}"))
    rows = pd.concat(frames, ignore_index=True)
    horizon = 1
    segments = evaluation_segments(TEST.size, settings.evaluation, horizon)
    trials = regime_trials(rows)
    selection = select_regime_bests(rows, pd.DataFrame(), top_n=3, min_trades=settings.regimes.min_trades, trials=trials)
    noise = run_noise_backtests(matrix.close[TEST], labels[TEST], settings, "EURUSD", horizon, "1h", segments, n_models=noise_models)
    baselines = run_baseline_backtests(matrix.close, TEST, labels, settings, "EURUSD", horizon, "1h", segments)
    annotated = annotate_bests(
        selection.bests,
        trials=trials,
        noise_maxima=noise,
        pbo=regime_pbo(rows),
        baselines=baselines,
        thresholds=settings.regimes.significance,
        trials_per_model=len(rows["inference_config_hash"].unique()),
    )
    return GridOutcome(annotated[annotated["rank"] == 1].set_index("regime"), rows)
