"""Dagster's orchestration overhead on a grid: `forex-pipeline grid submit` (as a user runs it, one
Dagster run per batch of models) against a plain Python loop over the same configurations calling
the core library (`two_phase.run_configuration`: features, training, 135 backtests, keep-or-delete).

Both sides start from empty storage (bars, features and models are built inside the timing).
Two grids: `--fast-grid` (50 ridge/lasso configurations, where Dagster's cost per model and per run
weighs most) gives dagster_efficiency_fast=; `--grid` (24 classical configurations, rf and lightgbm
included) gives the last line, dagster_efficiency=<plain_seconds/dagster_seconds> (1.0 = no
overhead; target >= 0.8 for both). Each is preceded by its `_cpu` line: the same ratio of CPU seconds
(user + system of each side's process tree, getrusage), the one to read when the machine is loaded
(uptime above its core count), since waiting for a core then inflates both wall clocks unevenly.

    python benchmarks/bench_orchestration.py [--grid examples/grids/classical_24.yaml]
        [--fast-grid examples/grids/fast_50.yaml] [--rounds 2] [--only fast|classical]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GRID = ROOT / "examples" / "grids" / "classical_24.yaml"
FAST_GRID = ROOT / "examples" / "grids" / "fast_50.yaml"


def storage_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOREX_DATABASE", "FOREX_ARTIFACTS", "DAGSTER_HOME"))}
    env.update(
        DAGSTER_HOME=str(home),
        FOREX_DATABASE_URL=f"sqlite:///{home / 'forex_pipeline.db'}",
        FOREX_ARTIFACTS_DIR=str(home / "artifacts"),
        FOREX_SAMPLE_DATA=os.environ.get("FOREX_SAMPLE_DATA", str(ROOT.parent / "shared" / "data" / "fx")),
    )
    return env


PLAIN_LOOP = """
import sys, time
started = time.perf_counter()
from forex_pipeline.grid.expand import expand_grid, load_grid_spec
from forex_pipeline.settings import get_settings
from forex_pipeline.store.db import get_engine, upgrade
from forex_pipeline.data.sources import default_sample_dir
from forex_pipeline.pipeline.configuration import run_configuration

settings = get_settings()
upgrade(settings.database_url)
engine = get_engine(settings.database_url)
grid = expand_grid(load_grid_spec(sys.argv[1]))
statuses = [
    run_configuration(c, settings=settings, engine=engine,
                      artifacts_dir=settings.artifacts_dir, sample_dir=default_sample_dir()).status
    for c in grid.configurations
]
print(f"plain_configurations={len(statuses)} completed={statuses.count('completed')} seconds={time.perf_counter() - started:.2f}")
"""


def children_cpu_seconds() -> float:
    """User + system CPU seconds of every finished child process so far (getrusage RUSAGE_CHILDREN)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of `command` (CPU: the process and its children, so a loaded machine's
    waiting does not count), and its stdout."""
    started, cpu_started = time.perf_counter(), children_cpu_seconds()
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - started, children_cpu_seconds() - cpu_started
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return seconds, cpu, out.stdout


def efficiency(grid: Path, rounds: int, label: str) -> tuple[float, float]:
    """plain / Dagster seconds, wall clock and CPU, the best of `rounds` alternating rounds of each
    side on fresh storage (the CPU ratio is the one to read on a loaded machine)."""
    plain_times, dagster_times, plain_cpu, dagster_cpu = [], [], [], []
    for round_ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="bench-orch-") as tmp:
            seconds, cpu, out = timed([sys.executable, "-c", PLAIN_LOOP, str(grid)], storage_env(Path(tmp) / "plain"))
            plain_times.append(seconds)
            plain_cpu.append(cpu)
            print(f"{label} round={round_} {out.strip().splitlines()[-1]} plain_seconds={seconds:.2f} plain_cpu_seconds={cpu:.2f} "
                  "(process start to finish)", flush=True)
            seconds, cpu, _ = timed(
                [sys.executable, "-m", "forex_pipeline.cli", "grid", "submit", str(grid)], storage_env(Path(tmp) / "dagster")
            )
            dagster_times.append(seconds)
            dagster_cpu.append(cpu)
            print(f"{label} round={round_} dagster_seconds={seconds:.2f} dagster_cpu_seconds={cpu:.2f} "
                  "(forex-pipeline grid submit, start to finish)", flush=True)
    print(f"{label} plain_seconds_best={min(plain_times):.2f} dagster_seconds_best={min(dagster_times):.2f} "
          f"plain_cpu_seconds_best={min(plain_cpu):.2f} dagster_cpu_seconds_best={min(dagster_cpu):.2f} load={os.getloadavg()[0]:.1f}")
    return min(plain_times) / min(dagster_times), min(plain_cpu) / min(dagster_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=Path, default=DEFAULT_GRID)
    parser.add_argument("--fast-grid", type=Path, default=FAST_GRID)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best time of each side counts")
    parser.add_argument("--only", choices=("fast", "classical"), help="run one of the two grids")
    args = parser.parse_args()
    if args.only != "classical":
        wall, cpu = efficiency(args.fast_grid, args.rounds, "fast")
        print(f"dagster_efficiency_fast_cpu={cpu:.3f}", flush=True)
        print(f"dagster_efficiency_fast={wall:.3f}", flush=True)
    if args.only != "fast":
        wall, cpu = efficiency(args.grid, args.rounds, "classical")
        print(f"dagster_efficiency_cpu={cpu:.3f}")
        print(f"dagster_efficiency={wall:.3f}")


if __name__ == "__main__":
    main()
