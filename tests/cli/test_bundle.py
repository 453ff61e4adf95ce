"""`forex-pipeline bundle export / show / run` through the console entry point (the one error path)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest

from forex_pipeline.pipeline.bundle import POSITION_COLUMNS
from tests.support import run_cli, tiny_bests


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory):
    with tiny_bests(tmp_path_factory.mktemp("cli-bundle"), n_configurations=1) as seeded:
        yield seeded


def test_export_show_and_run_a_bundle(seeded, tmp_path: Path) -> None:
    archive = tmp_path / "bests.zip"
    code, out, err = run_cli("bundle", "export", "-o", str(archive))
    assert code == 0, err
    assert f"wrote {archive}: SYNTH 1h" in out and archive.is_file()
    code, out, _ = run_cli("bundle", "show", str(archive))
    assert code == 0 and "checksums verified" in out and "regime" in out
    positions = tmp_path / "positions.csv"
    code, out, err = run_cli("bundle", "run", str(archive), "--from", "2020-12-01", "-o", str(positions))
    assert code == 0, err
    frame = pd.read_csv(positions, index_col="timestamp", parse_dates=True)
    assert list(frame.columns) == list(POSITION_COLUMNS)
    assert frame.index[0] >= pd.Timestamp("2020-12-01", tz="UTC") and set(frame["position"].unique()) <= {-1, 0, 1}
    assert f"{len(frame)} bars of synthetic SYNTH bars" in out


def test_a_tampered_bundle_and_a_market_without_bests_exit_2_with_the_reason(seeded, tmp_path: Path) -> None:
    archive = tmp_path / "bests.zip"
    assert run_cli("bundle", "export", "-o", str(archive))[0] == 0
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(archive) as old, zipfile.ZipFile(tampered, "w") as new:
        for name in old.namelist():
            data = old.read(name)
            new.writestr(name, data[:-1] + bytes([data[-1] ^ 1]) if name.startswith("models/") else data)
    code, _, err = run_cli("bundle", "run", str(tampered))
    assert code == 2 and "modified or corrupted" in err and "Traceback" not in err
    code, _, err = run_cli("bundle", "export", "-o", str(tmp_path / "none.zip"), "--symbol", "EURUSD")
    assert code == 2 and "no kept regime best for EURUSD" in err and not (tmp_path / "none.zip").exists()
