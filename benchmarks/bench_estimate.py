"""The time estimate of a machine with no recorded run: the probe (grid/probe.py) against the reference
table, and `grid plan` against the measured `grid submit` of a grid.

Part 1 (always): the probe and the table's reference unit (the first feature set of
examples/grids/classical_24.yaml: EURUSD 2019 1h bars built from the M1 file, features, a ridge h5
fit, the internal loop) timed back to back, best of `--rounds` alternating rounds. Printed:
  probe_seconds, reference_unit_seconds, reference_unit_table_seconds (what the table says)
  probe_reference_seconds = probe x table / measured: the probe where the table's reference unit
  is right (informative: PROBE_REFERENCE_SECONDS is anchored on whole runs, part 2, because the
  table's unit leaves out recording and noise references, which weigh more in a run)
Part 2 (`--grid`): on empty storage, the plan's estimate (scaled by a fresh probe), then
`forex-pipeline grid submit` of the grid timed start to finish. Printed: estimated_seconds,
measured_seconds, load_during, probe_reference_seconds_from_run (the PROBE_REFERENCE_SECONDS that
would have made this estimate exact) and last estimate_ratio=<estimated/measured> (target 0.5-2).

    python benchmarks/bench_estimate.py [--rounds 3] [--grid examples/grids/demo.yaml]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_GRID = ROOT / "examples" / "grids" / "classical_24.yaml"


def reference_unit(settings, artifacts_dir: Path) -> tuple[float, float]:  # noqa: ANN001 - Settings
    """Seconds measured and seconds by the table of the reference unit, built from scratch in `artifacts_dir`."""
    from forex_pipeline.backtest.run import run_evaluation_backtests
    from forex_pipeline.data.sources import default_sample_dir
    from forex_pipeline.features.splits import split_rows
    from forex_pipeline.grid.estimate import FEATURES_SECONDS, model_seconds, reference_scale
    from forex_pipeline.grid.expand import expand_grid, load_grid_spec
    from forex_pipeline.models.context import TrainingContext
    from forex_pipeline.models.registry import train_model
    from forex_pipeline.models.spec import ModelSpec
    from forex_pipeline.pipeline.artifacts import ensure_feature_matrix
    from forex_pipeline.regimes.labels import label_regimes

    feature_set = expand_grid(load_grid_spec(REFERENCE_GRID)).feature_sets[0]
    model_spec = ModelSpec(model_type="ridge", horizon=5)
    training = settings.training
    started = time.perf_counter()
    matrix, _ = ensure_feature_matrix(feature_set, settings, artifacts_dir, default_sample_dir())
    model = train_model(matrix, model_spec, TrainingContext(settings=settings, artifacts_dir=artifacts_dir))
    splits = split_rows(matrix.n_rows, model_spec.horizon, training.train_fraction, training.validation_fraction)
    labels = label_regimes(matrix.close, settings.regimes, timeframe="1h", train_end=int(splits.validation[0]), timestamps=matrix.timestamps)
    run_evaluation_backtests(model, matrix, splits.test, labels[splits.test], settings, feature_set.symbol)
    measured = time.perf_counter() - started
    table = (FEATURES_SECONDS + model_seconds(model_spec, settings)) * reference_scale(feature_set)
    return measured, table


def probe_against_table(rounds: int) -> None:
    from forex_pipeline.grid.probe import measure_probe
    from forex_pipeline.settings import get_settings

    settings = get_settings()
    probes, units, table = [], [], 0.0
    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
        reference_unit(settings, Path(tmp) / "warm-up")
        for round_ in range(rounds):
            probes.append(measure_probe(settings).seconds)
            measured, table = reference_unit(settings, Path(tmp) / f"round-{round_}")
            units.append(measured)
            print(f"round={round_} probe_seconds={probes[-1]:.3f} reference_unit_seconds={measured:.3f} load={os.getloadavg()[0]:.1f}", flush=True)
    probe, unit = min(probes), min(units)
    print(f"probe_seconds={probe:.3f}")
    print(f"reference_unit_seconds={unit:.3f}")
    print(f"reference_unit_table_seconds={table:.3f}")
    print(f"probe_reference_seconds={probe * table / unit:.3f}", flush=True)


def estimate_against_run(grid: Path) -> None:
    """Plan on empty storage (a fresh probe), then run the grid through `grid submit` and compare."""
    with tempfile.TemporaryDirectory(prefix="bench-estimate-grid-") as tmp:
        home = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FOREX_DATABASE", "FOREX_ARTIFACTS", "DAGSTER_HOME"))}
        env.update(DAGSTER_HOME=str(home), FOREX_DATABASE_URL=f"sqlite:///{home / 'forex_pipeline.db'}",
                   FOREX_ARTIFACTS_DIR=str(home / "artifacts"))
        os.environ.update(env)
        from forex_pipeline.grid.estimate import plan
        from forex_pipeline.grid.expand import expand_grid, load_grid_spec
        from forex_pipeline.settings import get_settings

        grid_plan = plan(expand_grid(load_grid_spec(grid)), settings=get_settings(), probe=True)
        print(f"estimated_seconds={grid_plan.estimated_seconds:.1f} ({grid_plan.calibration.describe()})", flush=True)
        loads, started = [os.getloadavg()[0]], time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "forex_pipeline.cli", "grid", "submit", str(grid)], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        while process.poll() is None:
            time.sleep(5)
            loads.append(os.getloadavg()[0])
        measured = time.perf_counter() - started
        output = process.stdout.read() if process.stdout else ""
        if process.returncode != 0:
            raise SystemExit(f"grid submit failed ({process.returncode}):\n{output[-3000:]}")
    probe = grid_plan.calibration.probe
    print(f"measured_seconds={measured:.1f}")
    print(f"load_during=min {min(loads):.1f} mean {sum(loads) / len(loads):.1f} max {max(loads):.1f}")
    if probe is not None:  # the PROBE_REFERENCE_SECONDS that would have made this estimate exact
        print(f"probe_reference_seconds_from_run={probe.seconds * grid_plan.estimated_seconds / probe.rate / measured:.3f}")
    print(f"estimate_ratio={grid_plan.estimated_seconds / measured:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--grid", type=Path, help="also plan this grid on empty storage and time its `grid submit`")
    parser.add_argument("--skip-probe", action="store_true", help="only the --grid comparison")
    args = parser.parse_args()
    if not args.skip_probe:
        probe_against_table(args.rounds)
    if args.grid is not None:
        estimate_against_run(args.grid)


if __name__ == "__main__":
    main()
