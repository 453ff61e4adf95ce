"""Regime label accuracy: detector x base timeframe x synthetic generator x seed, on known regimes.

Run: python benchmarks/bench_regimes.py [--seeds 1 2 3 4] [--days 365]
Each cell: a year of M1 bars from one generator (`tours`: data/synthetic.py, balanced tours of 3-7
day regimes; `markov`: data/synthetic_markov.py, Markov switching, 1.5-9 days, fat tails, sessions),
resampled to the base timeframe; the truth of a bar is the majority of its M1 regimes. Both
detectors get the first half of the bars as the training segment (the HMM is fitted on it) and
are scored on the second half, 'unclassified' counting as wrong. Settings: config/training_pipeline.yaml.

The benchmark seeds (1-4) were never used for tuning; the settings were chosen on seeds 100-107.
Prints one line per cell, a mean/min line per detector x timeframe x generator, the cross-timeframe
agreement (4h labels against the majority of their 1h labels, 1h against 15m) per detector,
`oracle_sharpe_max_1h=<x>`: the largest annualised Sharpe per regime of the perfect-hindsight
direction oracle (backtest/oracle.py) at 1h on the demo's bars (SYNTH, data/sources.py; issue 10,
item 9: at most about 5), the same on the demo's parameters with each seed (sampling moves a
regime's realised figure by about 2), with the default detector's accuracy on them (`credible_label_accuracy_1h_*`: how far labels can be trusted when edges
are that small); `label_generator_oracle_sharpe_max_1h=<x>`: the same oracle on the `tours` generator
the label accuracy is measured on (its trends are strong, so regimes are recognisable); and last
`regime_accuracy_min=<x>`: the lowest cell of the default detector.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import pandas as pd

from forex_pipeline.backtest.oracle import direction_oracle_sharpe
from forex_pipeline.data.resample import resample_bars
from forex_pipeline.data.sources import SYNTH_RANGE_HALF_LIFE_MINUTES, SYNTH_TREND_DRIFT_SIGMAS, synthetic_bars
from forex_pipeline.data.synthetic import SyntheticBars, generate_synthetic_bars
from forex_pipeline.data.synthetic_markov import generate_markov_bars
from forex_pipeline.regimes.labels import label_regimes, majority_labels, regime_accuracy, timeframe_agreement
from forex_pipeline.settings import DEFAULT_SETTINGS_FILE, RegimeSettings, load_settings

GENERATORS = {"tours": generate_synthetic_bars, "markov": generate_markov_bars}
TIMEFRAMES = ("15m", "1h", "4h")
DETECTORS = ("rules", "hmm")
TARGETS = {"15m": 0.85, "1h": 0.85, "4h": 0.75}


def labelled(bars: pd.DataFrame, settings: RegimeSettings, timeframe: str) -> tuple[np.ndarray, int]:
    """Labels of every bar (HMM fitted on the first half) and the first scored bar."""
    half = len(bars) // 2
    close = bars["close"].to_numpy()
    return label_regimes(close, settings, timeframe=timeframe, train_end=half, timestamps=bars.index), half


def credible_oracle(synthetic: SyntheticBars, settings: RegimeSettings, name: str) -> tuple[float, float]:
    """(largest per-regime oracle Sharpe, default detector accuracy on the second half) at 1h, printed."""
    hourly = resample_bars(synthetic.bars, "1h")
    truth = majority_labels(synthetic.regimes, hourly.index)
    oracle = direction_oracle_sharpe(hourly["close"].to_numpy(), truth, "1h")
    labels, half = labelled(hourly, settings, "1h")
    accuracy = regime_accuracy(labels, truth, np.arange(len(hourly)) >= half)
    print(f"oracle_sharpe_1h bars={name} " + " ".join(f"{k}={v:.1f}" for k, v in sorted(oracle.items()))
          + f" label_accuracy={accuracy:.4f}", flush=True)
    return max(oracle.values()), accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    base = load_settings(DEFAULT_SETTINGS_FILE).regimes
    default = base.detector
    cells: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    agreement: dict[tuple[str, str], list[float]] = defaultdict(list)
    seconds: dict[str, float] = defaultdict(float)
    oracles: list[float] = []
    for generator, generate in GENERATORS.items():
        for seed in args.seeds:
            synthetic = generate(args.days, seed)
            frames = {tf: resample_bars(synthetic.bars, tf) for tf in TIMEFRAMES}
            if generator == "tours":
                hourly = frames["1h"]
                oracle = direction_oracle_sharpe(hourly["close"].to_numpy(), majority_labels(synthetic.regimes, hourly.index), "1h")
                oracles.append(max(oracle.values()))
                print(f"oracle_sharpe_1h bars=tours seed={seed} " + " ".join(f"{k}={v:.1f}" for k, v in sorted(oracle.items())), flush=True)
            for detector in DETECTORS:
                settings = base.model_copy(update={"detector": detector})
                scored: dict[str, pd.Series] = {}
                for timeframe, bars in frames.items():
                    start = time.perf_counter()
                    labels, half = labelled(bars, settings, timeframe)
                    seconds[detector] += time.perf_counter() - start
                    truth = majority_labels(synthetic.regimes, bars.index)
                    accuracy = regime_accuracy(labels, truth, np.arange(len(bars)) >= half)
                    cells[(detector, timeframe, generator)].append(accuracy)
                    scored[timeframe] = pd.Series(labels[half:], index=bars.index[half:])
                    print(f"detector={detector} timeframe={timeframe} generator={generator} seed={seed} "
                          f"bars_scored={len(bars) - half} accuracy={accuracy:.4f}", flush=True)
                agreement[(detector, "4h_vs_1h")].append(timeframe_agreement(scored["4h"], scored["1h"]))
                agreement[(detector, "1h_vs_15m")].append(timeframe_agreement(scored["1h"], scored["15m"]))
    print()
    for (detector, timeframe, generator), values in sorted(cells.items()):
        target = f" target>={TARGETS[timeframe]:.2f}" if detector == default else ""
        print(f"summary detector={detector} timeframe={timeframe} generator={generator} "
              f"mean={np.mean(values):.4f} min={np.min(values):.4f}{target}")
    for (detector, pair), values in sorted(agreement.items()):
        print(f"timeframe_agreement detector={detector} pair={pair} mean={np.mean(values):.4f} min={np.min(values):.4f}")
    for detector in DETECTORS:
        print(f"label_seconds detector={detector} total={seconds[detector]:.1f}")
    default_cells = [v for (detector, _, _), values in cells.items() if detector == default for v in values]
    shortfalls = [
        f"{tf}/{gen}" for (detector, tf, gen), values in cells.items() if detector == default and min(values) < TARGETS[tf]
    ]
    print(f"default_detector={default} cells_below_target={','.join(shortfalls) or 'none'}")
    demo = credible_oracle(synthetic_bars(), base, "SYNTH")
    credible = [
        credible_oracle(generate_synthetic_bars(args.days, seed, trend_drift_sigmas=SYNTH_TREND_DRIFT_SIGMAS,
                                                range_half_life_minutes=SYNTH_RANGE_HALF_LIFE_MINUTES), base, f"credible seed={seed}")
        for seed in args.seeds
    ]
    print(f"credible_label_accuracy_1h_demo={demo[1]:.4f}")
    print(f"credible_label_accuracy_1h_mean={np.mean([a for _, a in credible]):.4f}")
    print(f"credible_oracle_sharpe_max_1h_over_seeds={max(o for o, _ in credible):.2f}")
    print(f"label_generator_oracle_sharpe_max_1h={max(oracles):.2f}")
    print(f"oracle_sharpe_max_1h={demo[0]:.2f}")
    print(f"regime_accuracy_min={min(default_cells):.4f}")


if __name__ == "__main__":
    main()
