"""Bar files: atomic writes, normalised paths, and where a symbol's raw bars come from."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from forex_pipeline import io as atomic_io
from forex_pipeline.data.bar_store import (
    bars_path,
    import_path,
    raw_bars_path,
    read_bars,
    read_regimes,
    regimes_path,
    write_bars,
    write_regimes,
)
from forex_pipeline.data.sources import (
    SYNTH_DAYS,
    import_bar_file,
    load_raw_bars,
    resolve_source,
)
from forex_pipeline.data.synthetic import generate_synthetic_bars
from forex_pipeline.settings import get_settings


@pytest.fixture(scope="module")
def small():
    return generate_synthetic_bars(3, seed=2)


def test_round_trip(tmp_path: Path, small) -> None:
    path = write_bars(small.bars, tmp_path / "a" / "b.parquet")
    pd.testing.assert_frame_equal(read_bars(path), small.bars)
    labels = write_regimes(small.regimes, tmp_path / "labels.parquet")
    pd.testing.assert_series_equal(read_regimes(labels), small.regimes, check_names=False)


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, small, monkeypatch) -> None:
    path = tmp_path / "bars.parquet"
    write_bars(small.bars, path)
    before = path.read_bytes()

    def broken_to_parquet(self: pd.DataFrame, target, **kwargs) -> None:
        Path(target).write_bytes(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken_to_parquet)
    with pytest.raises(OSError, match="disk full"):
        write_bars(small.bars.iloc[:10], path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["bars.parquet"]


def test_write_goes_through_a_temporary_name(tmp_path: Path, small, monkeypatch) -> None:
    renames: list[tuple[Path, Path]] = []
    real_replace = atomic_io.os.replace

    def spy(src, dst) -> None:
        renames.append((Path(src), Path(dst)))
        assert not Path(dst).exists()
        real_replace(src, dst)

    monkeypatch.setattr(atomic_io.os, "replace", spy)
    target = tmp_path / "bars.parquet"
    write_bars(small.bars, target)
    assert len(renames) == 1
    assert renames[0][1] == target and renames[0][0].parent == tmp_path and renames[0][0] != target


def test_write_refuses_a_non_bar_frame(tmp_path: Path, small) -> None:
    naive = small.bars.tz_localize(None)
    with pytest.raises(ValueError, match="UTC"):
        write_bars(naive, tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_paths_normalise_symbols(tmp_path: Path) -> None:
    assert raw_bars_path(tmp_path, "EUR/USD") == tmp_path / "bars" / "raw" / "EURUSD.parquet"
    assert bars_path(tmp_path, "eur/usd", "1h") == tmp_path / "bars" / "EURUSD" / "1h.parquet"
    assert import_path(tmp_path, "gbp_usd") == tmp_path / "imports" / "GBPUSD.parquet"
    assert regimes_path(tmp_path, "synth") == tmp_path / "imports" / "SYNTH.regimes.parquet"
    with pytest.raises(ValueError, match="not a market name"):
        raw_bars_path(tmp_path, "../../etc/passwd")
    with pytest.raises(ValueError, match="timeframe '2h'"):
        bars_path(tmp_path, "EURUSD", "2h")


def write_sample(folder: Path, name: str, stamps: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    lines = ["timestamp,open,high,low,close,volume", *(f"{s},1.1,1.2,1.0,1.15,1" for s in stamps)]
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def test_source_order_import_then_finest_sample(tmp_path: Path) -> None:
    samples = tmp_path / "fx"
    write_sample(samples, "EURUSD_H1.csv.gz", ["2021-03-01T00:00:00Z", "2021-03-01T01:00:00Z"])
    m15 = write_sample(samples, "EURUSD_M15.csv.gz", ["2021-03-01T00:00:00Z", "2021-03-01T00:15:00Z"])
    artifacts = tmp_path / "artifacts"
    source = resolve_source("EUR/USD", artifacts, samples)
    assert (source.kind, source.path, source.timeframe) == ("sample", m15, "15m")
    imported = import_bar_file(m15, "EUR/USD", artifacts)
    source = resolve_source("EURUSD", artifacts, samples)
    assert (source.kind, source.path) == ("import", imported.path)
    assert imported.path == artifacts / "imports" / "EURUSD.parquet"


def test_unknown_symbol_lists_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        resolve_source("GBPNZD", tmp_path / "artifacts", tmp_path / "fx")
    message = str(info.value)
    assert "GBPNZD" in message and str(tmp_path / "artifacts" / "imports" / "GBPNZD.parquet") in message
    assert str(tmp_path / "fx") in message and "SYNTH" in message


def test_synth_is_the_fallback_for_synth_only(tmp_path: Path) -> None:
    source = resolve_source("synth", tmp_path, None)
    assert source.kind == "synthetic" and source.timeframe == "1m"


def test_load_raw_bars_from_each_source(isolated_storage: Path, fx_dir: Path) -> None:
    settings = get_settings()
    sample = load_raw_bars("EUR/USD", settings, fx_dir)
    assert sample.timeframe == "1m" and len(sample.bars) == 745_077
    assert "EURUSD_M1.csv.gz" in sample.source
    gbpnzd = load_raw_bars("GBPNZD", settings, fx_dir)
    assert gbpnzd.timeframe == "15m" and len(gbpnzd.bars) == 24_807
    synth = load_raw_bars("SYNTH", settings, fx_dir)
    assert synth.timeframe == "1m" and "synthetic" in synth.source
    assert synth.bars.index[-1] - synth.bars.index[0] > pd.Timedelta(days=SYNTH_DAYS - 4)
    pd.testing.assert_frame_equal(synth.bars, load_raw_bars("SYNTH", settings, None).bars)
    write_bars(synth.bars.iloc[:100], import_path(settings.artifacts_dir, "SYNTH"))
    imported = load_raw_bars("SYNTH", settings, None)
    assert len(imported.bars) == 100 and imported.source.startswith("import file")
    elsewhere = isolated_storage / "elsewhere"
    write_bars(synth.bars.iloc[:50], import_path(elsewhere, "SYNTH"))
    assert len(load_raw_bars("SYNTH", settings, None, elsewhere).bars) == 50
