"""Loaders: generic OHLCV CSV/Parquet with zoned and naive stamps, HistData M1, the real sample files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from forex_pipeline.data.loaders import infer_timeframe, load_bars, sniff_format
from forex_pipeline.data.schema import assert_bar_frame
from forex_pipeline.data.validation import BarValidationError


def utc(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(stamps), tz="UTC")


def test_csv_with_z_suffix_is_utc(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2021-03-01T08:00:00Z,1.2,1.21,1.19,1.205,7\n"
        "2021-03-01T08:01:00Z,1.205,1.206,1.2,1.201,3\n"
    )
    result = load_bars(path)
    assert_bar_frame(result.bars)
    assert result.bars.index.equals(utc("2021-03-01 08:00", "2021-03-01 08:01"))
    assert result.bars.loc["2021-03-01 08:00", "high"] == 1.21
    assert result.bars["volume"].tolist() == [7.0, 3.0]
    assert result.report.rows_in == result.report.rows_out == 2


def test_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    path = tmp_path / "offset.csv"
    path.write_text("time,open,high,low,close\n2021-03-01 10:00:00+02:00,1,1,1,1\n2021-03-01 09:30:00+01:00,1,1,1,1\n")
    assert load_bars(path).bars.index.equals(utc("2021-03-01 08:00", "2021-03-01 08:30"))


@pytest.mark.parametrize(
    ("source_tz", "expected"),
    [
        ("UTC", ["2021-01-15 12:00", "2021-07-15 12:00"]),
        ("America/New_York", ["2021-01-15 17:00", "2021-07-15 16:00"]),
        ("Europe/Berlin", ["2021-01-15 11:00", "2021-07-15 10:00"]),
    ],
)
def test_naive_stamps_are_read_in_source_tz(tmp_path: Path, source_tz: str, expected: list[str]) -> None:
    path = tmp_path / "naive.csv"
    path.write_text("Date,Open,High,Low,Close\n2021-01-15 12:00:00,1,1,1,1\n2021-07-15 12:00:00,1,1,1,1\n")
    assert load_bars(path, source_tz=source_tz).bars.index.equals(utc(*expected))


def test_missing_volume_becomes_zero(tmp_path: Path) -> None:
    path = tmp_path / "novol.csv"
    path.write_text("timestamp,open,high,low,close\n2021-03-01T08:00:00Z,1.2,1.21,1.19,1.205\n")
    bars = load_bars(path).bars
    assert bars["volume"].tolist() == [0.0]
    assert bars["volume"].dtype == "float64"


def test_gzip_csv(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("timestamp,open,high,low,close,volume\n2021-03-01T08:00:00Z,1.2,1.21,1.19,1.205,7\n")
    assert load_bars(path).bars.index.equals(utc("2021-03-01 08:00"))


def test_nonexistent_local_time_is_a_timestamp_error(tmp_path: Path) -> None:
    path = tmp_path / "dst.csv"
    path.write_text("timestamp,open,high,low,close\n2021-03-14 01:59,1,1,1,1\n2021-03-14 02:30,1,1,1,1\n")
    with pytest.raises(BarValidationError, match="row 2: rule 'timestamp'.*2021-03-14 02:30"):
        load_bars(path, source_tz="America/New_York")


def test_parquet_with_aware_timestamp_column(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    frame = pd.DataFrame(
        {
            "Timestamp": pd.DatetimeIndex(["2021-03-01 10:00", "2021-03-01 10:15"], tz="Europe/Athens"),
            "open": [1.0, 1.1],
            "high": [1.2, 1.3],
            "low": [0.9, 1.0],
            "close": [1.1, 1.2],
            "volume": [5, 6],
        }
    )
    frame.to_parquet(path)
    bars = load_bars(path).bars
    assert bars.index.equals(utc("2021-03-01 08:00", "2021-03-01 08:15"))
    assert infer_timeframe(bars) == "15m"
    assert bars["volume"].dtype == "float64"


def test_parquet_with_naive_index_uses_source_tz(tmp_path: Path) -> None:
    path = tmp_path / "indexed.parquet"
    frame = pd.DataFrame(
        {"open": [1.0], "high": [1.2], "low": [0.9], "close": [1.1]},
        index=pd.DatetimeIndex(["2021-07-01 12:00"]),
    )
    frame.to_parquet(path)
    assert load_bars(path, source_tz="America/New_York").bars.index.equals(utc("2021-07-01 16:00"))


HISTDATA_LINES = [
    "20180101 170000;1.200370;1.201000;1.200370;1.201000;0",
    "20180101 170100;1.200830;1.200950;1.200170;1.200300;0",
    "20180702 120000;1.168000;1.168200;1.167900;1.168100;0",
]


def test_histdata_is_sniffed_and_read_as_fixed_est(tmp_path: Path) -> None:
    path = tmp_path / "DAT_ASCII_EURUSD_M1_2018.csv"
    path.write_text("\n".join(HISTDATA_LINES) + "\n")
    assert sniff_format(path) == "histdata"
    bars = load_bars(path).bars
    # EST without daylight saving: +5 h all year, also in July.
    assert bars.index.equals(utc("2018-01-01 22:00", "2018-01-01 22:01", "2018-07-02 17:00"))
    assert bars["open"].tolist() == [1.20037, 1.20083, 1.168]
    assert load_bars(path, format="histdata").bars.equals(bars)


def test_histdata_with_an_explicit_zone(tmp_path: Path) -> None:
    path = tmp_path / "hist.csv"
    path.write_text("\n".join(HISTDATA_LINES) + "\n")
    bars = load_bars(path, source_tz="America/New_York").bars
    assert bars.index[-1] == pd.Timestamp("2018-07-02 16:00", tz="UTC")


def test_histdata_bad_stamp_is_named(tmp_path: Path) -> None:
    path = tmp_path / "hist_bad.csv"
    path.write_text("\n".join([HISTDATA_LINES[0], "20180101 176000;1.2;1.2;1.2;1.2;0"]) + "\n")
    with pytest.raises(BarValidationError, match="row 2: rule 'timestamp'.*20180101 176000"):
        load_bars(path)


def test_generic_file_is_sniffed_as_ohlcv(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text("timestamp,open,high,low,close\n2021-03-01T08:00:00Z,1,1,1,1\n")
    assert sniff_format(path) == "ohlcv"


def test_semicolon_separated_generic_csv(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("timestamp;open;high;low;close\n2021-03-01T08:00:00Z;1.1;1.2;1.0;1.15\n")
    assert load_bars(path).bars["close"].tolist() == [1.15]


def test_missing_file_and_bad_format(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_bars(tmp_path / "nope.csv")
    path = tmp_path / "g.csv"
    path.write_text("timestamp,open,high,low,close\n2021-03-01T08:00:00Z,1,1,1,1\n")
    with pytest.raises(ValueError, match="format 'xls'"):
        load_bars(path, format="xls")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="source_tz 'Mars/Olympus' is not a known time zone"):
        load_bars(path, source_tz="Mars/Olympus")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("ragged.csv", "timestamp,open,high,low,close\n2021-03-01T08:00:00Z,1,1,1,1\n2021-03-01T08:01:00Z,1,1,1,1,1,1\n"),
        ("empty.csv", ""),
        ("broken.parquet", "PAR1 not really parquet"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=f"{name}: cannot be read"):
        load_bars(path)


def test_infer_timeframe_refuses_odd_spacing() -> None:
    index = pd.date_range("2021-01-04", periods=5, freq="7min", tz="UTC", name="timestamp")
    bars = pd.DataFrame({c: 1.0 for c in ("open", "high", "low", "close", "volume")}, index=index)
    with pytest.raises(ValueError, match="7 minutes"):
        infer_timeframe(bars)
    with pytest.raises(ValueError, match="at least 2"):
        infer_timeframe(bars.iloc[:1])


def test_real_eurusd_m1(eurusd_m1: pd.DataFrame) -> None:
    assert_bar_frame(eurusd_m1)
    assert len(eurusd_m1) == 745_077
    assert eurusd_m1.index[0] == pd.Timestamp("2018-01-01T22:00:00Z")
    assert eurusd_m1.index[-1] == pd.Timestamp("2019-12-31T21:59:00Z")
    assert infer_timeframe(eurusd_m1) == "1m"
    assert (eurusd_m1["volume"] == 0).all()
    assert eurusd_m1.iloc[0].tolist() == [1.20037, 1.201, 1.20037, 1.201, 0.0]


@pytest.mark.parametrize(
    ("name", "rows", "first", "last", "timeframe"),
    [
        ("EURUSD_M15.csv.gz", 24_804, "2025-02-16T22:00:00Z", "2026-02-13T21:45:00Z", "15m"),
        ("GBPNZD_H1.csv.gz", 53_800, "2015-01-02T07:00:00Z", "2023-10-12T10:00:00Z", "1h"),
    ],
)
def test_real_coarser_files(fx_dir: Path, name: str, rows: int, first: str, last: str, timeframe: str) -> None:
    bars = load_bars(fx_dir / name).bars
    assert len(bars) == rows
    assert bars.index[0] == pd.Timestamp(first) and bars.index[-1] == pd.Timestamp(last)
    assert infer_timeframe(bars) == timeframe


# ---------------------------------------------------------------- the span of a bar file, without loading it


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_bar_file_span_equals_the_first_and_last_bars_load_bars_reads(tmp_path: Path, suffix: str) -> None:
    from forex_pipeline.data.bar_store import write_bars
    from forex_pipeline.data.loaders import bar_file_span
    from forex_pipeline.data.synthetic import generate_synthetic_bars

    bars = generate_synthetic_bars(9, seed=3, start="2021-06-02 13:00").bars
    path = tmp_path / f"bars{suffix}"
    if suffix == ".parquet":
        write_bars(bars, path)
    else:
        text = bars.reset_index().assign(timestamp=lambda f: f["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(index=False)
        path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    loaded = load_bars(path).bars
    assert bar_file_span(path) == (loaded.index[0], loaded.index[-1])


def test_bar_file_span_reads_histdata_stamps_and_naive_ones_in_the_source_zone(tmp_path: Path) -> None:
    from forex_pipeline.data.loaders import bar_file_span

    histdata = tmp_path / "DAT_ASCII_EURUSD_M1.csv"
    histdata.write_text("20190102 170000;1.1;1.2;1.0;1.1;0\n20190102 170100;1.1;1.2;1.0;1.1;0\n20190103 090500;1.1;1.2;1.0;1.1;0\n")
    assert bar_file_span(histdata) == (load_bars(histdata).bars.index[0], load_bars(histdata).bars.index[-1])
    assert bar_file_span(histdata) == (pd.Timestamp("2019-01-02 22:00", tz="UTC"), pd.Timestamp("2019-01-03 14:05", tz="UTC"))
    naive = tmp_path / "naive.csv"
    naive.write_text("Date;Open;High;Low;Close\n2021-07-01 10:00;1;1;1;1\n2021-07-01 10:01;1;1;1;1\n\n")
    assert bar_file_span(naive, source_tz="Europe/Berlin") == (
        pd.Timestamp("2021-07-01 08:00", tz="UTC"), pd.Timestamp("2021-07-01 08:01", tz="UTC"))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"timestamp,open,high,low,close\n", "no data rows"),
        (b"timestamp,open,high,low,close\nyesterday,1,1,1,1\n", "not a valid time"),
        (b"open,high,low,close\n1,1,1,1\n", "cannot read the first and last bars"),
        (gzip.compress(b"timestamp,open,high,low,close\n2021-01-01,1,1,1,1\n" * 50, mtime=0)[:-30], "cannot read the first and last bars"),
    ],
)
def test_bar_file_span_refuses_an_unreadable_file_naming_it(tmp_path: Path, content: bytes, message: str) -> None:
    from forex_pipeline.data.loaders import BarFileError, bar_file_span

    path = tmp_path / "bad.csv.gz" if content[:2] == b"\x1f\x8b" else tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(BarFileError, match=message) as refused:
        bar_file_span(path)
    assert str(path) in str(refused.value)


def test_bar_file_span_of_the_real_sample_file_matches_its_loaded_bars(eurusd_m1_path: Path, eurusd_m1: pd.DataFrame) -> None:
    from forex_pipeline.data.loaders import bar_file_span

    assert bar_file_span(eurusd_m1_path) == (eurusd_m1.index[0], eurusd_m1.index[-1])
