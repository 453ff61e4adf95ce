"""`grid plan` and `grid submit` refuse, before anything is written, a grid the data cannot serve: a
window longer than the symbol's bars, an as_of outside them, an encoder dimension above the feature count."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.cli.test_hostile_input import run_cli, storage_listing
from tests.support import TINY_GRID


def _grid_file(tmp_path: Path, **changes: dict) -> Path:
    grid = copy.deepcopy(TINY_GRID)
    for section, values in changes.items():
        grid[section].update(values)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


@pytest.mark.parametrize("command", [("grid", "plan"), ("grid", "submit")])
@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"feature_sets": {"days_history": [150, 400]}},
         "feature_sets.days_history[1] = 400 with feature_sets.symbols[0] SYNTH and feature_sets.as_of 2021-01-05 00:00: "
         "the window starts 2019-12-02 00:00, but SYNTH has bars from 2020-01-06 00:00 to 2021-01-04 23:59 UTC"),
        ({"feature_sets": {"as_of": "2020-01-02T00:00:00Z"}},
         "feature_sets.as_of 2020-01-02 00:00 with feature_sets.symbols[0] SYNTH: SYNTH has bars from 2020-01-06 00:00"),
        ({"model_specs": {"encoders": ["pca"], "encoder_dims": [3, 64]}},
         "model_specs.encoder_dims[1] = 64 with model_specs.encoders pca: more than the"),
    ],
    ids=["days_history", "as_of", "encoder_dims"],
)
def test_a_grid_the_data_cannot_serve_is_refused_and_nothing_is_written(
    grid_env: Path, tmp_path: Path, command: tuple[str, str], changes: dict, expected: str
) -> None:
    path = _grid_file(tmp_path, **changes)
    before = storage_listing(grid_env)
    code, out, stderr = run_cli(*command, str(path), *(["--no-db"] if command[1] == "plan" else ["--no-run"]))
    assert code == 2 and "Traceback" not in stderr and out == "", (code, out, stderr)
    assert expected in " ".join(stderr.split()), stderr
    assert stderr.startswith(f"invalid grid spec {path}: 1 problem(s)")
    assert storage_listing(grid_env) == before


def test_a_window_the_bars_cover_is_planned(grid_env: Path, tmp_path: Path) -> None:
    """365 days ending 2021-01-05 start on 2020-01-06 00:00 minus one day: inside the long-weekend margin."""
    code, out, stderr = run_cli("grid", "plan", str(_grid_file(tmp_path, feature_sets={"days_history": [150, 365]})), "--no-db")
    assert code == 0, stderr
    assert "model configurations" in out
