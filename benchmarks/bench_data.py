"""Market data throughput: import (load + validate) and resampling of the real EURUSD M1 file.

Run: python benchmarks/bench_data.py [--repeat N]
Data: FOREX_SAMPLE_DATA, else ../shared/data/fx beside the repository. Prints one line per figure;
the last line is `import_rows_per_second=<x>`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from forex_pipeline.data.loaders import load_bars
from forex_pipeline.data.resample import resample_bars

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("5m", "15m", "30m", "1h", "4h", "1d")


def sample_file() -> Path:
    """EURUSD_M1.csv.gz in FOREX_SAMPLE_DATA, else in ../shared/data/fx."""
    folder = Path(os.environ.get("FOREX_SAMPLE_DATA") or REPO_ROOT.parent / "shared" / "data" / "fx")
    path = folder / "EURUSD_M1.csv.gz"
    if not path.is_file():
        raise SystemExit(f"benchmark data {path} not found; set FOREX_SAMPLE_DATA")
    return path


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    """Median wall time of `repeat` runs of `action`."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median is reported)")
    args = parser.parse_args()
    path = sample_file()
    bars = load_bars(path).bars
    rows = len(bars)
    import_seconds = median_seconds(lambda: load_bars(path), args.repeat)
    print(f"file={path.name} rows={rows} import_seconds={import_seconds:.3f}")
    for timeframe in TARGETS:
        seconds = median_seconds(lambda tf=timeframe: resample_bars(bars, tf), args.repeat)
        print(f"resample_1m_to_{timeframe}_rows_per_second={rows / seconds:.0f}")
    print(f"import_rows_per_second={rows / import_seconds:.0f}")


if __name__ == "__main__":
    main()
