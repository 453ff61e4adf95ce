"""This machine's speed now, from a short run of a small real unit of a grid's work (features, a fit,
the 135-configuration internal loop), so a machine with no recorded run scales the time estimate's
reference table by what it measures rather than by the machine the table was measured on.

The result is cached in the artefact store with its host, time and load, and measured again when it
is older than PROBE_MAX_AGE_SECONDS, comes from another host, or the load has changed by more than
PROBE_LOAD_CHANGE times since (a loaded 2-core machine is many times slower than an idle one).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from forex_pipeline.settings import Settings

# The probe: 1h synthetic bars, PROBE_DAYS days (about 1/3 of the reference year), ridge at horizon 5.
PROBE_DAYS = 120
PROBE_WARMUP_DAYS = 40
PROBE_HORIZON = 5
PROBE_SEED = 0
PROBE_SYMBOL = "SYNTH"
# Seconds of the probe on a machine that runs grids as fast as the reference table says, end to end:
# `benchmarks/bench_estimate.py --grid G` plans G on empty storage (a fresh probe), runs it and prints
# probe_reference_seconds_from_run, the value that would have made that estimate exact. 2026-12-06 on
# the shared 2-core machine at load 12-28: fast_50 0.203 (445 s), a 4-configuration demo subset (ridge,
# rf, lightgbm at h4) 0.338 (135 s), demo 0.367 (285 s); 0.29 is their geometric mean, so those
# estimates read 0.70x, 1.17x and 1.27x what the runs took. Anchored on whole runs, not on the table's
# reference unit: that unit (features, a ridge fit, the internal loop) ran 4.8x faster than the table
# while fast_50 ran 2.9x slower, since recording and the noise references weigh more than it gives them.
PROBE_REFERENCE_SECONDS = 0.29
PROBE_MAX_AGE_SECONDS = 6 * 3600.0
PROBE_LOAD_CHANGE = 2.0
PROBE_FILE = "machine_probe.json"


@dataclass(frozen=True)
class MachineProbe:
    """One measurement of the probe: its seconds, their ratio to PROBE_REFERENCE_SECONDS (`rate`), and
    where and when it was measured (`load`: the 1-minute load average per CPU then)."""

    seconds: float
    rate: float
    host: str
    measured_at: str
    load: float

    def describe(self) -> str:
        return (f"uncalibrated: the reference table x{self.rate:.2f}, from a {self.seconds:.1f} s probe of this machine "
                f"({self.host}, {self.measured_at}, load {self.load:.1f} per CPU)")


def load_per_cpu() -> float:
    """The 1-minute load average divided by the CPU count (1.0: every core busy)."""
    return os.getloadavg()[0] / (os.cpu_count() or 1)


def _load_factor(load: float) -> float:
    """How much slower the load makes a single-threaded job: 1 until every core is busy, then load per CPU."""
    return max(1.0, load)


def is_fresh(probe: MachineProbe, *, host: str, now: datetime, load: float) -> bool:
    """Whether a cached probe still describes this machine: same host, recent, at a similar load."""
    age = (now - datetime.fromisoformat(probe.measured_at)).total_seconds()
    change = _load_factor(load) / _load_factor(probe.load)
    return probe.host == host and 0 <= age <= PROBE_MAX_AGE_SECONDS and 1 / PROBE_LOAD_CHANGE <= change <= PROBE_LOAD_CHANGE


def read_probe(path: Path) -> MachineProbe | None:
    """The cached probe at `path`; None when there is none or it cannot be read (it is measured again)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return MachineProbe(float(data["seconds"]), float(data["rate"]), str(data["host"]), str(data["measured_at"]), float(data["load"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_probe(path: Path, probe: MachineProbe) -> None:
    """Cache `probe` at `path` (temp file + rename); a read-only store only loses the cache."""
    from forex_pipeline.io import atomic_write_text

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(asdict(probe), indent=2))
    except OSError:
        pass


def probe_bars() -> pd.DataFrame:
    """PROBE_DAYS days of synthetic M1 bars (regime switching, seed PROBE_SEED) resampled to 1h."""
    from forex_pipeline.data.resample import resample_bars
    from forex_pipeline.data.synthetic import generate_synthetic_bars

    return resample_bars(generate_synthetic_bars(PROBE_DAYS, PROBE_SEED).bars, "1h")


def probe_unit(settings: Settings, bars: pd.DataFrame, days: int) -> float:
    """Seconds of one small real unit of a grid's work on the last `days` days of `bars` (1h): the
    feature matrix, a ridge fit (settings.training.members members) and the internal loop."""
    import tempfile

    from forex_pipeline.backtest.run import run_evaluation_backtests
    from forex_pipeline.features.build import build_feature_matrix
    from forex_pipeline.features.spec import FeatureSetSpec
    from forex_pipeline.features.splits import split_rows
    from forex_pipeline.models.context import TrainingContext
    from forex_pipeline.models.registry import train_model
    from forex_pipeline.models.spec import ModelSpec
    from forex_pipeline.regimes.labels import label_regimes

    spec = FeatureSetSpec(
        symbol=PROBE_SYMBOL, base_timeframe="1h", days_history=days, as_of=bars.index[-1].to_pydatetime(),
        indicator_timeframes={"rsi": ("1h", "4h"), "macd": ("1h",), "atr": ("1h",)},
        additional_features=("returns_volatility", "trading_sessions"),
    )
    model_spec = ModelSpec(model_type="ridge", horizon=PROBE_HORIZON)
    training = settings.training
    started = time.perf_counter()
    matrix = build_feature_matrix(spec, bars, ar_lags=training.ar_lags, train_fraction=training.train_fraction)
    with tempfile.TemporaryDirectory(prefix="forex-probe-") as tmp:
        model = train_model(matrix, model_spec, TrainingContext(settings=settings, artifacts_dir=Path(tmp), seed=PROBE_SEED))
    splits = split_rows(matrix.n_rows, PROBE_HORIZON, training.train_fraction, training.validation_fraction)
    labels = label_regimes(matrix.close, settings.regimes, timeframe="1h", train_end=int(splits.validation[0]), timestamps=matrix.timestamps)
    run_evaluation_backtests(model, matrix, splits.test, labels[splits.test], settings, PROBE_SYMBOL)
    return time.perf_counter() - started


def measure_probe(settings: Settings) -> MachineProbe:
    """Run the probe once small to warm imports and compiled kernels, then time it (wall clock: the
    estimate is of wall time, so the machine's load counts)."""
    bars = probe_bars()
    probe_unit(settings, bars, PROBE_WARMUP_DAYS)
    seconds = probe_unit(settings, bars, PROBE_DAYS)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return MachineProbe(seconds, seconds / PROBE_REFERENCE_SECONDS, socket.gethostname(), now, load_per_cpu())


def machine_probe(settings: Settings, artifacts_dir: Path | None = None) -> MachineProbe:
    """The cached probe of this machine when it is fresh (is_fresh), else a new measurement, cached."""
    path = Path(artifacts_dir or settings.artifacts_dir) / PROBE_FILE
    cached = read_probe(path)
    if cached is not None and is_fresh(cached, host=socket.gethostname(), now=datetime.now(timezone.utc), load=load_per_cpu()):
        return cached
    probe = measure_probe(settings)
    write_probe(path, probe)
    return probe
