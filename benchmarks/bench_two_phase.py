"""Benchmark: the two-phase split against retraining once per inference configuration.

An rf model (family defaults, K members) on one year (2019) of real EUR/USD 1h bars. Printed:
  train_seconds                 mean of 3 trainings (seeds 0, 1, 2)
  inference_seconds             run_inference_backtests: all 135 configurations on one trained model
                                (member predictions + simulation + per-regime metrics), numba warm
  retrain_per_config_seconds    3 measured trainings scaled to 135 (what one model per configuration costs)
  end_to_end_speedup            135 retrains / (one training + the internal loop)
  two_phase_speedup             135 retrains / the internal loop (last line)

Run: python benchmarks/bench_two_phase.py   (data: FOREX_SAMPLE_DATA or ../shared/data/fx)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from forex_pipeline.backtest.inference_grid import inference_configs
from forex_pipeline.backtest.run import run_inference_backtests
from forex_pipeline.data.loaders import load_bars
from forex_pipeline.data.resample import resample_bars
from forex_pipeline.features.build import build_feature_matrix
from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.features.splits import split_rows
from forex_pipeline.models.registry import TrainingContext, train_model
from forex_pipeline.models.spec import ModelSpec
from forex_pipeline.regimes.labels import label_regimes
from forex_pipeline.settings import DEFAULT_SETTINGS_FILE, load_settings

REPO = Path(__file__).resolve().parent.parent
RETRAINS = 3


def data_dir() -> Path:
    return Path(os.environ.get("FOREX_SAMPLE_DATA") or REPO.parent / "shared" / "data" / "fx")


def main() -> None:
    settings = load_settings(DEFAULT_SETTINGS_FILE)
    minute_bars = load_bars(data_dir() / "EURUSD_M1.csv.gz").bars
    bars = resample_bars(minute_bars, "1h")
    spec = FeatureSetSpec(
        symbol="EURUSD", base_timeframe="1h", days_history=365, as_of=datetime(2020, 1, 1, tzinfo=UTC),
        indicator_timeframes={"rsi": ("1h", "4h"), "macd": ("1h",), "atr": ("1h",), "bbands": ("4h",)},
        additional_features=("returns_volatility", "trading_sessions"),
    )
    matrix = build_feature_matrix(spec, bars, ar_lags=settings.training.ar_lags)
    model_spec = ModelSpec(model_type="rf", horizon=5)
    print(f"rows={matrix.n_rows} features={len(matrix.feature_names)} members={settings.training.members}", flush=True)

    train_seconds, model = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(RETRAINS):
            started = time.perf_counter()
            model = train_model(matrix, model_spec, TrainingContext(settings=settings, artifacts_dir=Path(tmp), seed=seed))
            train_seconds.append(time.perf_counter() - started)
    mean_train = sum(train_seconds) / RETRAINS
    print(f"train_seconds={mean_train:.2f} (each: {', '.join(f'{s:.2f}' for s in train_seconds)})", flush=True)

    splits = split_rows(matrix.n_rows, model_spec.horizon, settings.training.train_fraction, settings.training.validation_fraction)
    labels = label_regimes(matrix.close, settings.regimes)
    run_inference_backtests(model, matrix, splits.test, labels, settings, "EURUSD")   # numba warm-up
    started = time.perf_counter()
    output = run_inference_backtests(model, matrix, splits.test, labels, settings, "EURUSD")
    inference = time.perf_counter() - started
    n_configs = len(inference_configs(settings.inference_grid))
    retrain_all = mean_train * n_configs
    print(f"test_rows={splits.test.size} configurations={n_configs} backtest_rows={len(output.frame)}")
    print(f"inference_seconds={inference:.3f} (prediction {output.prediction_seconds:.3f}, "
          f"simulation {output.simulation_seconds:.3f})")
    print(f"retrain_per_config_seconds={retrain_all:.1f}")
    print(f"end_to_end_speedup={retrain_all / (mean_train + inference):.1f}")
    print(f"two_phase_speedup={retrain_all / inference:.1f}")


if __name__ == "__main__":
    sys.exit(main())
