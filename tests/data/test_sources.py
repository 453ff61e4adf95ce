"""Bar sources: the span of each kind of source, read without loading its bars, equals the loaded bars'."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from forex_pipeline.data.bar_store import import_path, write_bars
from forex_pipeline.data.sources import load_raw_bars, resolve_source, source_span
from forex_pipeline.data.synthetic import generate_synthetic_bars
from forex_pipeline.settings import get_settings


def test_the_synthetic_span_is_the_span_of_the_bars_training_loads(tmp_path: Path) -> None:
    span = source_span(resolve_source("SYNTH", tmp_path, None))
    bars = load_raw_bars("SYNTH", get_settings(), None, tmp_path).bars
    assert (span.first, span.last) == (bars.index[0], bars.index[-1])
    assert span.source.kind == "synthetic" and "SYNTH has bars from" in span.describe()


def test_an_imported_file_is_read_from_its_statistics_and_read_again_after_it_changes(tmp_path: Path) -> None:
    path = import_path(tmp_path, "EURUSD")
    write_bars(generate_synthetic_bars(20, seed=1, start="2022-03-07").bars, path)
    first = source_span(resolve_source("EURUSD", tmp_path, None))
    assert first.source.kind == "import"
    assert (first.first, first.last) == (pd.Timestamp("2022-03-07", tz="UTC"), pd.Timestamp("2022-03-25 21:59", tz="UTC"))
    longer = generate_synthetic_bars(40, seed=1, start="2022-03-07").bars
    write_bars(longer, path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a new version even within one clock tick
    again = source_span(resolve_source("EURUSD", tmp_path, None))
    assert (again.first, again.last) == (longer.index[0], longer.index[-1])
