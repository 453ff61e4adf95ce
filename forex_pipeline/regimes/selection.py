"""Best models per regime: a pure function from new backtest rows and the standing bests.

Per regime, each model contributes its best inference configuration by Sharpe among rows with at
least `min_trades` trades and a finite Sharpe; the regime keeps the top `top_n` models. Every
ordering is total - (score desc, trade_count desc, model_config_hash asc, inference_config_hash
asc) - and top_N(S + m) = top_N(top_N(S) + m), so serial and parallel orders of recording models
end in the same bests. A model present in both inputs is re-scored from the candidates.

Selection and holdout: when the candidates carry a `segment` column (backtest/segments.py), models
are ranked and bests chosen on the rows of `selection_segment` only; each best then reports the
holdout Sharpe and trades of the same configuration in the same regime (`holdout_score`,
`holdout_trades`), which never influence the ranking. Keep-or-delete follows the ranking, so it
uses the selection segment only. A frame without a segment column is one segment (the legacy
whole-test rows).

Deflated Sharpe: with `trials` (regime -> TrialMoments over ALL trials recorded in the regime, the
new ones included; regimes/significance.py) every best in the regime, standing ones too, is
re-deflated with the current N and V from its own per-bar Sharpe, bars, skewness and kurtosis, as
Bailey & Lopez de Prado (2014) define it. Standing rows without those moments keep their stored DSR.
Without `trials` the legacy estimate is kept (N = stored n_trials + new rows, V over the new rows).

Improvement is reported against the regime's previous rank-1 score: `improvement` = score - previous
(a difference, always defined when there was a previous best) and `relative_improvement` =
improvement / previous only when previous > 0 (never a division by zero or a negative score).
Standing rows that stay keep their stored improvement and deflated Sharpe.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forex_pipeline.data.timeframes import bars_per_year as timeframe_bars_per_year
from forex_pipeline.keys import REGIME_ALL
from forex_pipeline.regimes.deflated_sharpe import deflated_sharpe
from forex_pipeline.regimes.significance import TrialMoments, deflate

BEST_COLUMNS: tuple[str, ...] = (
    "regime",
    "rank",
    "model_config_hash",
    "inference_config_hash",
    "score",
    "previous_best_score",
    "improvement",
    "relative_improvement",
    "trade_count",
    "n_trials",
    "deflated_sharpe",
    "selection_score",
    "holdout_score",
    "holdout_trades",
    "sharpe_per_bar",
    "n_bars",
    "skewness",
    "kurtosis",
)
CANDIDATE_REQUIRED = ("regime", "model_config_hash", "inference_config_hash", "sharpe", "trade_count")
STANDING_REQUIRED = ("regime", "rank", "model_config_hash", "inference_config_hash", "score", "trade_count", "n_trials")
_ORDER = ["score", "trade_count", "model_config_hash", "inference_config_hash"]
_ASCENDING = [False, False, True, True]


@dataclass(frozen=True)
class SelectionResult:
    bests: pd.DataFrame                  # BEST_COLUMNS first, then identifying columns carried from the inputs
    kept_models: frozenset[str]          # model_config_hash in any regime's top N
    removed_models: frozenset[str]       # in the inputs, in no top N any more
    events: tuple[dict[str, Any], ...]   # regimes whose rank 1 changed


def _require(frame: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame lacks column(s) {missing}")


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(_ORDER, ascending=_ASCENDING, kind="mergesort")


def _per_bar_sharpe(rows: pd.DataFrame, bars_per_year: float | None) -> pd.Series:
    """Annualised Sharpe -> per bar, using a base_timeframe column if present, else `bars_per_year`."""
    if "base_timeframe" in rows.columns:
        scale = rows["base_timeframe"].map(lambda tf: timeframe_bars_per_year(str(tf)))
    elif bars_per_year is not None:
        scale = pd.Series(float(bars_per_year), index=rows.index)
    else:
        return pd.Series(np.nan, index=rows.index)
    return rows["sharpe"] / np.sqrt(scale.astype(float))


def _deflated(best: pd.DataFrame, regime_rows: pd.DataFrame, n_trials: int, bars_per_year: float | None) -> pd.Series:
    """Deflated Sharpe of each model's best row; the trial variance is over all rows tried in the regime."""
    if "n_bars" not in best.columns:
        return pd.Series(np.nan, index=best.index)
    trial = _per_bar_sharpe(regime_rows, bars_per_year)
    trial = trial[np.isfinite(trial)]
    variance = float(trial.var(ddof=1)) if len(trial) > 1 else 0.0
    observed = _per_bar_sharpe(best, bars_per_year)
    skew = best["skewness"] if "skewness" in best.columns else pd.Series(0.0, index=best.index)
    kurt = best["kurtosis"] if "kurtosis" in best.columns else pd.Series(3.0, index=best.index)
    return pd.Series(
        [
            deflated_sharpe(float(sr), n_trials, variance, int(n), float(s), float(k)) if math.isfinite(sr) else np.nan
            for sr, n, s, k in zip(observed, best["n_bars"], skew, kurt)
        ],
        index=best.index,
        dtype=float,
    )


def model_bests(candidates: pd.DataFrame, min_trades: int) -> pd.DataFrame:
    """Each (regime, model)'s best eligible row: highest Sharpe, then more trades, then config hash."""
    eligible = candidates[(candidates["trade_count"] >= min_trades) & np.isfinite(candidates["sharpe"].astype(float))]
    ordered = eligible.assign(score=eligible["sharpe"].astype(float)).pipe(_sorted)
    return ordered.drop_duplicates(["regime", "model_config_hash"], keep="first")


def split_segments(
    candidates: pd.DataFrame, selection_segment: str = "selection", holdout_segment: str = "holdout"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows ranked, rows that only confirm): by the `segment` column, or (all rows, none) without one."""
    if "segment" not in candidates.columns:
        return candidates, candidates.iloc[0:0]
    selection = candidates[candidates["segment"] == selection_segment]
    if len(candidates) and selection.empty:
        raise ValueError(
            f"no candidate row of segment {selection_segment!r}; segments present: {sorted(set(candidates['segment']))}"
        )
    return selection, candidates[candidates["segment"] == holdout_segment]


def _with_holdout(fresh: pd.DataFrame, holdout: pd.DataFrame) -> pd.DataFrame:
    """holdout_score / holdout_trades of each fresh best: the same configuration in the same regime."""
    keys = ["regime", "model_config_hash", "inference_config_hash"]
    if holdout.empty:
        return fresh.assign(holdout_score=np.nan, holdout_trades=pd.array([pd.NA] * len(fresh), dtype="Int64"))
    confirm = holdout.loc[:, [*keys, "sharpe", "trade_count"]].rename(
        columns={"sharpe": "holdout_score", "trade_count": "holdout_trades"}
    )
    merged = fresh.drop(columns=[c for c in ("holdout_score", "holdout_trades") if c in fresh.columns]).merge(
        confirm, on=keys, how="left", validate="one_to_one"
    )
    merged.index = fresh.index
    merged["holdout_trades"] = merged["holdout_trades"].astype("Int64")
    return merged


def _relative(improvement: float, previous: float) -> float:
    return improvement / previous if previous is not None and math.isfinite(previous) and previous > 0 else np.nan


def select_regime_bests(
    candidates: pd.DataFrame,
    standing: pd.DataFrame,
    top_n: int,
    min_trades: int,
    regimes: Iterable[str] | None = None,
    bars_per_year: float | None = None,
    *,
    trials: Mapping[str, TrialMoments] | None = None,
    selection_segment: str = "selection",
    holdout_segment: str = "holdout",
) -> SelectionResult:
    """New top-N bests per regime from new backtest rows (with model_config_hash) and the standing bests.

    `regimes` limits the update (default: every regime in either input but 'all'); standing rows of
    other regimes pass through unchanged. Deflated Sharpe needs n_bars and a per-bar scale (a
    base_timeframe column or `bars_per_year`); without them it is NaN.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n}")
    _require(candidates, CANDIDATE_REQUIRED, "candidates")
    if len(standing.columns):
        _require(standing, STANDING_REQUIRED, "standing bests")
    else:
        standing = pd.DataFrame(columns=list(STANDING_REQUIRED))
    candidates = candidates.drop(columns=[c for c in _UNUSED if c in candidates.columns])
    candidates, holdout = split_segments(candidates, selection_segment, holdout_segment)
    if regimes is None:
        found = set(candidates["regime"]) | set(standing["regime"])
        regimes = sorted(found - {REGIME_ALL})
    regimes = list(dict.fromkeys(regimes))
    new_models = set(candidates["model_config_hash"])
    per_model = model_bests(candidates, min_trades)
    blocks: list[pd.DataFrame] = [standing[~standing["regime"].isin(regimes)]]
    events: list[dict[str, Any]] = []
    for regime in regimes:
        old = standing[standing["regime"] == regime].sort_values("rank", kind="mergesort")
        tried = candidates[candidates["regime"] == regime]
        if trials is not None:
            n_trials = trials.get(regime, TrialMoments()).n_trials
        else:
            n_trials = (int(old["n_trials"].max()) if len(old) else 0) + len(tried)
        fresh = per_model[per_model["regime"] == regime].drop(columns=["sharpe"])
        fresh = fresh.assign(
            deflated_sharpe=_deflated(per_model[per_model["regime"] == regime], tried, n_trials, bars_per_year),
            selection_score=fresh["score"],
        )
        fresh = _with_holdout(fresh, holdout[holdout["regime"] == regime])
        previous = float(old["score"].iloc[0]) if len(old) else None
        if previous is not None:
            improvement = fresh["score"] - previous
            fresh = fresh.assign(
                previous_best_score=previous,
                improvement=improvement,
                relative_improvement=[_relative(i, previous) for i in improvement],
            )
        else:
            fresh = fresh.assign(previous_best_score=np.nan, improvement=np.nan, relative_improvement=np.nan)
        kept_old = old[~old["model_config_hash"].isin(new_models)]
        pool = pd.concat([kept_old, fresh], ignore_index=True) if len(kept_old) else fresh.reset_index(drop=True)
        top = _sorted(pool).head(top_n).reset_index(drop=True)
        if trials is not None and len(top) and {"sharpe_per_bar", "skewness", "kurtosis", "n_bars"} <= set(top.columns):
            recomputed = deflate(top.assign(regime=regime), trials)
            top["deflated_sharpe"] = recomputed.where(recomputed.notna(), top["deflated_sharpe"])
        top = top.assign(rank=np.arange(1, len(top) + 1), n_trials=n_trials, regime=regime)
        blocks.append(top)
        if len(top) and (
            not len(old)
            or (top.at[0, "model_config_hash"], top.at[0, "inference_config_hash"])
            != (old["model_config_hash"].iloc[0], old["inference_config_hash"].iloc[0])
        ):
            row = top.iloc[0]
            events.append(
                {
                    "regime": regime,
                    "model_config_hash": row["model_config_hash"],
                    "inference_config_hash": row["inference_config_hash"],
                    "score": float(row["score"]),
                    "previous_best_score": previous,
                    "improvement": None if previous is None else float(row["score"]) - previous,
                    "relative_improvement": None if previous is None else _none_if_nan(_relative(float(row["score"]) - previous, previous)),
                }
            )
    bests = pd.concat([b for b in blocks if len(b)], ignore_index=True) if any(len(b) for b in blocks) else pd.DataFrame()
    bests = _tidy(bests, standing, candidates)
    kept = frozenset(bests["model_config_hash"])
    seen = set(standing["model_config_hash"]) | new_models
    return SelectionResult(bests, kept, frozenset(seen - kept), tuple(events))


def outside_every_top(
    candidates: pd.DataFrame,
    standing: pd.DataFrame,
    top_n: int,
    min_trades: int,
    regimes: Iterable[str],
    selection_segment: str = "selection",
) -> bool:
    """True when select_regime_bests would keep the standing bests as they are: no candidate model
    enters any of `regimes`' top N, and each regime's standing rows already are its top N in rank
    order (ranks 1..n, n <= top_n, strictly in the total order). Its bests are then the standing
    rows, re-ranked as they stand, with no event. Any doubt answers False (a candidate model among
    the bests, no standing rows, a non-finite score, candidates without a selection row)."""
    if standing.empty or not len(candidates):
        return False
    _require(candidates, CANDIDATE_REQUIRED, "candidates")
    _require(standing, STANDING_REQUIRED, "standing bests")
    models = set(candidates["model_config_hash"].tolist())
    if models & set(standing["model_config_hash"].tolist()):
        return False
    rows = candidates if "segment" not in candidates.columns else candidates[candidates["segment"] == selection_segment]
    if rows.empty:
        return False
    old: dict[str, list[tuple[int, tuple[float, int, str, str]]]] = {}
    for regime, rank, score, trades, model, config in zip(
        *(standing[c].tolist() for c in ("regime", "rank", "score", "trade_count", "model_config_hash", "inference_config_hash"))
    ):
        if not math.isfinite(float(score)):
            return False
        old.setdefault(str(regime), []).append((int(rank), (-float(score), -int(trades), str(model), str(config))))
    new: dict[str, tuple[float, int, str, str]] = {}
    for regime, sharpe, trades, model, config in zip(
        *(rows[c].tolist() for c in ("regime", "sharpe", "trade_count", "model_config_hash", "inference_config_hash"))
    ):
        sharpe = float(sharpe)
        if trades >= min_trades and math.isfinite(sharpe):
            key = (-sharpe, -int(trades), str(model), str(config))
            new[str(regime)] = min(key, new.get(str(regime), key))
    for regime in dict.fromkeys(regimes):
        ranked = sorted(old.get(regime, []))
        keys = [key for _, key in ranked]
        if [rank for rank, _ in ranked] != list(range(1, len(ranked) + 1)) or len(ranked) > top_n:
            return False
        if any(a >= b for a, b in zip(keys, keys[1:])):
            return False
        if regime in new and (len(keys) < top_n or new[regime] < keys[-1]):
            return False
    return True


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


_DROPPED = (
    "sharpe", "sortino", "max_drawdown", "total_return", "win_rate", "profit_factor", "exposure",
    "prediction_method", "ensemble_method", "confidence_threshold", "lookback_window", "segment",
    "sum_ret", "sum_sq", "sum_cube", "sum_quad", "block_sum_ret", "block_sum_sq", "block_n_bars",
)

# Candidate columns no step reads and _tidy drops: left out first, so no step copies them.
_UNUSED = tuple(c for c in _DROPPED if c not in ("sharpe", "segment"))


def _tidy(bests: pd.DataFrame, standing: pd.DataFrame, candidates: pd.DataFrame) -> pd.DataFrame:
    """BEST_COLUMNS first, then the identifying columns the inputs carried (ids, partition keys)."""
    extra = [
        c for c in dict.fromkeys([*standing.columns, *candidates.columns])
        if c not in BEST_COLUMNS and c not in _DROPPED and c in bests.columns
    ]
    if bests.empty:
        return pd.DataFrame(columns=[*BEST_COLUMNS, *extra])
    for column in BEST_COLUMNS:
        if column not in bests.columns:
            bests[column] = np.nan
    bests = bests.loc[:, [*BEST_COLUMNS, *extra]]
    bests["selection_score"] = bests["selection_score"].astype(float).fillna(bests["score"].astype(float))
    bests["rank"] = bests["rank"].astype(np.int64)
    bests["trade_count"] = bests["trade_count"].astype(np.int64)
    bests["n_trials"] = bests["n_trials"].astype(np.int64)
    return bests.sort_values(["regime", "rank"], kind="mergesort").reset_index(drop=True)
