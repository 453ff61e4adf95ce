"""Layer contracts (pyproject.toml [tool.importlinter]): checked with import-linter on every run.

The shells (cli, dagster_defs) sit above the queue, which sits above the pipeline, the grid, the
store and the plain-Python core; nothing imports upward, no package has an import cycle, and the
core never imports dagster.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_hold() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
         "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "3 kept, 0 broken" in result.stdout


def test_contracts_cover_every_top_level_module() -> None:
    """A new top-level package or module must be placed in the layers contract, not slip past it."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layered = {
        name.strip().removeprefix("forex_pipeline.")
        for contract in config["contracts"] if contract["type"] == "layers"
        for layer in contract["layers"] for name in layer.split("|")
    }
    present = {p.stem for p in (ROOT / "forex_pipeline").iterdir() if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert present - {"__init__"} <= layered, sorted(present - {"__init__"} - layered)
