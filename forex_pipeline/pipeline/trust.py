"""The trust figures of regime bests in the pipeline (docs/regimes.md): which segments rank and which
confirm, the per-(feature set, horizon) reference runs (noise baseline and simple baselines, computed
once and cached as files), and the annotation of every best inside the keep-or-delete transaction.

Reference runs depend on the closes, regime labels, symbol and timeframe of the feature set, on the
horizon (holding period, embargo), the inference grid, the evaluation settings, the costs and the
regime rules, never on a model: `reference_key` hashes exactly that, so a changed setting is a new
file and a cached file is never stale. Files live under artifacts/trust/<feature set key>/ and are
written atomically (forex_pipeline.io), so parallel runs that compute the same reference at once
just write the same file twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forex_pipeline.backtest.segments import HOLDOUT, SELECTION, evaluation_segments
from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.hashing import config_hash
from forex_pipeline.io import atomic_write
from forex_pipeline.keys import REGIME_ALL
from forex_pipeline.regimes.significance import TrialMoments, annotate_bests, blocks_of, cscv_pbo
from forex_pipeline.settings import EvaluationSettings, RegimeSettings, Settings

# Bump when the reference runs change meaning (their files are then recomputed).
REFERENCE_VERSION = 1
BASELINE_KEEP = ("baseline", "regime", "segment", "sharpe", "trade_count")
# CSCV work bound per regime (splits x trials): exact (all C(16, 8) = 12870 splits) up to ~15 trials,
# then a fixed random subset of splits, never fewer than PBO_MIN_SPLITS (standard error <= 0.05).
PBO_WORK = 200_000
PBO_MIN_SPLITS = 100


def ranking_segments(evaluation: EvaluationSettings) -> tuple[str, str]:
    """(segment bests are ranked on, segment that confirms them): selection / holdout, or the last
    walk-forward fold (the largest selection window, confirmed on the latest block)."""
    if evaluation.mode == "holdout":
        return SELECTION, HOLDOUT
    return f"{SELECTION}_{evaluation.folds}", f"{HOLDOUT}_{evaluation.folds}"


def trials_per_model(settings: Settings) -> int:
    """Inference configurations per model: the trials one model adds to every regime."""
    grid = settings.inference_grid
    return (
        len(grid.prediction_methods) * len(grid.ensemble_methods)
        * len(grid.confidence_thresholds) * len(grid.lookback_windows)
    )


def pbo_splits(n_trials: int) -> int:
    return max(PBO_MIN_SPLITS, PBO_WORK // max(n_trials, 1))


@dataclass(frozen=True)
class TrustReference:
    """What a model is compared with in its (feature set, horizon): random forecasts and baselines."""

    noise: pd.DataFrame        # backtest/run.py NOISE_MAXIMA_COLUMNS
    baselines: pd.DataFrame    # BASELINE_KEEP of run_baseline_backtests


def reference_key(feature_set_hash: str, horizon: int, symbol: str, settings: Settings, regimes: RegimeSettings) -> str:
    """Hash of everything a reference run depends on."""
    return config_hash(
        {
            "version": REFERENCE_VERSION,
            "feature_set": feature_set_hash,
            "horizon": int(horizon),
            "inference_grid": settings.inference_grid.model_dump(mode="json"),
            "evaluation": settings.evaluation.model_dump(mode="json"),
            "costs": settings.data.costs_for(symbol).model_dump(mode="json"),
            "regimes": regimes.model_dump(mode="json", exclude={"significance"}),
            "members": settings.training.members,
            "split": [settings.training.train_fraction, settings.training.validation_fraction],
        }
    )


def reference_dir(artifacts_dir: Path, feature_set_key: str, horizon: int, key: str) -> Path:
    return Path(artifacts_dir) / "trust" / feature_set_key / f"h{int(horizon)}-{key[:16]}"


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda temp: frame.to_parquet(temp, index=False))


def load_reference(directory: Path) -> TrustReference | None:
    noise, baselines = directory / "noise.parquet", directory / "baselines.parquet"
    if not (noise.is_file() and baselines.is_file()):
        return None
    return TrustReference(pd.read_parquet(noise), pd.read_parquet(baselines))


def ensure_reference(
    matrix: FeatureMatrix,
    feature_set: FeatureSetSpec,
    horizon: int,
    test_rows: np.ndarray,
    labels: np.ndarray,
    settings: Settings,
    regimes: RegimeSettings,
    artifacts_dir: Path,
) -> TrustReference:
    """The noise and baseline runs of (feature set, horizon), from the cache or computed once now
    (labels per matrix row; the same segments, simulator, costs and labels as every model)."""
    from forex_pipeline.backtest.run import run_baseline_backtests, run_noise_backtests

    key = reference_key(feature_set.hash, horizon, feature_set.symbol, settings, regimes)
    directory = reference_dir(artifacts_dir, feature_set.partition_key, horizon, key)
    cached = load_reference(directory)
    if cached is not None:
        return cached
    run_settings = settings.model_copy(update={"regimes": regimes})
    segments = evaluation_segments(len(test_rows), settings.evaluation, horizon)
    tf = feature_set.base_timeframe
    baselines = run_baseline_backtests(
        matrix.close, test_rows, labels, run_settings, feature_set.symbol, horizon, tf, segments
    ).loc[:, list(BASELINE_KEEP)]
    noise = run_noise_backtests(
        matrix.close[test_rows], np.asarray(labels)[test_rows], run_settings, feature_set.symbol, horizon, tf, segments
    )
    _write_parquet(noise, directory / "noise.parquet")
    _write_parquet(baselines, directory / "baselines.parquet")
    return TrustReference(noise, baselines)


# ------------------------------------------------------------------------------ in the transaction
def group_pbo(blocks: pd.DataFrame) -> dict[str, float]:
    """PBO per regime over the trials of one (feature set, horizon) (rows of inference_backtests.trial_blocks)."""
    out: dict[str, float] = {}
    for regime, group in blocks[blocks["regime"] != REGIME_ALL].groupby("regime", sort=True):
        if len(group) < 2:
            out[str(regime)] = float("nan")
            continue
        out[str(regime)] = cscv_pbo(*blocks_of(group), max_splits=pbo_splits(len(group))).pbo
    return out


def annotate(
    bests: pd.DataFrame,
    *,
    trials: Mapping[str, TrialMoments],
    references: Mapping[tuple[str, int], TrustReference | None],
    pbo: Mapping[tuple[str, int], Mapping[str, float]],
    settings: Settings,
    segment: str,
) -> pd.DataFrame:
    """Every best with its trust figures, per (feature set, horizon) group (rows need feature_set_hash
    and horizon): DSR and n_trials from the regime's current trials, the noise p-value (N accounted)
    and best baseline from the group's reference, PBO recomputed for the groups in `pbo` (others keep
    their stored figure), the verdict. A group without a reference gets no p-value, hence no verdict."""
    if bests.empty:
        return bests.assign(**{c: pd.Series(dtype=float) for c in ("null_p_value", "pbo", "baseline_score")})
    parts = []
    for (fs_hash, horizon), group in bests.groupby(["feature_set_hash", "horizon"], sort=False):
        key = (str(fs_hash), int(horizon))
        reference = references.get(key)
        stored_pbo = group["pbo"] if "pbo" in group.columns else pd.Series(np.nan, index=group.index)
        regime_pbo = pbo.get(key)
        annotated = annotate_bests(
            group.drop(columns=[c for c in ("pbo",) if c in group.columns]),
            trials=trials,
            noise_maxima=reference.noise if reference is not None else None,
            pbo=regime_pbo if regime_pbo is not None else {},
            baselines=reference.baselines if reference is not None else None,
            thresholds=settings.regimes.significance,
            trials_per_model=trials_per_model(settings),
            segment=segment,
        )
        if regime_pbo is None:
            annotated["pbo"] = stored_pbo.astype(float)
        if reference is None and "baseline_score" in group.columns:
            # no reference to recompute from: the baseline comparison stays as stored
            for column in ("baseline", "baseline_score"):
                annotated[column] = group[column]
            annotated["improvement_over_baseline"] = annotated["selection_score"] - annotated["baseline_score"].astype(float)
        parts.append(annotated)
    out = pd.concat(parts).loc[bests.index]
    out["significant"] = out["significant"].astype(bool)
    return out


def plain_words(best: Mapping[str, object], thresholds) -> str:  # noqa: ANN001 - SignificanceSettings
    """One sentence: is this best significant, and if not, which test it failed (docs/regimes.md)."""
    def number(name: str) -> float:
        value = best.get(name)
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return float("nan")

    dsr, p, holdout = number("deflated_sharpe"), number("null_p_value"), number("holdout_score")
    if bool(best.get("significant")):
        return (
            f"significant: deflated Sharpe {dsr:.2f} >= {thresholds.min_deflated_sharpe}, noise p-value {p:.3f} <= "
            f"{thresholds.max_noise_p_value} with {int(number('n_trials'))} trials counted, holdout Sharpe {holdout:.2f} > "
            f"{thresholds.min_holdout_sharpe}"
        )
    reasons = []
    if not (math.isfinite(dsr) and dsr >= thresholds.min_deflated_sharpe):
        reasons.append(f"deflated Sharpe {dsr:.2f} < {thresholds.min_deflated_sharpe}" if math.isfinite(dsr) else "no deflated Sharpe")
    if not (math.isfinite(p) and p <= thresholds.max_noise_p_value):
        reasons.append(
            f"random forecasts do as well {p:.0%} of the time" if math.isfinite(p) else "no noise baseline"
        )
    if not (math.isfinite(holdout) and holdout > thresholds.min_holdout_sharpe):
        reasons.append(f"holdout Sharpe {holdout:.2f} does not confirm it" if math.isfinite(holdout) else "no holdout trades")
    return "luck: " + "; ".join(reasons)
