"""Validation rules: each bad file is rejected with file, row, value and rule; drop policy drops and counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.data.loaders import load_bars, timestamp_parser
from forex_pipeline.data.sources import import_bar_file
from forex_pipeline.data.validation import RULES, BarValidationError, validate_bars
from forex_pipeline.settings import ValidationSettings, get_settings

HEADER = "timestamp,open,high,low,close,volume"
GOOD = [
    "2020-01-06T00:00:00Z,1.1000,1.1010,1.0990,1.1005,10",
    "2020-01-06T00:01:00Z,1.1005,1.1012,1.1001,1.1008,11",
]
ALL_DROP = ValidationSettings(
    timestamp="drop", duplicates="drop", order="drop", non_positive="drop", high_low="drop", nan="drop",
    price_range="drop", time_range="drop",
)

# rule -> (bad data row inserted as data row 3, text expected in the message)
BAD_ROWS: dict[str, tuple[str, str]] = {
    "timestamp": ("2020-13-45T99:00:00Z,1.1,1.2,1.0,1.1,1", "'2020-13-45T99:00:00Z'"),
    "nan": ("2020-01-06T00:02:00Z,1.1,,1.0,1.1,1", "high=nan"),
    "non_positive": ("2020-01-06T00:02:00Z,1.1,1.2,-1.0,1.1,1", "low=-1.0"),
    "high_low": ("2020-01-06T00:02:00Z,1.1,1.05,1.0,1.1,1", "high=1.05"),
    "duplicates": ("2020-01-06T00:01:00Z,1.1,1.2,1.0,1.1,1", "repeats row 2"),
    "order": ("2020-01-05T23:59:00Z,1.1,1.2,1.0,1.1,1", "not after row 2"),
}


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize("rule", sorted(BAD_ROWS))
def test_reject_names_file_row_value_and_rule(tmp_path: Path, rule: str) -> None:
    bad, shown = BAD_ROWS[rule]
    path = write_csv(tmp_path / f"bad_{rule}.csv", [*GOOD, bad, "2020-01-06T00:05:00Z,1.1,1.2,1.0,1.1,1"])
    artifacts = tmp_path / "artifacts"
    with pytest.raises(BarValidationError) as info:
        import_bar_file(path, "EURUSD", artifacts)
    message = str(info.value)
    assert str(path) in message
    assert "row 3" in message
    assert f"'{rule}'" in message
    assert shown in message
    assert info.value.rule == rule and info.value.row == 3
    assert not artifacts.exists() or not any(artifacts.rglob("*"))


def test_high_below_low_is_a_high_low_violation(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "inverted.csv", [*GOOD, "2020-01-06T00:02:00Z,1.1,1.1,1.2,1.1,1"])
    with pytest.raises(BarValidationError, match="'high_low'") as info:
        load_bars(path)
    assert info.value.row == 3


def test_low_above_min_open_close_is_rejected(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "low.csv", ["2020-01-06T00:00:00Z,1.10,1.20,1.15,1.18,1"])
    with pytest.raises(BarValidationError, match="'high_low'"):
        load_bars(path)


def test_infinite_price_is_a_nan_violation(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "inf.csv", [*GOOD, "2020-01-06T00:02:00Z,1.1,inf,1.0,1.1,1"])
    with pytest.raises(BarValidationError, match="row 3: rule 'nan'.*high=inf"):
        load_bars(path)


def test_negative_volume_is_non_positive(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "volume.csv", [*GOOD, "2020-01-06T00:02:00Z,1.1,1.2,1.0,1.1,-3"])
    with pytest.raises(BarValidationError, match="'non_positive'.*volume=-3"):
        load_bars(path)


def test_non_numeric_price_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "text.csv", [*GOOD, "2020-01-06T00:02:00Z,abc,1.2,1.0,1.1,1"])
    with pytest.raises(BarValidationError, match="'nan'.*open='abc'"):
        load_bars(path)


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("timestamp,open,hi,low,close,volume", "['high']"),
        ("when,open,high,low,close", "timestamp"),
        ("timestamp,open,high,low", "['close']"),
    ],
)
def test_missing_or_misnamed_columns(tmp_path: Path, header: str, missing: str) -> None:
    path = write_csv(tmp_path / "columns.csv", ["2020-01-06T00:00:00Z,1.1,1.2,1.0"], header=header)
    artifacts = tmp_path / "artifacts"
    with pytest.raises(BarValidationError) as info:
        import_bar_file(path, "EURUSD", artifacts, validation=ALL_DROP)
    message = str(info.value)
    assert str(path) in message and "'missing_columns'" in message and missing in message
    assert "header" in message
    assert not artifacts.exists()


def test_two_timestamp_columns_are_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "two.csv", ["2020-01-06,00:00,1.1,1.2,1.0,1.1"], header="date,time,open,high,low,close")
    with pytest.raises(BarValidationError, match="several timestamp columns"):
        load_bars(path)


def test_column_names_are_case_insensitive(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "case.csv", GOOD, header="DateTime,Open,HIGH,low,Close,Volume")
    bars = load_bars(path).bars
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert len(bars) == 2


def test_drop_policy_drops_each_bad_row_and_counts_it(tmp_path: Path) -> None:
    rows = [
        GOOD[0],
        "garbage,1.1,1.2,1.0,1.1,1",
        GOOD[1],
        "2020-01-06T00:02:00Z,1.1,,1.0,1.1,1",
        "2020-01-06T00:03:00Z,0,1.2,1.0,1.1,1",
        "2020-01-06T00:04:00Z,1.1,1.05,1.0,1.1,1",
        "2020-01-06T00:01:00Z,1.2,1.3,1.1,1.2,1",
        "2020-01-06T00:00:30Z,1.2,1.3,1.1,1.2,1",
        "2020-01-06T00:05:00Z,1.1000,1.1030,1.0980,1.1020,12",
        "1900-01-06T00:06:00Z,1.1,1.2,1.0,1.1,1",
        "2020-01-06T00:07:00Z,1e308,1e308,1e308,1e308,1",
    ]
    path = write_csv(tmp_path / "mixed.csv", rows)
    result = load_bars(path, validation=ALL_DROP)
    report = result.report
    assert report.rows_in == 11 and report.rows_out == 3
    assert report.dropped == {
        "missing_columns": 0, "timestamp": 1, "duplicates": 1, "order": 1, "non_positive": 1, "high_low": 1, "nan": 1,
        "price_range": 1, "time_range": 1,
    }
    assert report.total_dropped == 8
    assert set(report.dropped) == set(RULES)
    expected_times = pd.DatetimeIndex(["2020-01-06 00:00", "2020-01-06 00:01", "2020-01-06 00:05"], tz="UTC")
    assert result.bars.index.equals(expected_times)
    assert result.bars["close"].tolist() == [1.1005, 1.1008, 1.1020]
    assert "dropped: timestamp=1" in report.summary()


def test_rejecting_rule_after_a_dropping_rule(tmp_path: Path) -> None:
    rows = [GOOD[0], "2020-01-06T00:01:00Z,1.1,,1.0,1.1,1", "2020-01-06T00:02:00Z,1.1,1.05,1.0,1.1,1"]
    path = write_csv(tmp_path / "per_rule.csv", rows)
    with pytest.raises(BarValidationError) as info:
        load_bars(path, validation=ValidationSettings(nan="drop"))
    assert info.value.rule == "high_low" and info.value.row == 3
    result = load_bars(path, validation=ValidationSettings(nan="drop", high_low="drop"))
    assert result.report.dropped["nan"] == 1 and result.report.dropped["high_low"] == 1
    assert len(result.bars) == 1


def test_count_of_violations_is_reported(tmp_path: Path) -> None:
    rows = [GOOD[0], *[f"2020-01-06T00:0{i}:00Z,1.1,1.05,1.0,1.1,1" for i in range(1, 5)]]
    path = write_csv(tmp_path / "many.csv", rows)
    with pytest.raises(BarValidationError, match="4 rows break this rule") as info:
        load_bars(path)
    assert info.value.row == 2 and info.value.count == 4


def test_default_settings_reject_everything() -> None:
    policy = get_settings().data.validation
    assert all(getattr(policy, rule) == "reject" for rule in RULES)


def test_validate_bars_accepts_an_in_memory_table() -> None:
    raw = pd.DataFrame(
        {
            "time": ["2020-01-06 00:00", "2020-01-06 00:01"],
            "open": [1.0, 1.0],
            "high": [1.1, 1.2],
            "low": [0.9, 0.95],
            "close": [1.05, 1.1],
        }
    )
    bars, report = validate_bars(raw, source="memory", parse_timestamps=timestamp_parser("America/New_York"))
    assert report.rows_out == 2
    assert bars.index[0] == pd.Timestamp("2020-01-06 05:00", tz="UTC")
    default_bars, _ = validate_bars(raw, source="memory")
    assert default_bars.index[0] == pd.Timestamp("2020-01-06 00:00", tz="UTC")
    stored, _ = validate_bars(default_bars.reset_index(), source="memory")
    pd.testing.assert_frame_equal(stored, default_bars)
    np.testing.assert_array_equal(bars["volume"].to_numpy(), [0.0, 0.0])
    assert str(bars.index.tz) == "UTC" and bars.index.name == "timestamp"
