"""`forex-pipeline data import|synth|list` through typer's CliRunner, in isolated storage."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from forex_pipeline.cli.data import app
from forex_pipeline.data.bar_store import read_bars, read_regimes
from forex_pipeline.data.synthetic import generate_synthetic_bars

runner = CliRunner()
GOOD = (
    "timestamp,open,high,low,close,volume\n"
    "2021-03-01T08:00:00Z,1.2,1.21,1.19,1.205,7\n"
    "2021-03-01T08:01:00Z,1.205,1.206,1.2,1.201,3\n"
    "2021-03-01T08:02:00Z,1.201,1.204,1.2,1.203,4\n"
)


def artifacts(home: Path) -> Path:
    return home / "artifacts"


def test_import_good_file(isolated_storage: Path, tmp_path: Path) -> None:
    path = tmp_path / "good.csv"
    path.write_text(GOOD)
    result = runner.invoke(app, ["import", str(path), "--symbol", "EUR/USD"])
    assert result.exit_code == 0, result.output
    assert "3 rows" in result.output and "2021-03-01 08:00:00+00:00" in result.output
    assert "2021-03-01 08:02:00+00:00" in result.output and "dropped: none" in result.output
    stored = read_bars(artifacts(isolated_storage) / "imports" / "EURUSD.parquet")
    assert stored["close"].tolist() == [1.205, 1.201, 1.203]


def test_import_bad_file_exits_non_zero_and_writes_nothing(isolated_storage: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(GOOD + "2021-03-01T07:59:00Z,1.2,1.21,1.19,1.205,7\n")
    result = runner.invoke(app, ["import", str(path), "--symbol", "EURUSD"])
    assert result.exit_code == 2
    assert "row 4" in result.output and "'order'" in result.output and "bad.csv" in result.output
    assert not artifacts(isolated_storage).exists() or not any(artifacts(isolated_storage).rglob("*.parquet"))


def test_import_keeps_the_previous_import_when_the_new_file_is_bad(isolated_storage: Path, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD)
    bad.write_text("timestamp,open,high,low\n2021-03-01T08:00:00Z,1,1,1\n")
    assert runner.invoke(app, ["import", str(good), "--symbol", "EURUSD"]).exit_code == 0
    target = artifacts(isolated_storage) / "imports" / "EURUSD.parquet"
    before = target.read_bytes()
    result = runner.invoke(app, ["import", str(bad), "--symbol", "EURUSD"])
    assert result.exit_code == 2 and "missing_columns" in result.output
    assert target.read_bytes() == before


def test_import_histdata_with_dropped_rows(isolated_storage: Path, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "DAT_ASCII_EURUSD_M1_2018.csv"
    path.write_text(
        "20180101 170000;1.200370;1.201000;1.200370;1.201000;0\n"
        "20180101 170100;1.200830;1.200950;1.200170;1.200300;0\n"
        "20180101 170100;1.200830;1.200950;1.200170;1.200300;0\n"
    )
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("data:\n  validation:\n    duplicates: drop\n")
    monkeypatch.setenv("FOREX_SETTINGS", str(settings_file))
    result = runner.invoke(app, ["import", str(path), "--symbol", "EURUSD", "--format", "histdata"])
    assert result.exit_code == 0, result.output
    assert "'duplicates': 1" in result.output
    stored = read_bars(artifacts(isolated_storage) / "imports" / "EURUSD.parquet")
    assert stored.index[0] == pd.Timestamp("2018-01-01 22:00", tz="UTC") and len(stored) == 2


def test_import_rejects_bad_symbol_and_format(isolated_storage: Path, tmp_path: Path) -> None:
    path = tmp_path / "good.csv"
    path.write_text(GOOD)
    assert runner.invoke(app, ["import", str(path), "--symbol", "../x"]).exit_code != 0
    assert runner.invoke(app, ["import", str(path), "--symbol", "EURUSD", "--format", "xls"]).exit_code != 0
    assert not artifacts(isolated_storage).exists()


def test_synth_writes_bars_and_labels(isolated_storage: Path) -> None:
    result = runner.invoke(app, ["synth", "--symbol", "SYNTH", "--days", "10", "--seed", "3"])
    assert result.exit_code == 0, result.output
    folder = artifacts(isolated_storage) / "imports"
    bars = read_bars(folder / "SYNTH.parquet")
    labels = read_regimes(folder / "SYNTH.regimes.parquet")
    expected = generate_synthetic_bars(10, seed=3)
    pd.testing.assert_frame_equal(bars, expected.bars)
    assert labels.index.equals(bars.index)
    assert labels.tolist() == expected.regimes.tolist()


def test_list_shows_imports(isolated_storage: Path, tmp_path: Path) -> None:
    empty = runner.invoke(app, ["list"])
    assert empty.exit_code == 0 and "no imported symbols" in empty.output
    path = tmp_path / "good.csv"
    path.write_text(GOOD)
    runner.invoke(app, ["import", str(path), "--symbol", "GBP/USD"])
    runner.invoke(app, ["synth", "--symbol", "SYNTH", "--days", "5", "--seed", "1"])
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert set(rows) == {"GBPUSD", "SYNTH"}
    assert "3" in rows["GBPUSD"].split("│")[2] and "1m" in rows["GBPUSD"]
    assert "2021-03-01 08:00:00+00:00" in rows["GBPUSD"]
    assert "yes" in rows["SYNTH"] and "no" in rows["GBPUSD"]
