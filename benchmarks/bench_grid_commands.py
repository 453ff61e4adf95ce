"""`grid plan` and `grid submit --detach` of the specification's 49,000-configuration grid (issue 14), as
whole CLI processes: each run's wall seconds and CPU seconds (user + system, the child's own
accounting), p50 over the runs; with `--baseline` another checkout runs in turn, run for run, and the
CPU ratio code / baseline is printed (CPU time holds on a loaded machine where wall time does not).

Scenarios (each run gets a fresh DAGSTER_HOME, artefact store and, for submit, an empty database):
plan_empty_sqlite (no project database), plan_full_pg (`--pg-database`, filled by bench_scale.py),
submit_sqlite and submit_pg (a new Dagster home: Dagster creates its storage inside the timing),
submit_sqlite_warm (a Dagster home whose storage exists, as where the daemon runs).

    python benchmarks/bench_grid_commands.py --baseline /work/before --pg-database bench_scale
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_scale

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("plan_empty_sqlite", "plan_full_pg", "submit_sqlite", "submit_pg", "submit_sqlite_warm")
PG_SERVER = bench_scale.PG_ADMIN.rsplit("/", 1)[0]


def run_env(scenario: str, code: Path, home: Path, bars: Path, pg_database: str) -> dict[str, str]:
    """The child's environment: fresh storage under `home`, the project database the scenario names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOREX_", "DAGSTER_HOME", "PYTHONPATH"))}
    env.update(PYTHONPATH=str(code), DAGSTER_HOME=str(home), FOREX_ARTIFACTS_DIR=str(home / "artifacts"),
               FOREX_SAMPLE_DATA=str(bars))
    (home / "artifacts").mkdir(parents=True, exist_ok=True)
    if scenario == "plan_full_pg":
        env["FOREX_DATABASE_URL"] = f"{PG_SERVER}/{pg_database}"
    elif scenario.endswith("_pg"):
        env["FOREX_DATABASE_URL"] = bench_scale.scratch_database(f"{pg_database}_commands")
    else:
        env["FOREX_DATABASE_URL"] = f"sqlite:///{home / 'forex.db'}"
    if scenario.endswith("_warm"):
        warm = "from forex_pipeline.cli.runner import dagster_instance; dagster_instance()"
        subprocess.run([sys.executable, "-c", warm], env=env, cwd=home, check=True, capture_output=True)
    return env


def run_once(scenario: str, code: Path, grid_file: Path, bars: Path, pg_database: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one CLI process; its setup is outside the timing."""
    home = Path(tempfile.mkdtemp(prefix="bench-grid-commands-"))
    try:
        env = run_env(scenario, code, home, bars, pg_database)
        argv = ["grid", "plan", str(grid_file)] if scenario.startswith("plan") else ["grid", "submit", "--detach", str(grid_file)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "forex_pipeline.cli", *argv], env=env, cwd=home, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            raise SystemExit(f"{scenario} with {code} failed ({out.returncode}):\n{out.stderr[-3000:]}")
        return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    finally:
        shutil.rmtree(home, ignore_errors=True)


def drop_database(name: str) -> None:
    """Drop the submit scenarios' scratch database."""
    from sqlalchemy import create_engine

    from forex_pipeline.store.db import parse_url

    admin = create_engine(parse_url(bench_scale.PG_ADMIN), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout measured")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout, run in turn with --code")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--pg-database", default="bench_scale", help="filled by bench_scale.py (plan_full_pg)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-grid-commands-"))
    grid_file, bars = bench_scale.grid_yaml(work / "grid.yaml"), bench_scale.grid_bars(work / "bars")
    codes = {"code": args.code, **({"baseline": args.baseline} if args.baseline else {})}
    print(f"load_at_start={os.getloadavg()[0]:.2f} code={args.code} baseline={args.baseline}", flush=True)
    for scenario in [s.strip() for s in args.scenarios.split(",") if s.strip()]:
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in codes}
        for _ in range(args.runs):
            for name, code in codes.items():
                runs[name].append(run_once(scenario, code, grid_file, bars, args.pg_database))
        for name, values in runs.items():
            prefix = f"{scenario}_{name}" if args.baseline else scenario
            print(f"{prefix}_wall_seconds_p50={statistics.median(v[0] for v in values):.3f}", flush=True)
            print(f"{prefix}_cpu_seconds_p50={statistics.median(v[1] for v in values):.3f}", flush=True)
        if args.baseline:
            ratios = [a[1] / b[1] for a, b in zip(runs["code"], runs["baseline"])]
            print(f"{scenario}_cpu_ratio_code_over_baseline_p50={statistics.median(ratios):.3f}", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    drop_database(f"{args.pg_database}_commands")
    print(f"load_at_end={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
