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
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from forex_pipeline.backtest.segments import HOLDOUT, SELECTION, evaluation_segments
from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.hashing import config_hash
from forex_pipeline.io import atomic_write
from forex_pipeline.keys import REGIME_ALL
from forex_pipeline.regimes.significance import (
    TRUST_BEST_COLUMNS,
    GumbelFit,
    TrialMoments,
    best_baseline,
    blocks_of,
    cscv_pbo,
    deflate,
    fit_gumbel,
    is_significant,
)
from forex_pipeline.settings import EvaluationSettings, RegimeSettings, Settings

# Bump when the reference runs change meaning (their files are then recomputed).
REFERENCE_VERSION = 1
BASELINE_KEEP = ("baseline", "regime", "segment", "sharpe", "trade_count")
# CSCV work bound per regime (splits x trials): exact (all C(16, 8) = 12870 splits) for 1 trial,
# then a fixed random subset of splits (100 for 200 trials and more): never fewer than PBO_MIN_SPLITS (standard
# error of the estimate <= 0.5 / sqrt(splits) = 0.05).
PBO_WORK = 20_000
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

    @cached_property
    def fits(self) -> dict[tuple[str, str], tuple[GumbelFit | None, str | None, float]]:
        """Per (regime, segment): the Gumbel fit of the noise model-bests (None if it cannot be fitted)
        and the best baseline (name, Sharpe), computed once per reference."""
        out: dict[tuple[str, str], tuple[GumbelFit | None, str | None, float]] = {}
        for (regime, segment), group in self.noise.groupby(["regime", "segment"], sort=False):
            try:
                fit: GumbelFit | None = fit_gumbel(group["best_sharpe"])
            except ValueError:
                fit = None
            out[(str(regime), str(segment))] = (fit, *best_baseline(self.baselines, str(regime), str(segment)))
        return out


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
    """The cached reference in `directory`, or None. Kept in memory per process (keyed by the files'
    modification times), so a worker recording many models of one feature set reads and fits it once."""
    noise, baselines = Path(directory) / "noise.parquet", Path(directory) / "baselines.parquet"
    try:
        stamp = (noise.stat().st_mtime_ns, baselines.stat().st_mtime_ns)
    except FileNotFoundError:
        return None
    return _read_reference(str(directory), stamp)


@lru_cache(maxsize=32)
def _read_reference(directory: str, stamp: tuple[int, int]) -> TrustReference:
    folder = Path(directory)
    return TrustReference(pd.read_parquet(folder / "noise.parquet"), pd.read_parquet(folder / "baselines.parquet"))


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
    """PBO per regime over the trials of one (feature set, horizon) (rows of inference_backtests.trial_blocks:
    regime and the three block lists); NaN with fewer than 2 trials."""
    blocks = blocks[blocks["regime"] != REGIME_ALL]
    if blocks.empty:
        return {}
    ret, sq, n = blocks_of(blocks)
    regimes = blocks["regime"].to_numpy()
    out: dict[str, float] = {}
    for regime in sorted(set(regimes.tolist())):
        rows = np.flatnonzero(regimes == regime)
        if rows.size < 2:
            out[str(regime)] = float("nan")
            continue
        out[str(regime)] = cscv_pbo(ret[rows], sq[rows], n[rows], max_splits=pbo_splits(rows.size)).pbo
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
    """Every best with its trust figures (TRUST_BEST_COLUMNS of regimes/significance.py), per (feature
    set, horizon) group (rows need feature_set_hash and horizon): DSR and n_trials from the regime's
    current trials, the noise p-value (N accounted) and best baseline from the group's reference, PBO
    recomputed for the groups in `pbo` (others keep their stored figure), the verdict. A group
    without a reference keeps its stored baseline and gets no p-value, hence no verdict.

    The same figures as `annotate_bests`, computed once per (group, regime) rather than per row (the
    Gumbel fit of the noise maxima, the best baseline), so the transaction stays cheap.
    """
    out = bests.copy()
    if out.empty:
        for column in TRUST_BEST_COLUMNS:
            if column not in out.columns:
                out[column] = pd.Series(dtype=object if column in ("baseline", "significant") else float)
        return out
    out["selection_score"] = out["score"].astype(float)
    out["n_trials"] = [trials.get(r, TrialMoments()).n_trials for r in out["regime"]]
    out["deflated_sharpe"] = deflate(out, trials)
    per_model = trials_per_model(settings)
    for column, default in (("pbo", np.nan), ("baseline", None), ("baseline_score", np.nan)):
        if column not in out.columns:
            out[column] = default
    out["baseline"] = out["baseline"].astype(object)
    p_values = np.full(len(out), np.nan)
    pbo_values = out["pbo"].astype(float).to_numpy(copy=True)
    names = out["baseline"].tolist()
    baseline_scores = out["baseline_score"].astype(float).to_numpy(copy=True)
    for position, (fs_hash, horizon, regime, score, n_trials) in enumerate(
        zip(out["feature_set_hash"], out["horizon"], out["regime"], out["selection_score"], out["n_trials"])
    ):
        key = (str(fs_hash), int(horizon))
        reference = references.get(key)
        if key in pbo:
            pbo_values[position] = float(pbo[key].get(regime, np.nan))
        if reference is None:
            continue
        if (str(regime), segment) not in reference.fits:
            continue
        fit, names[position], baseline_scores[position] = reference.fits[(str(regime), segment)]
        if fit is not None and math.isfinite(score):
            p_values[position] = fit.survival(float(score), max(n_trials / per_model, 1.0))
    out["null_p_value"] = p_values
    out["pbo"] = pbo_values
    out["baseline"] = pd.Series(names, index=out.index, dtype=object)
    out["baseline_score"] = baseline_scores
    out["improvement_over_baseline"] = out["selection_score"] - out["baseline_score"]
    holdout = out["holdout_score"].astype(float) if "holdout_score" in out.columns else pd.Series(np.nan, index=out.index)
    thresholds = settings.regimes.significance
    out["significant"] = [
        bool(is_significant(d, p, h, thresholds)) for d, p, h in zip(out["deflated_sharpe"], out["null_p_value"], holdout)
    ]
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
            f"random forecasts do as well {p:.1%} of the time" if math.isfinite(p) else "no noise baseline"
        )
    if not (math.isfinite(holdout) and holdout > thresholds.min_holdout_sharpe):
        reasons.append(f"holdout Sharpe {holdout:.2f} does not confirm it" if math.isfinite(holdout) else "no holdout trades")
    return "luck: " + "; ".join(reasons)
