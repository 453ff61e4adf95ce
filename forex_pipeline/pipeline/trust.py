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
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forex_pipeline.backtest.columns import BLOCK_COLUMNS
from forex_pipeline.backtest.segments import HOLDOUT, SELECTION, evaluation_segments
from forex_pipeline.features.matrix import FeatureMatrix
from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.hashing import config_hash
from forex_pipeline.io import atomic_write
from forex_pipeline.keys import REGIME_ALL
from forex_pipeline.regimes.significance import (
    TRUST_BEST_COLUMNS,
    GumbelFit,
    TrialBlocks,
    TrialMoments,
    best_baseline,
    block_matrix,
    cscv_pbo,
    deflated_sharpe_of,
    fit_gumbel,
    is_significant,
)
from forex_pipeline.settings import EvaluationSettings, RegimeSettings, Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Bump when the reference runs change meaning (their files are then recomputed).
REFERENCE_VERSION = 1
BASELINE_KEEP = ("baseline", "regime", "segment", "sharpe", "trade_count")
# CSCV work bound per regime (splits x trials): exact (all C(16, 8) = 12870 splits) for 1 trial,
# then a fixed random subset of splits (100 for 200 trials and more): never fewer than PBO_MIN_SPLITS (standard
# error of the estimate <= 0.5 / sqrt(splits) = 0.05).
PBO_WORK = 20_000
PBO_MIN_SPLITS = 100


def ranking_segments(evaluation: EvaluationSettings) -> tuple[str, str]:
    """(segment bests are ranked on, segment that confirms them): `selection` / `holdout` in both modes
    (walk-forward pools its folds into `selection`: backtest/segments.py)."""
    return SELECTION, HOLDOUT


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
    return reference_keys({(feature_set_hash, int(horizon)): symbol}, settings, regimes)[(feature_set_hash, int(horizon))]


def reference_keys(
    groups: Mapping[tuple[str, int], str], settings: Settings, regimes: RegimeSettings
) -> dict[tuple[str, int], str]:
    """reference_key of each (feature set hash, horizon) -> symbol, the settings dumped once for all."""
    shared = {
        "version": REFERENCE_VERSION,
        "inference_grid": settings.inference_grid.model_dump(mode="json"),
        "evaluation": settings.evaluation.model_dump(mode="json"),
        "regimes": regimes.model_dump(mode="json", exclude={"significance"}),
        "members": settings.training.members,
        "split": [settings.training.train_fraction, settings.training.validation_fraction],
    }
    costs = {symbol: settings.data.costs_for(symbol).model_dump(mode="json") for symbol in set(groups.values())}
    return {
        (f, int(h)): config_hash({**shared, "feature_set": f, "horizon": int(h), "costs": costs[symbol]})
        for (f, h), symbol in groups.items()
    }


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
class TrialBlockCache:
    """Per process: the block arrays (TrialBlocks) of the trials already read, per trial set and run,
    so recording a model reads and converts only the runs that are new or changed since, not every
    trial of its (feature set, horizon) again. A run is identified by its id and a version (for the
    store: rows, largest row id and the sum of their per-bar Sharpes), so re-recorded, rolled-back or
    deleted runs are read again or dropped, never served stale."""

    def __init__(self, max_sets: int = 32) -> None:
        self._sets: OrderedDict[Hashable, dict[tuple[Hashable, Hashable], TrialBlocks]] = OrderedDict()
        self._max_sets = max_sets

    def blocks(
        self,
        trial_set: Hashable,
        versions: Mapping[Hashable, Hashable],
        fetch: Callable[[list[Hashable] | None], pd.DataFrame],
        known: Callable[[list[Hashable]], Mapping[Hashable, TrialBlocks]] | None = None,
    ) -> TrialBlocks:
        """The trials of `trial_set` (runs in sorted order, each run's rows in fetched order) given the
        runs present now and their versions; `fetch(runs)` returns the rows of those runs (None: all
        runs) with a training_run_id column, regime and the three block columns. `known(runs)` gives
        the blocks of those of `runs` the caller holds already, in fetched order (e.g. the run just
        recorded, `run_trial_blocks`): they are taken from it instead of being fetched."""
        cached = self._sets.pop(trial_set, {})
        wanted = [(run, versions[run]) for run in sorted(versions)]
        missing = [run for run, version in wanted if (run, version) not in cached]
        held = known(missing) if known is not None and missing else {}
        for run in missing:
            if run in held:
                cached[(run, versions[run])] = held[run]
        missing = [run for run in missing if run not in held]
        if missing:
            rows = fetch(None if len(missing) == len(wanted) else missing)
            runs = rows["training_run_id"].to_numpy()
            for run in dict.fromkeys(runs.tolist()):
                if run in versions:
                    part = rows if len(missing) == 1 and (runs == run).all() else rows[runs == run]
                    cached[(run, versions[run])] = TrialBlocks.from_rows(part)
        current = {key: cached[key] for key in wanted if key in cached}
        self._sets[trial_set] = current
        while len(self._sets) > self._max_sets:
            self._sets.popitem(last=False)
        return TrialBlocks.concat(current.values())


TRIAL_BLOCKS = TrialBlockCache()


def recorded_trial_blocks(
    session: Session, group: tuple[str, int], regimes: list[str], segment: str, known: pd.DataFrame | None = None
) -> TrialBlocks:
    """The CSCV inputs of every recorded trial of (feature set, horizon) `group` in `regimes` on
    `segment`, through this process's TrialBlockCache (only new or changed runs are read). `known`:
    stored rows already read in this transaction (with training_run_id, e.g. the model just
    recorded), used for their runs instead of reading them again."""
    from forex_pipeline.store import inference_backtests

    feature_set_hash, horizon = group
    versions = inference_backtests.trial_block_versions(session, feature_set_hash, horizon, regimes, segment)
    trial_set = (str(session.get_bind().url), feature_set_hash, int(horizon), tuple(sorted(regimes)), segment)

    def fetch(runs: list[Hashable] | None) -> pd.DataFrame:
        return inference_backtests.trial_blocks(session, feature_set_hash, horizon, regimes, segment, run_ids=runs)

    return cached_trial_blocks(TRIAL_BLOCKS, trial_set, versions, fetch, known, regimes, segment)


def cached_trial_blocks(
    cache: TrialBlockCache,
    trial_set: Hashable,
    versions: Mapping[Hashable, Hashable],
    fetch: Callable[[list[Hashable] | None], pd.DataFrame],
    known: pd.DataFrame | None,
    regimes: list[str],
    segment: str,
) -> TrialBlocks:
    """`cache.blocks` with the runs of the backtest rows `known` taken from those rows (`run_trial_blocks`),
    the rest from `fetch`: what recording a model does, without the database (benchmarks call it too)."""
    if known is None or known.empty:
        return cache.blocks(trial_set, versions, fetch)
    return cache.blocks(trial_set, versions, fetch, lambda runs: run_trial_blocks(known, runs, regimes, segment))


def run_trial_blocks(
    rows: pd.DataFrame, runs: Iterable[Hashable], regimes: Iterable[str], segment: str
) -> dict[Hashable, TrialBlocks]:
    """Per run of `runs` found in the backtest rows `rows` (with training_run_id), the TrialBlocks of
    the rows the store's `trial_blocks` would return for it: `segment`, `regimes` but 'all', blocks
    present, ordered by regime then configuration hash. Filters and sorts arrays, converts each block
    column once."""
    layout = _trial_layout(rows, [r for r in dict.fromkeys(regimes) if r != REGIME_ALL], segment)
    run_ids = rows["training_run_id"].to_numpy()[layout.positions]
    keep = np.isin(run_ids, list(runs)) & ~pd.isna(rows["block_sum_ret"].to_numpy(dtype=object)[layout.positions])
    if not keep.any():
        return {}
    order = np.lexsort((layout.config_rank[keep], layout.regime_rank[keep], run_ids[keep]))
    picked, regime, run_ids = layout.positions[keep][order], layout.regimes[keep][order], run_ids[keep][order]
    arrays = [block_matrix(rows[column].to_numpy(dtype=object)[picked]) for column in BLOCK_COLUMNS]
    starts = np.flatnonzero(np.r_[True, run_ids[1:] != run_ids[:-1]])
    ends = np.r_[starts[1:], run_ids.size]
    keys = run_ids[starts].tolist()
    return {
        key: TrialBlocks(regime[a:b], *(values[a:b] for values in arrays))
        for key, a, b in zip(keys, starts.tolist(), ends.tolist())
    }


@dataclass(frozen=True)
class _TrialLayout:
    """Which rows of a backtest frame are trials of (segment, regimes), their regimes and the ranks of
    their regime and configuration hash (the store's sort keys): the same for every model of a grid."""

    columns: tuple[pd.Series, ...]     # segment, regime, inference_config_hash of the frame it was read from
    positions: np.ndarray
    regimes: np.ndarray
    regime_rank: np.ndarray
    config_rank: np.ndarray


_LAYOUTS: OrderedDict[tuple[str, tuple[str, ...]], _TrialLayout] = OrderedDict()


def _trial_layout(rows: pd.DataFrame, names: list[str], segment: str) -> _TrialLayout:
    """The _TrialLayout of `rows`, reused while a frame's three columns (and index) equal the cached
    ones: a key that cannot go stale, since the layout is a function of exactly those columns."""
    key = (segment, tuple(names))
    columns = (rows["segment"], rows["regime"], rows["inference_config_hash"])
    layout = _LAYOUTS.pop(key, None)
    if layout is None or not all(mine.equals(theirs) for mine, theirs in zip(layout.columns, columns)):
        regime = columns[1].to_numpy(dtype=object)
        wanted = np.zeros(len(rows), dtype=bool)
        for name in names:
            wanted |= regime == name
        positions = np.flatnonzero(wanted & (columns[0].to_numpy(dtype=object) == segment))
        regime = regime[positions]
        ranks = [np.unique(values.astype(str), return_inverse=True)[1].reshape(-1) for values in (
            regime, columns[2].to_numpy(dtype=object)[positions])]
        layout = _TrialLayout(columns, positions, regime, *ranks)
    _LAYOUTS[key] = layout                     # most recently used last
    while len(_LAYOUTS) > 8:
        _LAYOUTS.popitem(last=False)
    return layout


def group_pbo(blocks: pd.DataFrame | TrialBlocks) -> dict[str, float]:
    """PBO per regime over the trials of one (feature set, horizon) (TrialBlocks, or rows of
    inference_backtests.trial_blocks: regime and the three block lists); NaN with fewer than 2 trials."""
    if isinstance(blocks, pd.DataFrame):
        blocks = TrialBlocks.from_rows(blocks)
    out: dict[str, float] = {}
    for regime, (ret, sq, n) in blocks.by_regime().items():
        out[regime] = cscv_pbo(ret, sq, n, max_splits=pbo_splits(ret.shape[0])).pbo if ret.shape[0] >= 2 else float("nan")
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
    if bests.empty:
        out = bests.copy()
        for column in TRUST_BEST_COLUMNS:
            if column not in out.columns:
                out[column] = pd.Series(dtype=object if column in ("baseline", "significant") else float)
        return out
    regimes = [str(r) for r in bests["regime"].tolist()]
    groups = [(str(f), int(h)) for f, h in zip(bests["feature_set_hash"].tolist(), bests["horizon"].tolist())]
    scores = bests["score"].to_numpy(dtype=np.float64)
    moments = [trials.get(r, TrialMoments()) for r in regimes]
    n_trials = np.array([m.n_trials for m in moments], dtype=np.int64)
    deflated = np.array(
        [
            deflated_sharpe_of(sr, n, sk, ku, m)
            for sr, n, sk, ku, m in zip(
                *(bests[c].to_numpy(dtype=np.float64) for c in ("sharpe_per_bar", "n_bars", "skewness", "kurtosis")), moments
            )
        ],
        dtype=np.float64,
    )
    per_model = trials_per_model(settings)
    pbo_values, baseline_scores, p_values = (np.full(len(bests), np.nan) for _ in range(3))
    names: list[object] = [None] * len(bests)
    keep_pbo, keep_baseline = [], []              # rows that keep their stored figure (read only if any)
    for position, (key, regime, score, n) in enumerate(zip(groups, regimes, scores, n_trials)):
        if key in pbo:
            pbo_values[position] = float(pbo[key].get(regime, np.nan))
        else:
            keep_pbo.append(position)
        reference = references.get(key)
        figures = None if reference is None else reference.fits.get((regime, segment))
        if figures is None:
            keep_baseline.append(position)
            continue
        fit, names[position], baseline_scores[position] = figures
        if fit is not None and math.isfinite(score):
            p_values[position] = fit.survival(float(score), max(n / per_model, 1.0))
    if keep_pbo:
        pbo_values[keep_pbo] = _column(bests, "pbo", np.nan)[keep_pbo]
    if keep_baseline:
        baseline_scores[keep_baseline] = _column(bests, "baseline_score", np.nan)[keep_baseline]
        stored = bests["baseline"].tolist() if "baseline" in bests.columns else names
        for position in keep_baseline:
            names[position] = stored[position]
    holdout = _column(bests, "holdout_score", np.nan)
    thresholds = settings.regimes.significance
    figures = {
        "selection_score": scores,
        "n_trials": n_trials,
        "deflated_sharpe": deflated,
        "null_p_value": p_values,
        "pbo": pbo_values,
        "baseline": _objects(names),
        "baseline_score": baseline_scores,
        "improvement_over_baseline": scores - baseline_scores,
        "significant": [bool(is_significant(d, p, h, thresholds)) for d, p, h in zip(deflated, p_values, holdout)],
    }
    new = {column: values for column, values in figures.items() if column not in bests.columns}
    out = pd.concat([bests, pd.DataFrame(new, index=bests.index)], axis=1) if new else bests.copy(deep=False)
    for column, values in figures.items():      # arrays: positional, safe with any index
        if column not in new:
            out[column] = values
    return out


def _objects(values: list[object]) -> np.ndarray:
    """A 1-D object array of `values` as they are (no nesting, no conversion)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _column(frame: pd.DataFrame, name: str, default: float) -> np.ndarray:
    """A float column as a (writable) array, or `default` everywhere when the frame lacks it."""
    if name in frame.columns:
        return frame[name].to_numpy(dtype=np.float64, copy=True)
    return np.full(len(frame), default, dtype=np.float64)


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
