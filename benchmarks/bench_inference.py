"""Benchmark: one model's 135 inference configurations on one year of real EUR/USD M1 bars.

A ridge model is trained on 2018 (features: RSI and ret_lag_1..5 on M1) and predicts every M1 row of
2019 (about 370,000 bars), the backtest segment. Printed, one figure per line:
  model_prediction_seconds   predict_members for the three prediction methods
  repetitions                timed runs of each side after a warm-up run (5); each figure is the best
  ours_seconds               simulator + metrics + per-regime metrics for all 135 configurations,
                             from the 27 (forecast, confidence) series; numba warmed up
  ours_from_members_seconds  the same plus ensembles and confidence, from the member predictions
  ours_single_thread_seconds ours_seconds with one numba thread (vectorbt runs on one core)
  vectorbt_seconds           Portfolio.from_signals on the same 135 signal columns (long/short entries
                             and exits of our positions) plus its Sharpe, drawdown and win rate
  speedup_single_thread      vectorbt_seconds / ours_single_thread_seconds (core for core)
  speedup_vs_vectorbt        vectorbt_seconds / ours_seconds (threaded; last line)

The sides are timed in rounds (ours, ours on one thread, vectorbt, then again), so a change of load
during the run reaches every side alike; the best of the rounds is the figure least disturbed by the
other work on a shared machine (a single run's ratio fell from 205x to 50x under load while vectorbt
slowed only 1.2x). The spread of each side (worst / best) is printed so a noisy run shows as one.

Run: python benchmarks/bench_inference.py   (data: FOREX_SAMPLE_DATA or ../shared/data/fx)
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numba
import numpy as np
import pandas as pd

from forex_pipeline.backtest.confidence import rolling_size_rank
from forex_pipeline.backtest.ensembles import combine, member_agreement
from forex_pipeline.backtest.inference_grid import inference_configs
from forex_pipeline.backtest.metrics import metrics_from_stats
from forex_pipeline.backtest.run import backtest_member_predictions, encode_regimes
from forex_pipeline.backtest.simulator import equity_curve, simulate_grid
from forex_pipeline.data.loaders import load_bars
from forex_pipeline.data.timeframes import bars_per_year
from forex_pipeline.features.build import build_feature_matrix
from forex_pipeline.features.spec import FeatureSetSpec, Preprocessing
from forex_pipeline.models.registry import TrainingContext, train_model
from forex_pipeline.models.spec import ModelSpec
from forex_pipeline.regimes.labels import label_regimes
from forex_pipeline.settings import DEFAULT_SETTINGS_FILE, load_settings

REPO = Path(__file__).resolve().parent.parent
HORIZON = 5
REPETITIONS = 5


def data_dir() -> Path:
    return Path(os.environ.get("FOREX_SAMPLE_DATA") or REPO.parent / "shared" / "data" / "fx")


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def single_threaded(fn: Callable[[], object]) -> Callable[[], object]:
    """`fn` run with one numba thread (the number of threads is restored afterwards)."""

    def run() -> object:
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return fn()
        finally:
            numba.set_num_threads(threads)

    return run


def rounds(sides: dict[str, Callable[[], object]], repetitions: int) -> dict[str, list[float]]:
    """Seconds of each side per round: every side once per round, after one untimed warm-up run each."""
    for fn in sides.values():
        fn()
        gc.collect()
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repetitions):
        for name, fn in sides.items():
            seconds[name].append(timed(fn))
            gc.collect()  # a vectorbt portfolio is freed only by the cycle collector: 6 runs held 20 GB otherwise
    return seconds


def main() -> None:
    # Train on 2018, validate on the first weeks of 2019's lead-in, backtest all of 2019.
    settings = load_settings(DEFAULT_SETTINGS_FILE)
    training = settings.training.model_copy(update={"train_fraction": 0.45, "validation_fraction": 0.05})
    settings = settings.model_copy(update={"training": training})
    bars = load_bars(data_dir() / "EURUSD_M1.csv.gz").bars
    spec = FeatureSetSpec(
        symbol="EURUSD", base_timeframe="1m", days_history=730, as_of=datetime(2020, 1, 1, tzinfo=UTC),
        indicator_timeframes={"rsi": ("1m",)}, preprocessing=Preprocessing(warmup_bars=200),
    )
    matrix = build_feature_matrix(spec, bars, ar_lags=settings.training.ar_lags)
    model_spec = ModelSpec(model_type="ridge", horizon=HORIZON)
    with tempfile.TemporaryDirectory() as tmp:
        model = train_model(matrix, model_spec, TrainingContext(settings=settings, artifacts_dir=Path(tmp)))
    test_rows = np.flatnonzero(matrix.timestamps >= pd.Timestamp("2019-01-01", tz="UTC")).astype(np.int64)
    grid = settings.inference_grid
    n_warmup = max(grid.lookback_windows)
    rows = np.concatenate([np.arange(test_rows[0] - n_warmup, test_rows[0]), test_rows])
    print(f"bars_2019={test_rows.size}", flush=True)

    started = time.perf_counter()
    members = {m: model.predict_members(matrix, rows, m) for m in grid.prediction_methods}
    print(f"model_prediction_seconds={time.perf_counter() - started:.3f}", flush=True)

    close = matrix.close[test_rows]
    labels = label_regimes(
        matrix.close, settings.regimes, timeframe=matrix.base_timeframe,
        train_end=int(matrix.n_rows * settings.training.train_fraction), timestamps=matrix.timestamps,
    )[test_rows]
    regimes = encode_regimes(labels, (*settings.regimes.definitions, "unclassified"))
    costs = settings.data.costs_for("EURUSD")
    year = bars_per_year("1m")
    lookbacks = np.asarray(grid.lookback_windows)
    thresholds = np.asarray(grid.confidence_thresholds)

    # the 27 (forecast, confidence) series, in the grid's series order
    fc, conf = [], []
    for method in grid.prediction_methods:
        forecasts = np.stack([combine(members[method], model.combiners[method], e) for e in grid.ensemble_methods])
        agreement = np.stack([member_agreement(members[method], f) for f in forecasts])
        ranks = rolling_size_rank(forecasts, lookbacks)
        conf.append((ranks * agreement[:, None, :])[:, :, n_warmup:].reshape(-1, test_rows.size))
        fc.append(np.repeat(forecasts[:, None, n_warmup:], lookbacks.size, axis=1).reshape(-1, test_rows.size))
    fc, conf = np.concatenate(fc), np.concatenate(conf)

    def ours() -> dict:
        stats = simulate_grid(fc, conf, thresholds, close, HORIZON, costs, regimes.codes, len(regimes.names),
                              settings.performance.backtest_max_matrix_bytes)
        return metrics_from_stats(stats, year)

    def ours_from_members() -> pd.DataFrame:
        return backtest_member_predictions(members, model.combiners, n_warmup, close, regimes, HORIZON, costs, grid,
                                           year, settings.performance.backtest_max_matrix_bytes)

    import vectorbt as vbt

    positions = np.empty((test_rows.size, len(fc) * thresholds.size), dtype=np.int8)
    for s in range(len(fc)):
        for k, threshold in enumerate(thresholds):
            positions[:, s * thresholds.size + k] = equity_curve(fc[s], conf[s], threshold, close, HORIZON, costs)[0]
    previous = np.vstack([np.zeros((1, positions.shape[1]), np.int8), positions[:-1]])
    price = pd.Series(close)
    signals = {
        "entries": pd.DataFrame((positions == 1) & (previous != 1)),
        "exits": pd.DataFrame((positions != 1) & (previous == 1)),
        "short_entries": pd.DataFrame((positions == -1) & (previous != -1)),
        "short_exits": pd.DataFrame((positions != -1) & (previous == -1)),
    }
    fee = float(np.mean((costs.spread_pips / 2 + costs.commission_pips) * costs.pip_size / close))

    def vectorbt_run() -> tuple:
        portfolio = vbt.Portfolio.from_signals(price, **signals, fees=fee, init_cash=1.0, freq="1min")
        return portfolio.sharpe_ratio(), portfolio.max_drawdown(), portfolio.trades.win_rate()

    threads = numba.get_num_threads()
    seconds = rounds(
        {"ours": ours, "ours_from_members": ours_from_members, "ours_single_thread": single_threaded(ours),
         "vectorbt": vectorbt_run},
        REPETITIONS,
    )
    best = {name: min(values) for name, values in seconds.items()}
    frame = ours_from_members()
    print(f"configurations={len(inference_configs(grid))} regimes={len(regimes.names)} rows={len(frame)}")
    print(f"repetitions={REPETITIONS}")
    print(f"ours_seconds={best['ours']:.3f}")
    print(f"ours_from_members_seconds={best['ours_from_members']:.3f}")
    print(f"ours_single_thread_seconds={best['ours_single_thread']:.3f} (numba threads otherwise: {threads})")
    print(f"vectorbt_version={vbt.__version__}")
    print(f"vectorbt_seconds={best['vectorbt']:.3f}")
    for name, values in seconds.items():
        print(f"{name}_spread={max(values) / min(values):.2f}")
    print(f"speedup_single_thread={best['vectorbt'] / best['ours_single_thread']:.1f}")
    print(f"speedup_vs_vectorbt={best['vectorbt'] / best['ours']:.1f}")


if __name__ == "__main__":
    sys.exit(main())
