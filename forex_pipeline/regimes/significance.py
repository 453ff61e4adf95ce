"""Can a quant trust a regime best? The deflated Sharpe as published, a noise baseline, the
probability of backtest overfitting, baselines and the `significant` verdict. Pure functions over
per-row backtest records (backtest/columns.py EVALUATION_COLUMNS): nothing here re-runs a backtest.

1. Deflated Sharpe ratio (DSR): Bailey, D. H. and Lopez de Prado, M. (2014), "The Deflated Sharpe
   Ratio: Correcting for Selection Bias, Backtest Overfitting and Non-Normality", Journal of
   Portfolio Management 40(5), 94-107. Inputs as the paper defines them: SR = the best's per-bar
   Sharpe in its regime (selection segment), T = its bars there, skewness and non-excess kurtosis of
   those very returns, V = the variance of the per-bar Sharpe ratios of ALL trials recorded in that
   regime, N = the number of those trials. N and V change with every model recorded, so every
   standing best's DSR is recomputed from `TrialMoments` whenever they do (`deflate`).
2. Noise baseline: random-forecast models run through the same grid, simulator, costs, labels and
   segments (backtest/run.py `run_noise_backtests`) give, per regime, the distribution of one
   model's best Sharpe when nothing is known. A best is the maximum over m = N / (configurations per
   model) model-bests, so its p-value is P(max of m noise model-bests >= observed) (`noise_p_value`).
3. Probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation (CSCV):
   Bailey, D. H., Borwein, J., Lopez de Prado, M. and Zhu, Q. J. (2017, online 2015), "The
   Probability of Backtest Overfitting", Journal of Computational Finance 20(4), 39-69. From the
   per-block sums every trial stores (16 blocks of the selection segment), so PBO over any set of
   trials comes from the database (`cscv_pbo`).
4. Baselines (flat, long, short, momentum; backtest/run.py) and the verdict (`is_significant`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import chain, combinations

import numpy as np
import pandas as pd

from forex_pipeline.backtest.segments import SELECTION
from forex_pipeline.keys import REGIME_ALL
from forex_pipeline.regimes.deflated_sharpe import EULER_GAMMA, deflated_sharpe
from forex_pipeline.settings import SignificanceSettings


# --------------------------------------------------------------------------------------------- DSR
@dataclass(frozen=True)
class TrialMoments:
    """What N and V of one regime need, mergeable: trials recorded and sums of their per-bar Sharpes.

    `n_trials` counts every trial (row) recorded in the regime, `n_finite` those with a defined
    Sharpe (a configuration that never traded there has none); V is over the finite ones (ddof 1).
    Keeping (n, sum, sum of squares) lets a database aggregate (COUNT, SUM, SUM of squares) or a
    running total give V without reading every row.
    """

    n_trials: int = 0
    n_finite: int = 0
    sum_sharpe: float = 0.0
    sum_sq_sharpe: float = 0.0

    def __add__(self, other: "TrialMoments") -> "TrialMoments":
        return TrialMoments(
            self.n_trials + other.n_trials,
            self.n_finite + other.n_finite,
            self.sum_sharpe + other.sum_sharpe,
            self.sum_sq_sharpe + other.sum_sq_sharpe,
        )

    @property
    def variance(self) -> float:
        """V: sample variance (ddof 1) of the trials' per-bar Sharpe ratios; 0 with fewer than 2."""
        if self.n_finite < 2:
            return 0.0
        mean = self.sum_sharpe / self.n_finite
        return max((self.sum_sq_sharpe - self.sum_sharpe * mean) / (self.n_finite - 1), 0.0)


def trial_moments(sharpes_per_bar: Iterable[float]) -> TrialMoments:
    """TrialMoments of a set of trials' per-bar Sharpe ratios (NaN = a trial without a Sharpe)."""
    values = np.asarray(list(sharpes_per_bar), dtype=np.float64)
    finite = values[np.isfinite(values)]
    return TrialMoments(int(values.size), int(finite.size), float(finite.sum()), float((finite * finite).sum()))


def regime_trials(rows: pd.DataFrame, segment: str = SELECTION) -> dict[str, TrialMoments]:
    """Per regime (not 'all'), the TrialMoments of every backtest row of `segment` (a frame without a
    segment column counts all its rows). Rows need regime and sharpe_per_bar."""
    if "segment" in rows.columns:
        rows = rows[rows["segment"] == segment]
    rows = rows[rows["regime"] != REGIME_ALL]
    return {str(regime): trial_moments(group["sharpe_per_bar"]) for regime, group in rows.groupby("regime", sort=True)}


def annualised_to_per_bar(sharpe: float, variance: float, periods_per_year: float) -> tuple[float, float]:
    """(per-bar SR, per-bar V) from an annualised SR and the variance of annualised SRs.

    SR_annual = SR * sqrt(q) and V_annual = V * q for q periods a year; the paper's worked example
    quotes annualised figures (SR 2.5, V 0.5) of daily returns (q = 250).
    """
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    return sharpe / math.sqrt(periods_per_year), variance / periods_per_year


def deflated_sharpe_of(
    sharpe_per_bar: float, n_bars: int, skewness: float, kurtosis: float, trials: TrialMoments
) -> float:
    """DSR of one best given its regime's trials; NaN when the best's moments are undefined."""
    values = (sharpe_per_bar, skewness, kurtosis)
    if any(v is None or not math.isfinite(float(v)) for v in values) or n_bars is None or n_bars < 2:
        return float("nan")
    return deflated_sharpe(float(sharpe_per_bar), max(trials.n_trials, 1), trials.variance, int(n_bars), float(skewness), float(kurtosis))


def deflate(bests: pd.DataFrame, trials: Mapping[str, TrialMoments]) -> pd.Series:
    """The DSR of every best (rows with regime, sharpe_per_bar, n_bars, skewness, kurtosis) under
    the current trials of its regime; call it for every standing best whenever N or V change."""
    missing = [c for c in ("regime", "sharpe_per_bar", "n_bars", "skewness", "kurtosis") if c not in bests.columns]
    if missing:
        raise ValueError(f"bests lack column(s) {missing} needed for the deflated Sharpe")
    return pd.Series(
        [
            deflated_sharpe_of(sr, n, s, k, trials.get(regime, TrialMoments()))
            for regime, sr, n, s, k in zip(bests["regime"], bests["sharpe_per_bar"], bests["n_bars"], bests["skewness"], bests["kurtosis"])
        ],
        index=bests.index,
        dtype=float,
    )


# --------------------------------------------------------------------------------------------- PBO
@dataclass(frozen=True)
class PBOResult:
    pbo: float                  # share of CSCV splits whose in-sample best ranks at or below the OOS median
    logits: np.ndarray          # lambda_c = ln(w / (1 - w)), w = relative OOS rank of the IS best
    n_combinations: int
    n_trials: int


def _block_sharpe(total: np.ndarray, total_sq: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Per-bar Sharpe of pooled blocks; 0 where undefined (no bars, or no variance: no trade)."""
    safe_n = np.maximum(n, 1.0)
    mean = total / safe_n
    var = (total_sq - total * mean) / np.maximum(n - 1.0, 1.0)
    valid = (n >= 2) & (var > 1e-12 * total_sq / safe_n) & (var > 0)
    out = np.zeros_like(mean)
    np.divide(mean, np.sqrt(np.where(valid, var, 1.0)), out=out, where=valid)
    return out


@lru_cache(maxsize=4)
def _splits(n_blocks: int) -> list[tuple[int, ...]]:
    return list(combinations(range(n_blocks), n_blocks // 2))


@lru_cache(maxsize=64)
def _chosen_splits(n_splits: int, max_splits: int, seed: int) -> np.ndarray:
    """The fixed random subset of `max_splits` of `n_splits` splits (sorted) that bounds CSCV's work;
    the same for every call with the same arguments, so it is drawn once per process."""
    chosen = np.sort(np.random.default_rng(seed).choice(n_splits, size=max_splits, replace=False))
    chosen.flags.writeable = False
    return chosen


@lru_cache(maxsize=64)
def _split_masks(n_blocks: int, max_splits: int | None = None, seed: int = 0) -> np.ndarray:
    """Bit masks of the in-sample blocks of every split, or of the `_chosen_splits` subset."""
    if max_splits is not None:
        masks = _split_masks(n_blocks)[_chosen_splits(len(_splits(n_blocks)), max_splits, seed)]
    else:
        masks = np.array([sum(1 << b for b in c) for c in _splits(n_blocks)], dtype=np.int64)
    masks.flags.writeable = False
    return masks


def cscv_pbo(
    block_sum_ret: np.ndarray,
    block_sum_sq: np.ndarray,
    block_n_bars: np.ndarray,
    chunk: int = 1024,
    *,
    max_splits: int | None = None,
    seed: int = 0,
    kernel: bool = True,
) -> PBOResult:
    """Probability of backtest overfitting by CSCV (Bailey, Borwein, Lopez de Prado & Zhu) from
    per-block sums, arrays (N trials, S blocks), S even.

    For every one of the C(S, S/2) ways to pick S/2 blocks as the in-sample set J (the rest J' out
    of sample): the trial with the highest Sharpe on J (sums pooled over J's blocks) is found, its
    Sharpe on J' is ranked among all trials' Sharpes on J' (ties averaged; rank 1 = worst), w =
    rank / (N + 1) and lambda = logit(w). PBO = share of splits with lambda <= 0: how often the
    in-sample winner is no better than the median out of sample. A trial without a defined Sharpe on
    a set (no trade) scores 0 there: flat earns nothing. ~0 for a strategy that dominates in every
    block, ~0.5 for trials that are all noise.

    `max_splits` bounds the work (splits x trials) of large trial sets: when C(S, S/2) is larger, a
    fixed random subset of that many splits (seeded by `seed`, so the figure is reproducible) is
    used, a Monte Carlo estimate of the same PBO with a standard error of at most 0.5 / sqrt(max_splits).
    `kernel` runs the numba loop of regimes/cscv_kernel.py (S <= 16; same figures as the matrix form).
    """
    ret, sq, n = (np.asarray(a, dtype=np.float64) for a in (block_sum_ret, block_sum_sq, block_n_bars))
    if ret.ndim != 2 or sq.shape != ret.shape or n.shape != ret.shape:
        raise ValueError(f"block arrays must share one (trials, blocks) shape, got {ret.shape}, {sq.shape}, {n.shape}")
    n_trials, n_blocks = ret.shape
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"CSCV needs an even number of blocks >= 2, got {n_blocks}")
    if n_trials < 2:
        raise ValueError(f"CSCV needs at least 2 trials, got {n_trials}")
    if not (np.isfinite(ret).all() and np.isfinite(sq).all() and np.isfinite(n).all()):
        raise ValueError("block sums must be finite")
    splits = _splits(n_blocks)
    masks = _split_masks(n_blocks)
    if max_splits is not None and len(splits) > max_splits:
        if max_splits < 1:
            raise ValueError(f"max_splits must be >= 1, got {max_splits}")
        masks = _split_masks(n_blocks, max_splits, seed)
        if not (kernel and n_blocks <= 16):
            splits = [splits[i] for i in _chosen_splits(len(splits), max_splits, seed)]
    if kernel and n_blocks <= 16:
        from forex_pipeline.regimes.cscv_kernel import cscv_logits

        first, counts = distinct_trials(ret, sq, n)
        if first.size < n_trials:
            ret, sq, n = ret[first], sq[first], n[first]
        logits = cscv_logits(ret, sq, n, masks, counts)
        return PBOResult(float((logits <= 0).mean()), logits, len(masks), n_trials)
    picks = np.array([[b in c for b in range(n_blocks)] for c in splits], dtype=np.float64)
    totals = (ret.sum(axis=1), sq.sum(axis=1), n.sum(axis=1))
    logits = np.empty(len(picks))
    rows = np.arange(min(chunk, len(picks)))
    for start in range(0, len(picks), chunk):
        c = picks[start : start + chunk]
        r_is, q_is, n_is = c @ ret.T, c @ sq.T, c @ n.T                         # (chunk, N)
        sr_is = _block_sharpe(r_is, q_is, n_is)
        sr_oos = _block_sharpe(totals[0] - r_is, totals[1] - q_is, totals[2] - n_is)
        winner = sr_is.argmax(axis=1)
        value = sr_oos[rows[: len(c)], winner][:, None]
        rank = (sr_oos < value).sum(axis=1) + 0.5 * ((sr_oos == value).sum(axis=1) - 1) + 1.0
        w = rank / (n_trials + 1.0)
        logits[start : start + len(c)] = np.log(w / (1.0 - w))
    return PBOResult(float((logits <= 0).mean()), logits, len(picks), n_trials)


def distinct_trials(ret: np.ndarray, sq: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the first trial of each distinct row of block sums, in trial order; trials sharing it).
    Trials with bit-identical blocks (e.g. configurations that never trade in a regime, or lookback
    windows without a confidence threshold) have the same Sharpe on every set of blocks, so CSCV
    scores each distinct row once and counts it as many times as it occurs."""
    from forex_pipeline.regimes.cscv_kernel import distinct_rows

    return distinct_rows(np.concatenate([ret, sq, n], axis=1).view(np.int64))


def block_matrix(values: Iterable[object]) -> np.ndarray:
    """(trials, S) floats from one block column's values (lists, arrays or JSON text)."""
    import json

    values = list(values)
    if values and isinstance(values[0], str):
        values = [json.loads(v) if isinstance(v, str) else v for v in values]
    if values and all(type(v) is list for v in values):
        widths = set(map(len, values))
        if len(widths) == 1:               # equal-length lists of numbers: one pass, no nested conversion
            try:
                flat = np.fromiter(chain.from_iterable(values), dtype=np.float64, count=len(values) * widths.pop())
            except (TypeError, ValueError):
                pass                       # e.g. a null inside a list: the general conversion below
            else:
                return flat.reshape(len(values), -1)
    return np.asarray(values, dtype=np.float64).reshape(len(values), -1)


def blocks_of(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sum_ret, sum_sq, n_bars) block arrays (trials, S) from rows' block columns (lists, arrays or JSON text)."""
    return block_matrix(rows["block_sum_ret"]), block_matrix(rows["block_sum_sq"]), block_matrix(rows["block_n_bars"])


@dataclass(frozen=True)
class TrialBlocks:
    """The CSCV inputs of a set of trials as arrays: each trial's regime and its (S,) block sums of
    returns, squared returns and bars. Built once from rows (`from_rows`) and concatenated, so a
    growing trial set is never converted from lists again (pipeline/trust.py TrialBlockCache)."""

    regimes: np.ndarray        # (N,) object: regime names
    ret: np.ndarray            # (N, S)
    sq: np.ndarray             # (N, S)
    n: np.ndarray              # (N, S)
    parts: tuple["TrialBlocks", ...] = field(default=(), repr=False, compare=False)   # what `concat` joined

    @classmethod
    def from_rows(cls, rows: pd.DataFrame) -> "TrialBlocks":
        """Rows with regime and the three block columns (regime 'all' left out)."""
        regimes = rows["regime"].to_numpy(dtype=object)
        keep = regimes != REGIME_ALL
        return cls(
            regimes[keep],
            *(block_matrix(rows[column].to_numpy(dtype=object)[keep]) for column in ("block_sum_ret", "block_sum_sq", "block_n_bars")),
        )

    @classmethod
    def concat(cls, parts: Iterable["TrialBlocks"]) -> "TrialBlocks":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls(np.empty(0, dtype=object), *(np.empty((0, 0)) for _ in range(3)))
        return cls(
            np.concatenate([p.regimes for p in parts]),
            *(np.concatenate([getattr(p, name) for p in parts]) for name in ("ret", "sq", "n")),
            parts=tuple(parts),
        )

    def __len__(self) -> int:
        return int(self.regimes.shape[0])

    def of_regime(self, regime: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.flatnonzero(self.regimes == regime)
        return self.ret[rows], self.sq[rows], self.n[rows]

    def by_regime(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """`of_regime` of every regime present (sorted by name): grouped once per TrialBlocks, and for a
        concatenation joined from its parts' groups (the cached runs of a TrialBlockCache are not
        grouped again). Shared arrays: read them, never write."""
        return self._groups

    @cached_property
    def _groups(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if self.parts:
            groups = [p.by_regime() for p in self.parts]
            return {
                name: tuple(np.concatenate([g[name][k] for g in groups if name in g]) for k in range(3))  # type: ignore[misc]
                for name in sorted(set().union(*groups))
            }
        changes = np.flatnonzero(self.regimes[1:] != self.regimes[:-1]) + 1
        starts = [0, *changes.tolist()]
        names = [str(r) for r in self.regimes[starts].tolist()] if len(self) else []
        if all(a < b for a, b in zip(names, names[1:])):      # sorted by regime already (a run as stored): slices
            bounds = [*starts, len(self)]
            return {
                name: (self.ret[a:b], self.sq[a:b], self.n[a:b]) for name, a, b in zip(names, bounds, bounds[1:])
            }
        codes, names = pd.factorize(self.regimes)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(names) + 1)).tolist()
        groups = {str(name): order[bounds[k] : bounds[k + 1]] for k, name in enumerate(names)}
        return {name: (self.ret[groups[name]], self.sq[groups[name]], self.n[groups[name]]) for name in sorted(groups)}


def regime_pbo(rows: pd.DataFrame, segment: str = SELECTION, max_splits: int | None = None) -> dict[str, float]:
    """PBO per regime (not 'all') over every trial (row) of `segment` in `rows`; NaN with < 2 trials."""
    if "segment" in rows.columns:
        rows = rows[rows["segment"] == segment]
    out: dict[str, float] = {}
    for regime, group in rows[rows["regime"] != REGIME_ALL].groupby("regime", sort=True):
        out[str(regime)] = cscv_pbo(*blocks_of(group), max_splits=max_splits).pbo if len(group) >= 2 else float("nan")
    return out


# ------------------------------------------------------------------------------------ noise p-value
@dataclass(frozen=True)
class GumbelFit:
    """Gumbel (type I extreme value) law of one noise model's best Sharpe: P(X <= x) =
    exp(-exp(-(x - location) / scale))."""

    location: float
    scale: float

    def survival(self, x: float, models: float = 1.0) -> float:
        """P(max of `models` independent draws >= x): Gumbel is max-stable, the max of m draws is
        Gumbel with location + scale ln m."""
        z = (x - self.location - self.scale * math.log(models)) / self.scale
        return float(-np.expm1(-np.exp(-z)))


def fit_gumbel(maxima: Iterable[float]) -> GumbelFit:
    """Method of moments: scale = sd * sqrt(6) / pi, location = mean - gamma * scale (gamma = Euler's)."""
    values = np.asarray(list(maxima), dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 10:
        raise ValueError(f"a Gumbel fit needs at least 10 finite maxima, got {values.size}")
    scale = float(values.std(ddof=1)) * math.sqrt(6.0) / math.pi
    if not scale > 0:
        raise ValueError("noise maxima are all equal: no spread to fit")
    return GumbelFit(float(values.mean()) - EULER_GAMMA * scale, scale)


def noise_p_value(observed: float, noise_maxima: Iterable[float], n_trials: int, trials_per_model: int) -> float:
    """P(the best of `n_trials` noise trials scores >= observed): the empirical p-value of a best
    chosen from n_trials trials (a Sharpe from the selection segment).

    `noise_maxima` are the best Sharpes of independent random-forecast models, each over
    `trials_per_model` configurations chosen by the same rule as real bests (`run_noise_backtests`).
    A best is the maximum over m = n_trials / trials_per_model such model-bests, so p = P(max of m
    noise model-bests >= observed). The empirical distribution of the noise model-bests is smoothed
    by a Gumbel fit (the limit law of maxima; max-stable, so the max of m is Gumbel again), which
    also gives the tail beyond the largest simulated maximum that m of up to a few dozen models
    needs: an unsmoothed empirical p of a max over m models has a floor of about m / (models + 1).
    NaN when the observed Sharpe or the noise are undefined.
    """
    if observed is None or not math.isfinite(observed):
        return float("nan")
    if trials_per_model < 1:
        raise ValueError(f"trials_per_model must be >= 1, got {trials_per_model}")
    try:
        fit = fit_gumbel(noise_maxima)
    except ValueError:
        return float("nan")
    return fit.survival(float(observed), max(n_trials / trials_per_model, 1.0))


# ------------------------------------------------------------------------------ baselines, verdict
def best_baseline(baselines: pd.DataFrame, regime: str, segment: str = SELECTION) -> tuple[str | None, float]:
    """(name, Sharpe) of the best baseline of `regime` on `segment`; flat scores 0 (it earns nothing,
    its Sharpe is undefined). Rows: BASELINE_COLUMNS of backtest/run.py `run_baseline_backtests`."""
    rows = baselines[(baselines["regime"] == regime) & (baselines["segment"] == segment)]
    if rows.empty:
        return None, float("nan")
    scores = np.where(rows["baseline"] == "flat", 0.0, rows["sharpe"].astype(float))
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    best = int(np.argmax(scores))
    return str(rows["baseline"].iloc[best]), float(scores[best]) if np.isfinite(scores[best]) else float("nan")


def is_significant(deflated: float, p_value: float, holdout_sharpe: float, thresholds: SignificanceSettings) -> bool:
    """DSR >= min_deflated_sharpe, noise p-value <= max_noise_p_value and holdout Sharpe >
    min_holdout_sharpe (settings.regimes.significance); an undefined figure is never significant."""
    values = (deflated, p_value, holdout_sharpe)
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return False
    return (
        deflated >= thresholds.min_deflated_sharpe
        and p_value <= thresholds.max_noise_p_value
        and holdout_sharpe > thresholds.min_holdout_sharpe
    )


TRUST_BEST_COLUMNS: tuple[str, ...] = (
    "selection_score", "holdout_score", "holdout_trades", "deflated_sharpe", "n_trials", "null_p_value", "pbo",
    "baseline", "baseline_score", "improvement_over_baseline", "significant",
)


def annotate_bests(
    bests: pd.DataFrame,
    *,
    trials: Mapping[str, TrialMoments],
    noise_maxima: pd.DataFrame | None,
    pbo: Mapping[str, float],
    baselines: pd.DataFrame | None,
    thresholds: SignificanceSettings,
    trials_per_model: int,
    segment: str = SELECTION,
) -> pd.DataFrame:
    """`bests` (regimes/selection.py, with score, holdout_score, sharpe_per_bar, n_bars, skewness,
    kurtosis) plus the trust figures of TRUST_BEST_COLUMNS, all recomputed from the current inputs:
    DSR and n_trials from `trials`, the noise p-value from `noise_maxima` (NOISE_MAXIMA_COLUMNS of
    `run_noise_backtests`), PBO per regime, the best baseline on `segment`, the verdict."""
    out = bests.copy()
    out["selection_score"] = out["score"].astype(float)
    out["n_trials"] = [trials.get(r, TrialMoments()).n_trials for r in out["regime"]]
    out["deflated_sharpe"] = deflate(out, trials) if len(out) else pd.Series(dtype=float)
    p_values = []
    for regime, score, n in zip(out["regime"], out["score"], out["n_trials"]):
        if noise_maxima is None:
            p_values.append(float("nan"))
            continue
        noise = noise_maxima[(noise_maxima["regime"] == regime) & (noise_maxima["segment"] == segment)]["best_sharpe"]
        p_values.append(noise_p_value(float(score), noise, int(n), trials_per_model))
    out["null_p_value"] = p_values
    out["pbo"] = [float(pbo.get(r, float("nan"))) for r in out["regime"]]
    named = [best_baseline(baselines, r, segment) if baselines is not None else (None, float("nan")) for r in out["regime"]]
    out["baseline"] = [name for name, _ in named]
    out["baseline_score"] = [score for _, score in named]
    out["improvement_over_baseline"] = out["selection_score"] - out["baseline_score"]
    holdout = out["holdout_score"] if "holdout_score" in out.columns else pd.Series(np.nan, index=out.index)
    out["significant"] = [
        is_significant(d, p, h, thresholds) for d, p, h in zip(out["deflated_sharpe"], out["null_p_value"], holdout)
    ]
    return out
