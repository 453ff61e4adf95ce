"""Dagster's orchestration overhead on a grid: `forex-pipeline grid submit` (as a user runs it, one
Dagster run per batch of models) against a plain Python loop over the same configurations calling
the core library (`two_phase.run_configuration`: features, training, 135 backtests, keep-or-delete).

Both sides start from empty storage (bars, features and models are built inside the timing).
Last line: dagster_efficiency=<plain_seconds/dagster_seconds> (1.0 = no overhead; target >= 0.8).

    python benchmarks/bench_orchestration.py [--grid examples/grids/classical_24.yaml]
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
DEFAULT_GRID = ROOT / "examples" / "grids" / "classical_24.yaml"


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


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return seconds, out.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=Path, default=DEFAULT_GRID)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best time of each side counts")
    args = parser.parse_args()
    plain_times, dagster_times = [], []
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="bench-orch-") as tmp:
            seconds, out = timed([sys.executable, "-c", PLAIN_LOOP, str(args.grid)], storage_env(Path(tmp) / "plain"))
            plain_times.append(seconds)
            print(f"round={round_} {out.strip().splitlines()[-1]} plain_seconds={seconds:.2f} (process start to finish)")
            seconds, _ = timed(
                [sys.executable, "-m", "forex_pipeline.cli", "grid", "submit", str(args.grid)], storage_env(Path(tmp) / "dagster")
            )
            dagster_times.append(seconds)
            print(f"round={round_} dagster_seconds={seconds:.2f} (forex-pipeline grid submit, start to finish)")
    print(f"plain_seconds_best={min(plain_times):.2f} dagster_seconds_best={min(dagster_times):.2f}")
    print(f"dagster_efficiency={min(plain_times) / min(dagster_times):.3f}")


if __name__ == "__main__":
    main()
