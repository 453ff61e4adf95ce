"""Every CLI call pays for what it imports: `--help` loads no data library at all, the reading commands
(`bests`, `history`, `queue status`) never load dagster, torch, lightgbm, scikit-learn or scipy, and serve
their rows from SQLAlchemy Core without pandas, numpy, pyarrow or a migration check (alembic); `grid plan`
checks every family's hyperparameters and the bars' span without loading a training stack or dagster."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("dagster", "torch", "lightgbm", "sklearn", "scipy", "hmmlearn", "numba", "matplotlib")
DATA = ("pandas", "numpy", "sqlalchemy", "pyarrow", "pydantic")

PROBE = """
import json, sys
from forex_pipeline.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    print(f"CODE={exc.code}")
loaded = sorted({name.split('.')[0] for name in sys.modules})
print("LOADED=" + json.dumps(loaded))
"""


def loaded_by(*argv: str, env: dict | None = None, exit_code: int | None = None) -> set[str]:
    """The top-level packages a CLI call imported (and, when `exit_code` is given, that it exited so)."""
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120, env=env)
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("LOADED=")]
    assert line, result.stdout[-2000:] + result.stderr[-2000:]
    if exit_code is not None:
        assert f"CODE={exit_code}" in result.stdout.splitlines(), result.stdout[-2000:] + result.stderr[-2000:]
    return set(json.loads(line[-1].removeprefix("LOADED=")))


def test_help_loads_no_data_library() -> None:
    loaded = loaded_by("--help")
    assert not loaded & set(HEAVY + DATA), sorted(loaded & set(HEAVY + DATA))


@pytest.mark.parametrize("argv", [("bests",), ("history",), ("queue", "status", "1"), ("grid", "--help"), ("data", "--help")])
def test_reading_commands_load_no_heavy_library(grid_env: Path, argv: tuple[str, ...]) -> None:
    import os

    loaded = loaded_by(*argv, env=dict(os.environ))
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


FRAME_LIBRARIES = ("pandas", "numpy", "pyarrow", "alembic")


@pytest.mark.parametrize("argv", [("bests",), ("bests", "--format", "json"), ("history",), ("history", "--format", "csv"),
                                  ("queue", "status", "1")])
def test_reading_commands_load_no_frame_library(grid_env: Path, argv: tuple[str, ...]) -> None:
    import os

    loaded = loaded_by(*argv, env=dict(os.environ))   # grid_env migrated the database: the commands read it for real
    assert not loaded & set(HEAVY + FRAME_LIBRARIES), sorted(loaded & set(HEAVY + FRAME_LIBRARIES))


def test_grid_plan_of_every_family_loads_no_training_stack(grid_env: Path, tmp_path: Path) -> None:
    """The PyTorch families' hyperparameters are checked from their rules alone; the synthetic bars' span
    needs no signal filter."""
    import copy
    import os
    import socket
    from datetime import datetime, timezone

    import yaml

    from forex_pipeline.grid.probe import PROBE_FILE, MachineProbe, load_per_cpu, write_probe
    from forex_pipeline.settings import get_settings
    from tests.support import TINY_GRID

    grid = copy.deepcopy(TINY_GRID)
    grid["model_specs"].update(model_types=["ridge", "lightgbm", "lightning", "diffusion-ddim", "sssd"],
                               encoders=["none", "autoencoder"], encoder_dims=[4], hyperparameters={"lightning": [{"hidden": 32}]})
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    # this machine's probe is measured once and cached for hours (grid/probe.py, it trains a ridge on
    # purpose); with a fresh one cached, what plan loads is its own
    write_probe(Path(get_settings().artifacts_dir) / PROBE_FILE,
                MachineProbe(0.29, 1.0, socket.gethostname(), datetime.now(timezone.utc).isoformat(timespec="seconds"), load_per_cpu()))
    loaded = loaded_by("grid", "plan", str(path), env=dict(os.environ), exit_code=0)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
