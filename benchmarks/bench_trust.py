"""Benchmark: can the `significant` verdict be trusted, and what does it cost?

Constructed hourly bars (tests/backtest/trust_support.py: 4,000 bars, regimes in blocks of 80 bars,
test segment = the last 3,000 bars), two "models" per market that forecast from a signal x_t with
their own member noise, the full 135-configuration grid, selection / holdout as in the settings,
the noise reference of NOISE_MODELS random-forecast models, the four baselines, PBO, the verdict,
exactly as the pipeline computes them (pipeline/trust.py).

Printed, name=value, one per line:
  false_discovery_rate   share of regime bests flagged significant on random-walk bars (no edge),
                         over SEEDS seeds x 4 regimes (want <= 0.05)
  planted_edge_power     share of seeds whose planted-edge regime best is flagged significant
                         (edge 0.3 sigma x_t in volatile_ranging only; want >= 0.8)
  planted_edge_false_flags   significant bests in the OTHER regimes of the planted-edge markets (share)
  internal_loop_seconds  one model's run_evaluation_backtests (135 configurations, both segments), median
  trust_seconds_per_model   what the trust figures add per recorded model (median): baselines looked up,
                         noise p-values, PBO over the regime's trials (the pipeline's own path,
                         cached_trial_blocks: the new model's blocks from its rows, the others from the
                         per-process TrialBlockCache; only the store's version query is left out), DSR, verdict
  trust_overhead         trust_seconds_per_model / internal_loop_seconds, same process, same markets,
                         medians over every model (want <= 0.2); trust_overhead_of_means: the same with means
  internal_loop_cpu_seconds, trust_cpu_seconds_per_model, trust_overhead_cpu   the same in CPU seconds of
                         the process (time.process_time, every thread counted): what the work costs,
                         independent of how loaded the shared machine is while it runs
  reference_seconds      the one-off noise + baseline reference of one (feature set, horizon) with its
                         Gumbel fits, cached (files, and in memory per process: pipeline/trust.py)
  reference_in_internal_loops   reference_seconds / internal_loop_seconds (paid once per feature set
                         and horizon, shared by every model of the grid on them)

Run: PYTHONPATH=. python benchmarks/bench_trust.py   (about 3-4 minutes on 2 shared cores)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from forex_pipeline.backtest.columns import BLOCK_COLUMNS  # noqa: E402
from forex_pipeline.backtest.run import run_baseline_backtests, run_evaluation_backtests, run_noise_backtests  # noqa: E402
from forex_pipeline.backtest.segments import evaluation_segments  # noqa: E402
from forex_pipeline.pipeline.trust import (  # noqa: E402
    TrialBlockCache, TrustReference, annotate, cached_trial_blocks, group_pbo, ranking_segments,
)
from forex_pipeline.regimes.selection import select_regime_bests  # noqa: E402
from forex_pipeline.regimes.significance import regime_trials  # noqa: E402
from forex_pipeline.settings import DEFAULT_SETTINGS_FILE, load_settings  # noqa: E402
from tests.backtest.trust_support import TEST, SignalModel, make_market  # noqa: E402

SEEDS = 20
MODELS = 2
NOISE_MODELS = 40
EDGE = 0.3
EDGE_REGIME = "volatile_ranging"
TIMINGS = ("reference", "internal", "trust", "internal_cpu", "trust_cpu")


def one_market(seed: int, edge: float, settings, timings: dict[str, list[float]]) -> pd.DataFrame:
    """Rank-1 bests of every regime with their trust figures, the pipeline's way."""
    matrix, labels = make_market(seed, edge, EDGE_REGIME)
    horizon = 1
    segments = evaluation_segments(TEST.size, settings.evaluation, horizon)
    selection_segment, holdout_segment = ranking_segments(settings.evaluation)

    started = time.perf_counter()
    baselines = run_baseline_backtests(matrix.close, TEST, labels, settings, "EURUSD", horizon, "1h", segments)
    noise = run_noise_backtests(
        matrix.close[TEST], labels[TEST], settings, "EURUSD", horizon, "1h", segments, n_models=NOISE_MODELS, seed=seed
    )
    reference = TrustReference(noise, baselines)
    reference.fits                    # Gumbel fits and best baselines: once per reference, kept with it
    timings["reference"].append(time.perf_counter() - started)

    rows, standing = [], pd.DataFrame()
    blocks_cache = TrialBlockCache()          # what the pipeline keeps per process (pipeline/trust.py)
    for m in range(MODELS):
        started, cpu = time.perf_counter(), time.process_time()
        frame = run_evaluation_backtests(SignalModel(seed=100 * seed + m), matrix, TEST, labels, settings, "EURUSD").frame
        timings["internal"].append(time.perf_counter() - started)
        timings["internal_cpu"].append(time.process_time() - cpu)
        frame = frame.assign(model_config_hash=f"model{m}", feature_set_hash="fs", horizon=horizon, training_run_id=m)
        rows.append(frame)
        recorded = pd.concat(rows, ignore_index=True)
        trials = regime_trials(recorded, selection_segment)          # the database aggregate's figures
        selection = select_regime_bests(
            frame, standing, top_n=3, min_trades=settings.regimes.min_trades,
            trials=trials, selection_segment=selection_segment, holdout_segment=holdout_segment,
        )
        started, cpu = time.perf_counter(), time.process_time()

        def fetch(runs: list[int] | None) -> pd.DataFrame:
            """The stored rows of `runs` (the store's trial_blocks query), from the recorded frames."""
            chosen = rows if runs is None else [rows[r] for r in runs]
            columns = ["training_run_id", "regime", *BLOCK_COLUMNS]
            parts = [f.loc[f["segment"].to_numpy() == selection_segment, columns] for f in chosen]
            return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)

        # the pipeline's path (recorded_trial_blocks without the database's version query): the new
        # model's blocks from its own rows, every other run from the cache
        blocks = cached_trial_blocks(
            blocks_cache, ("fs", horizon, selection_segment), {r: len(rows[r]) for r in range(len(rows))}, fetch,
            known=frame, regimes=list(settings.regimes.definitions), segment=selection_segment,
        )
        pbo = {("fs", horizon): group_pbo(blocks)}
        bests = annotate(
            selection.bests, trials=trials, references={("fs", horizon): reference}, pbo=pbo,
            settings=settings, segment=selection_segment,
        )
        timings["trust"].append(time.perf_counter() - started)
        timings["trust_cpu"].append(time.process_time() - cpu)
        standing = bests
    return bests[bests["rank"] == 1].set_index("regime")


def main() -> None:
    settings = load_settings(DEFAULT_SETTINGS_FILE)
    timings: dict[str, list[float]] = {name: [] for name in TIMINGS}
    one_market(999, 0.0, settings, {name: [] for name in TIMINGS})   # numba warm-up
    flagged, total = 0, 0
    for seed in range(SEEDS):
        bests = one_market(seed, 0.0, settings, timings)
        flagged += int(bests["significant"].sum())
        total += len(bests)
    detected, other_flags, other_total = 0, 0, 0
    for seed in range(SEEDS):
        bests = one_market(seed, EDGE, settings, timings)
        detected += int(bool(bests.loc[EDGE_REGIME, "significant"])) if EDGE_REGIME in bests.index else 0
        others = bests.drop(index=EDGE_REGIME, errors="ignore")
        other_flags += int(others["significant"].sum())
        other_total += len(others)
    # medians: the machine is shared, and a load spike in one call should not decide the ratio
    internal = float(np.median(timings["internal"]))
    trust = float(np.median(timings["trust"]))
    reference = float(np.median(timings["reference"]))
    print(f"seeds={SEEDS}")
    print(f"models_per_market={MODELS}")
    print(f"noise_models={NOISE_MODELS}")
    print(f"false_discovery_rate={flagged / total:.4f}")
    print(f"planted_edge_power={detected / SEEDS:.4f}")
    print(f"planted_edge_false_flags={other_flags / other_total:.4f}")
    print(f"internal_loop_seconds={internal:.4f}")
    print(f"trust_seconds_per_model={trust:.4f}")
    print(f"reference_seconds={reference:.4f}")
    print(f"reference_in_internal_loops={reference / internal:.2f}")
    internal_cpu = float(np.median(timings["internal_cpu"]))
    trust_cpu = float(np.median(timings["trust_cpu"]))
    print(f"internal_loop_cpu_seconds={internal_cpu:.4f}")
    print(f"trust_cpu_seconds_per_model={trust_cpu:.4f}")
    print(f"trust_overhead_cpu={trust_cpu / internal_cpu:.4f}")
    print(f"trust_overhead_of_means={np.mean(timings['trust']) / np.mean(timings['internal']):.4f}")
    print(f"trust_overhead={trust / internal:.4f}")


if __name__ == "__main__":
    main()
