"""Regime-best selection edge cases and the deflated Sharpe ratio."""

from __future__ import annotations

import math
from itertools import permutations
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.regimes.deflated_sharpe import (
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
)
from forex_pipeline.regimes.selection import BEST_COLUMNS, outside_every_top, select_regime_bests

EMPTY = pd.DataFrame()


def rows(model: str, regime: str, sharpes: list[float], trades: int | list[int] = 20, n_bars: int = 500) -> pd.DataFrame:
    trades = trades if isinstance(trades, list) else [trades] * len(sharpes)
    return pd.DataFrame(
        {
            "regime": regime,
            "model_config_hash": model,
            "inference_config_hash": [f"{model}-cfg{i}" for i in range(len(sharpes))],
            "sharpe": sharpes,
            "trade_count": trades,
            "n_bars": n_bars,
        }
    )


def test_each_model_contributes_its_best_eligible_configuration() -> None:
    candidates = pd.concat([rows("m1", "bull", [0.5, 2.0, 9.0], trades=[20, 20, 3]), rows("m2", "bull", [1.0, np.nan])])
    result = select_regime_bests(candidates, EMPTY, top_n=3, min_trades=10)
    bests = result.bests
    assert list(bests.columns[: len(BEST_COLUMNS)]) == list(BEST_COLUMNS)
    assert list(bests["model_config_hash"]) == ["m1", "m2"]
    assert list(bests["inference_config_hash"]) == ["m1-cfg1", "m2-cfg0"]
    assert list(bests["rank"]) == [1, 2]
    assert (bests["n_trials"] == 5).all()
    assert bests["previous_best_score"].isna().all() and bests["improvement"].isna().all()
    assert result.kept_models == {"m1", "m2"}
    assert [e["regime"] for e in result.events] == ["bull"] and result.events[0]["previous_best_score"] is None


def test_top_n_pushes_models_out_and_reports_them_removed() -> None:
    first = select_regime_bests(pd.concat([rows("a", "bull", [1.0]), rows("b", "bull", [2.0])]), EMPTY, top_n=2, min_trades=1)
    second = select_regime_bests(rows("c", "bull", [3.0]), first.bests, top_n=2, min_trades=1)
    assert list(second.bests["model_config_hash"]) == ["c", "b"]
    assert second.removed_models == {"a"}
    event = second.events[0]
    assert event["previous_best_score"] == 2.0 and event["improvement"] == pytest.approx(1.0)
    assert event["relative_improvement"] == pytest.approx(0.5)
    assert list(second.bests["n_trials"]) == [3, 3]


def test_ties_are_broken_the_same_in_any_order() -> None:
    models = [rows(m, "calm", [1.5], trades=t) for m, t in (("x", 30), ("y", 30), ("z", 40))]
    outcomes = set()
    for order in permutations(range(3)):
        standing = EMPTY
        for i in order:
            standing = select_regime_bests(models[i], standing, top_n=2, min_trades=1).bests
        outcomes.add(tuple(standing["model_config_hash"]))
    assert outcomes == {("z", "x")}


def test_no_eligible_rows_keep_standing_and_make_no_event() -> None:
    first = select_regime_bests(rows("a", "bull", [1.0]), EMPTY, top_n=2, min_trades=5)
    second = select_regime_bests(rows("b", "bull", [5.0], trades=2), first.bests, top_n=2, min_trades=5)
    assert list(second.bests["model_config_hash"]) == ["a"]
    assert second.events == ()
    assert second.removed_models == {"b"}
    nothing = select_regime_bests(rows("b", "bull", [np.nan], trades=0), EMPTY, top_n=2, min_trades=0)
    assert nothing.bests.empty and nothing.kept_models == frozenset()


def test_improvement_never_divides_by_zero_or_negative_scores() -> None:
    for previous in (0.0, -1.0):
        first = select_regime_bests(rows("a", "bear", [previous]), EMPTY, top_n=3, min_trades=1)
        second = select_regime_bests(rows("b", "bear", [0.5]), first.bests, top_n=3, min_trades=1)
        top = second.bests.iloc[0]
        assert top["model_config_hash"] == "b"
        assert top["improvement"] == pytest.approx(0.5 - previous)
        assert math.isnan(top["relative_improvement"])
        assert second.events[0]["relative_improvement"] is None


def test_negative_scores_still_rank_and_all_is_not_a_regime() -> None:
    candidates = pd.concat([rows("a", "bear", [-0.3]), rows("b", "bear", [-0.1]), rows("a", "all", [1.0])])
    result = select_regime_bests(candidates, EMPTY, top_n=5, min_trades=1)
    assert list(result.bests["regime"]) == ["bear", "bear"]
    assert list(result.bests["model_config_hash"]) == ["b", "a"]


def test_rerun_model_is_rescored_and_other_regimes_pass_through() -> None:
    first = select_regime_bests(pd.concat([rows("a", "bull", [2.0]), rows("a", "calm", [1.0])]), EMPTY, top_n=2, min_trades=1)
    again = select_regime_bests(rows("a", "bull", [0.5]), first.bests, top_n=2, min_trades=1, regimes=["bull"])
    assert again.bests.set_index("regime").loc["bull", "score"] == 0.5
    assert again.bests.set_index("regime").loc["calm", "score"] == 1.0


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="candidates.*sharpe"):
        select_regime_bests(rows("a", "bull", [1.0]).drop(columns="sharpe"), EMPTY, top_n=1, min_trades=1)
    with pytest.raises(ValueError, match="top_n"):
        select_regime_bests(rows("a", "bull", [1.0]), EMPTY, top_n=0, min_trades=1)


def test_deflated_sharpe_is_reported_when_the_scale_is_known() -> None:
    candidates = rows("a", "bull", list(np.linspace(-1, 2, 20)), n_bars=2000)
    without = select_regime_bests(candidates, EMPTY, top_n=1, min_trades=1)
    assert math.isnan(without.bests["deflated_sharpe"].iloc[0])
    year = 6240.0
    with_scale = select_regime_bests(candidates, EMPTY, top_n=1, min_trades=1, bars_per_year=year)
    per_bar = candidates["sharpe"] / math.sqrt(year)
    expected = deflated_sharpe(2.0 / math.sqrt(year), 20, float(per_bar.var(ddof=1)), 2000)
    assert with_scale.bests["deflated_sharpe"].iloc[0] == pytest.approx(expected)
    by_column = select_regime_bests(candidates.assign(base_timeframe="1h"), EMPTY, top_n=1, min_trades=1)
    assert by_column.bests["deflated_sharpe"].iloc[0] == pytest.approx(expected)


def test_expected_max_sharpe_by_hand() -> None:
    z = NormalDist().inv_cdf
    gamma = 0.5772156649015329
    expected = 0.1 * ((1 - gamma) * z(1 - 1 / 100) + gamma * z(1 - 1 / (100 * math.e)))
    assert expected_max_sharpe(100, 0.01) == pytest.approx(expected, rel=1e-12)
    assert 0.25 < expected_max_sharpe(100, 0.01) < 0.26          # about 2.5 standard deviations
    assert expected_max_sharpe(1, 0.01) == 0.0 and expected_max_sharpe(50, 0.0) == 0.0


def test_probabilistic_sharpe_by_hand() -> None:
    sr, n = 0.1, 251
    z = (sr - 0.05) * math.sqrt(n - 1) / math.sqrt(1 - (-0.5) * sr + (5 - 1) / 4 * sr**2)
    assert probabilistic_sharpe(sr, 0.05, n, skewness=-0.5, kurtosis=5.0) == pytest.approx(NormalDist().cdf(z), rel=1e-12)
    assert math.isnan(probabilistic_sharpe(float("nan"), 0.0, 100))
    assert math.isnan(probabilistic_sharpe(0.1, 0.0, 1))


def test_deflated_sharpe_monotonicity() -> None:
    base = deflated_sharpe(0.08, 50, 0.001, 1000)
    assert deflated_sharpe(0.08, 500, 0.001, 1000) < base           # more trials: more luck to discount
    assert deflated_sharpe(0.08, 50, 0.004, 1000) < base           # more dispersed trials
    assert deflated_sharpe(0.12, 50, 0.001, 1000) > base           # higher observed Sharpe
    assert deflated_sharpe(0.08, 50, 0.001, 4000) > base           # longer sample
    assert 0.0 <= base <= 1.0
    with pytest.raises(ValueError, match="sharpe_variance"):
        expected_max_sharpe(10, -1.0)


def test_outside_every_top_only_when_selection_keeps_the_standing_rows() -> None:
    rng = np.random.default_rng(3)
    kept_fields = ["regime", "rank", "model_config_hash", "inference_config_hash", "score", "trade_count", "previous_best_score", "improvement"]
    standing, answers = EMPTY, []
    for i in range(60):
        model = pd.concat([rows(f"m{i:02d}", regime, list(rng.normal(0, 1, 3)), trades=list(rng.integers(0, 30, 3))) for regime in ("bull", "calm")])
        outside = outside_every_top(model, standing, top_n=3, min_trades=5, regimes=["bull", "calm"])
        result = select_regime_bests(model, standing, top_n=3, min_trades=5, regimes=["bull", "calm"])
        if outside:
            expected = standing.sort_values(["regime", "rank"], kind="mergesort").reset_index(drop=True)
            pd.testing.assert_frame_equal(result.bests[kept_fields], expected[kept_fields], check_dtype=False)
            assert result.events == ()
        else:
            assert standing.empty or result.events or not result.bests[kept_fields].equals(standing[kept_fields])
        answers.append(outside)
        standing = result.bests
    assert any(answers) and not all(answers)
    assert not outside_every_top(rows(standing["model_config_hash"].iloc[0], "bull", [-9.0]), standing, 3, 5, ["bull"])
    assert not outside_every_top(rows("new", "bull", [-9.0]), standing, 2, 5, ["bull"])   # top N shrank: re-ranked
