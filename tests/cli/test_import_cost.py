"""Every CLI call pays for what it imports: `--help` loads no data library at all, the reading commands
(`bests`, `history`, `queue status`) never load dagster, torch, lightgbm, scikit-learn or scipy, and serve
their rows from SQLAlchemy Core without pandas, numpy, pyarrow or a migration check (alembic)."""

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
except SystemExit:
    pass
loaded = sorted({name.split('.')[0] for name in sys.modules})
print("LOADED=" + json.dumps(loaded))
"""


def loaded_by(*argv: str, env: dict | None = None) -> set[str]:
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120, env=env)
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("LOADED=")]
    assert line, result.stdout[-2000:] + result.stderr[-2000:]
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
