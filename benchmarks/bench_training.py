"""Training cost per model family on one year (2019) of real EUR/USD 1h bars.

Prints one line per family, `family=<name> train_seconds=<x> model_bytes=<n>`, then
`train_seconds_total=<x>`, and, when a diffusion family is benchmarked, `ddim_speedup_vs_ddpm=<x>`:
the DDPM (training.neural.diffusion_steps) over DDIM (ddim_steps) sampling time of one trained
network on the test segment. Each model is trained with the configured settings (members from
config/training_pipeline.yaml unless --members is given) and saved through the model file store.
To benchmark more families, add their model types to FAMILIES (hyperparameters: the spec's dict).

    python benchmarks/bench_training.py [--horizon 5] [--members 5] [--families ridge rf]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from forex_pipeline.data.loaders import load_bars  # noqa: E402
from forex_pipeline.data.resample import resample_bars  # noqa: E402
from forex_pipeline.features.build import build_feature_matrix, select_window  # noqa: E402
from forex_pipeline.features.matrix import FeatureMatrix  # noqa: E402
from forex_pipeline.features.spec import FeatureSetSpec  # noqa: E402
from forex_pipeline.models.registry import TrainingContext, file_suffix, save_model, train_model  # noqa: E402
from forex_pipeline.models.spec import ModelSpec  # noqa: E402
from forex_pipeline.settings import Settings, get_settings  # noqa: E402
from forex_pipeline.models.files import model_file_path  # noqa: E402
from tests.conftest import fx_data_dir  # noqa: E402

# model type -> hyperparameters of the benchmarked spec (empty: the family's defaults).
FAMILIES: dict[str, dict] = {
    "ridge": {},
    "lasso": {},
    "elasticnet": {},
    "rf": {},
    "lightgbm": {},
    "lightning": {},
    "diffusion-ddpm": {},
    "diffusion-ddim": {},
    "sssd": {},
}
DIFFUSION_FAMILIES = ("diffusion-ddpm", "diffusion-ddim")
SAMPLING_REPEATS = 2          # sampling times are the best of this many interleaved rounds

FEATURE_SET = FeatureSetSpec(
    symbol="EUR/USD",
    base_timeframe="1h",
    days_history=365,
    as_of=datetime(2020, 1, 1, tzinfo=timezone.utc),
    indicator_timeframes={"rsi": ("1h", "4h"), "macd": ("1h",), "atr": ("1h", "4h"), "ema_dist": ("1h", "1d")},
    additional_features=("returns_volatility", "trading_sessions"),
)


def eurusd_2019_matrix(settings: Settings) -> FeatureMatrix:
    """The benchmark feature matrix: 2019 EUR/USD 1h bars through the project's loader and feature builder."""
    bars = resample_bars(load_bars(fx_data_dir() / "EURUSD_M1.csv.gz").bars, "1h")
    return build_feature_matrix(FEATURE_SET, select_window(bars, FEATURE_SET), ar_lags=settings.training.ar_lags)


def bench_family(matrix: FeatureMatrix, model_type: str, hyperparameters: dict, horizon: int,
                 context: TrainingContext) -> tuple[float, int]:
    """(train seconds, model file bytes) of one family."""
    spec = ModelSpec(model_type=model_type, horizon=horizon, hyperparameters=hyperparameters)
    started = time.perf_counter()
    model = train_model(matrix, spec, context)
    seconds = time.perf_counter() - started
    path = model_file_path(context.artifacts_dir, FEATURE_SET.partition_key, spec.partition_key, file_suffix(model_type))
    return seconds, save_model(model, path).bytes


def bench_ddim_speedup(matrix: FeatureMatrix, horizon: int, context: TrainingContext) -> tuple[float, float, float]:
    """(speedup, DDPM seconds, DDIM seconds) sampling the test segment with one trained diffusion network.

    The network is trained for one epoch only: sampling cost depends on its size, not on its fit. The
    speedup is essentially diffusion_steps / ddim_steps network evaluations (100 / 8 by default)."""
    from forex_pipeline.features.splits import split_rows

    neural = context.settings.training.neural
    quick = context.settings.training.model_copy(update={"neural": neural.model_copy(update={"max_epochs": 1})})
    quick_context = TrainingContext(settings=context.settings.model_copy(update={"training": quick}),
                                    artifacts_dir=context.artifacts_dir, seed=context.seed)
    spec = ModelSpec(model_type="diffusion-ddpm", horizon=horizon, hyperparameters={"combiner_rows": 16})
    model = train_model(matrix, spec, quick_context)
    s = context.settings.training
    rows = split_rows(matrix.n_rows, horizon, s.train_fraction, s.validation_fraction).test
    # DDIM is timed over enough back-to-back runs to span about as long as one DDPM run, and the two
    # are interleaved, so both see the same load on a shared machine; each keeps its best round.
    ddim_runs = max(1, round(neural.diffusion_steps / neural.ddim_steps))
    seconds: dict[str, float] = {"ddpm": float("inf"), "ddim": float("inf")}
    for _ in range(SAMPLING_REPEATS):
        for sampler, runs in (("ddpm", 1), ("ddim", ddim_runs)):
            started = time.perf_counter()
            for _ in range(runs):
                model._cache = None
                model.sample_paths(matrix, rows, sampler)
            seconds[sampler] = min(seconds[sampler], (time.perf_counter() - started) / runs)
    return seconds["ddpm"] / seconds["ddim"], seconds["ddpm"], seconds["ddim"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--members", type=int, default=None, help="override training.members")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.members is not None:
        settings = settings.model_copy(update={"training": settings.training.model_copy(update={"members": args.members})})
    matrix = eurusd_2019_matrix(settings)
    print(f"rows={matrix.n_rows} features={len(matrix.feature_names)} members={settings.training.members} "
          f"horizon={args.horizon}", flush=True)
    total = 0.0
    with tempfile.TemporaryDirectory() as artifacts:
        context = TrainingContext(settings=settings, artifacts_dir=Path(artifacts))
        for family in args.families:
            seconds, size = bench_family(matrix, family, FAMILIES.get(family, {}), args.horizon, context)
            total += seconds
            print(f"family={family} train_seconds={seconds:.2f} model_bytes={size}", flush=True)
        print(f"train_seconds_total={total:.2f}", flush=True)
        if any(family in DIFFUSION_FAMILIES for family in args.families):
            speedup, ddpm, ddim = bench_ddim_speedup(matrix, args.horizon, context)
            print(f"ddim_speedup_vs_ddpm={speedup:.1f} ddpm_sampling_seconds={ddpm:.2f} "
                  f"ddim_sampling_seconds={ddim:.2f}", flush=True)


if __name__ == "__main__":
    main()
