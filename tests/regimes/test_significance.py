"""The trust figures of regime bests: DSR as published, N and V over all trials, PBO by CSCV, the
noise p-value, the verdict; and a standing best re-deflated when trials are added."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.regimes.deflated_sharpe import deflated_sharpe, expected_max_sharpe
from forex_pipeline.regimes.selection import select_regime_bests
from forex_pipeline.regimes.significance import (
    TrialBlocks,
    TrialMoments,
    annualised_to_per_bar,
    best_baseline,
    cscv_pbo,
    deflate,
    fit_gumbel,
    is_significant,
    noise_p_value,
    regime_pbo,
    regime_trials,
    trial_moments,
)
from forex_pipeline.settings import SignificanceSettings


def test_paper_worked_example() -> None:
    """Bailey & Lopez de Prado (2014), section 'A numerical example': annualised SR 2.5 from T = 1250
    daily returns, N = 100 trials whose annualised Sharpes have variance 0.5, skewness -3, kurtosis
    10: E[max SR] = 0.1132 a day and DSR = 0.9004."""
    sr, v = annualised_to_per_bar(2.5, 0.5, 250)
    assert expected_max_sharpe(100, v) == pytest.approx(0.1132, abs=5e-5)
    assert deflated_sharpe(sr, 100, v, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=5e-5)
    # feeding the annualised figures directly (the old mistake) gives something else entirely
    assert abs(deflated_sharpe(2.5, 100, 0.5, 1250, -3.0, 10.0) - 0.9004) > 0.05


def test_trial_moments_merge_and_variance() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0.01, 0.02, 300)
    values[::17] = np.nan
    whole = trial_moments(values)
    parts = trial_moments(values[:100]) + trial_moments(values[100:])
    assert whole.n_trials == parts.n_trials == 300
    assert whole.n_finite == parts.n_finite == int(np.isfinite(values).sum())
    assert parts.variance == pytest.approx(np.nanvar(values, ddof=1), rel=1e-9)
    assert TrialMoments().variance == 0.0


def _rows(model: str, regime: str, sharpes_per_bar: list[float], segment: str = "selection", n_bars: int = 800) -> pd.DataFrame:
    year = 6240.0
    return pd.DataFrame(
        {
            "regime": regime,
            "segment": segment,
            "model_config_hash": model,
            "inference_config_hash": [f"cfg{i}" for i in range(len(sharpes_per_bar))],
            "sharpe": np.asarray(sharpes_per_bar) * math.sqrt(year),
            "sharpe_per_bar": sharpes_per_bar,
            "trade_count": 40,
            "n_bars": n_bars,
            "skewness": -0.5,
            "kurtosis": 8.0,
        }
    )


def test_regime_trials_count_every_row_of_the_selection_segment() -> None:
    rows = pd.concat([_rows("a", "bull", [0.01, 0.02, np.nan]), _rows("a", "bull", [0.5], segment="holdout"), _rows("a", "all", [0.1])])
    trials = regime_trials(rows)
    assert set(trials) == {"bull"}
    assert trials["bull"].n_trials == 3 and trials["bull"].n_finite == 2


def test_a_standing_best_is_deflated_again_when_trials_are_added() -> None:
    first_rows = _rows("m1", "bull", [0.12, 0.02, 0.01])
    trials = regime_trials(first_rows)
    first = select_regime_bests(first_rows, pd.DataFrame(), top_n=3, min_trades=10, trials=trials)
    best = first.bests.iloc[0]
    assert best["n_trials"] == 3 and best["model_config_hash"] == "m1"
    dsr_before = best["deflated_sharpe"]
    assert dsr_before == pytest.approx(deflated_sharpe(0.12, 3, trials["bull"].variance, 800, -0.5, 8.0))
    # a weaker model arrives: m1 stays rank 1, but N and V grew, so its DSR must move
    second_rows = _rows("m2", "bull", list(np.linspace(-0.05, 0.08, 40)))
    trials = regime_trials(pd.concat([first_rows, second_rows]))
    second = select_regime_bests(second_rows, first.bests, top_n=3, min_trades=10, trials=trials)
    again = second.bests.iloc[0]
    assert again["model_config_hash"] == "m1" and again["n_trials"] == 43
    assert again["deflated_sharpe"] == pytest.approx(deflated_sharpe(0.12, 43, trials["bull"].variance, 800, -0.5, 8.0))
    assert again["deflated_sharpe"] < dsr_before
    assert deflate(second.bests, trials).tolist() == pytest.approx(second.bests["deflated_sharpe"].tolist())


def test_selection_ranks_on_selection_only_and_reports_the_holdout() -> None:
    selection = pd.concat([_rows("m1", "bull", [0.05, 0.03]), _rows("m2", "bull", [0.04])])
    holdout = pd.concat([_rows("m1", "bull", [-0.01, 0.20], segment="holdout"), _rows("m2", "bull", [0.30], segment="holdout")])
    bests = select_regime_bests(pd.concat([selection, holdout]), pd.DataFrame(), top_n=2, min_trades=10).bests
    assert list(bests["model_config_hash"]) == ["m1", "m2"]
    assert list(bests["inference_config_hash"]) == ["cfg0", "cfg0"]
    assert bests["holdout_score"].tolist() == pytest.approx([-0.01 * math.sqrt(6240), 0.30 * math.sqrt(6240)])
    assert bests["selection_score"].tolist() == pytest.approx([0.05 * math.sqrt(6240), 0.04 * math.sqrt(6240)])
    assert bests["holdout_trades"].tolist() == [40, 40]


def _blocks(returns: np.ndarray, n_blocks: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trials, S) block sums of a (trials, bars) return matrix."""
    parts = np.array_split(np.arange(returns.shape[1]), n_blocks)
    ret = np.stack([returns[:, p].sum(axis=1) for p in parts], axis=1)
    sq = np.stack([(returns[:, p] ** 2).sum(axis=1) for p in parts], axis=1)
    n = np.stack([np.full(returns.shape[0], p.size, float) for p in parts], axis=1)
    return ret, sq, n


def test_pbo_is_near_zero_for_a_dominant_strategy_and_near_half_for_noise() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1e-3, (50, 3200))
    noise_pbo = cscv_pbo(*_blocks(noise))
    assert noise_pbo.n_combinations == 12870 and noise_pbo.n_trials == 50
    assert noise_pbo.pbo > 0.25                        # one grid varies; the average is ~0.5 (next test)
    dominant = noise.copy()
    dominant[7] += 4e-4                                 # a per-bar Sharpe of 0.4 in every block
    assert cscv_pbo(*_blocks(dominant)).pbo < 0.02


def test_pbo_over_many_noise_grids_averages_one_half() -> None:
    values = [cscv_pbo(*_blocks(np.random.default_rng(s).normal(0, 1e-3, (20, 640)))).pbo for s in range(12)]
    assert np.mean(values) == pytest.approx(0.5, abs=0.12)


def test_regime_pbo_reads_block_lists_or_json() -> None:
    rng = np.random.default_rng(2)
    ret, sq, n = _blocks(rng.normal(0, 1e-3, (6, 320)))
    rows = pd.DataFrame(
        {
            "regime": "bull",
            "segment": "selection",
            "block_sum_ret": ret.tolist(),
            "block_sum_sq": [json.dumps(x.tolist()) for x in sq],
            "block_n_bars": n.tolist(),
        }
    )
    assert regime_pbo(rows)["bull"] == cscv_pbo(ret, sq, n).pbo


@pytest.mark.parametrize("n_splits", [None, 300, 40])
def test_cscv_kernel_gives_the_matrix_form_logits(n_splits: int | None) -> None:
    """The numba kernel (subset tables for many splits, direct sums for few) and the matrix form
    agree split by split, ties and trials that never trade (all-zero blocks) included."""
    rng = np.random.default_rng(11)
    returns = rng.normal(0, 1e-3, (40, 640))
    returns[3] = 0.0                                   # never trades: Sharpe undefined -> 0 everywhere
    returns[5] = returns[4]                            # an exact tie with another trial
    returns[9, :320] = 0.0                             # trades in half the blocks only
    blocks = _blocks(returns)
    kernel = cscv_pbo(*blocks, max_splits=n_splits, seed=4)
    matrix = cscv_pbo(*blocks, max_splits=n_splits, seed=4, kernel=False)
    assert kernel.n_combinations == matrix.n_combinations == (n_splits or 12870)
    np.testing.assert_allclose(kernel.logits, matrix.logits, rtol=0, atol=1e-12)
    assert kernel.pbo == matrix.pbo


def _reference_logits(ret: np.ndarray, sq: np.ndarray, n: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """CSCV logits the straightforward way: per split and trial, sums added block by block in block
    order, sign(SR) * SR^2 with a branch (0 where undefined), the first strict maximum, averaged ranks."""
    def order(total: float, total_sq: float, n: float) -> float:
        safe_n = max(n, 1.0)
        mean = total / safe_n
        var = (total_sq - total * mean) / max(n - 1.0, 1.0)
        if n >= 2.0 and var > 1e-12 * total_sq / safe_n and var > 0.0:
            return mean * abs(mean) / var
        return 0.0

    totals = ret.sum(axis=1), sq.sum(axis=1), n.sum(axis=1)
    out = []
    for mask in masks.tolist():
        ins, oos = [], []
        for i in range(ret.shape[0]):
            r = q = c = 0.0
            for b in range(ret.shape[1]):
                if (mask >> b) & 1:
                    r, q, c = r + ret[i, b], q + sq[i, b], c + n[i, b]
            ins.append(order(r, q, c))
            oos.append(order(totals[0][i] - r, totals[1][i] - q, totals[2][i] - c))
        winner = max(range(len(ins)), key=lambda i: (ins[i], -i))
        value = oos[winner]
        rank = sum(v < value for v in oos) + 0.5 * (sum(v == value for v in oos) - 1) + 1.0
        w = rank / (len(oos) + 1.0)
        out.append(math.log(w / (1.0 - w)))
    return np.array(out)


@pytest.mark.parametrize("n_splits", [300, 60])
def test_cscv_kernel_equals_a_plain_loop_bit_for_bit(n_splits: int) -> None:
    """The kernel (vectorised direct sums: fewer splits than its subset tables) gives exactly the logits of plain
    Python loops over the same sums: ties, never-trading trials, one-bar and zero-variance blocks included."""
    from forex_pipeline.regimes.cscv_kernel import cscv_logits
    from forex_pipeline.regimes.significance import _split_masks

    rng = np.random.default_rng(12)
    returns = rng.normal(0, 1e-3, (23, 320))
    returns[3] = 0.0
    returns[5] = returns[4]
    returns[9, :200] = 0.0
    ret, sq, n = _blocks(returns)
    n[7, :5] = 1.0                                     # blocks of one bar
    sq[8, 2] = ret[8, 2] ** 2 / n[8, 2]                 # a block without variance
    masks = _split_masks(16, n_splits, 3)
    expected = _reference_logits(ret, sq, n, masks)
    np.testing.assert_array_equal(cscv_logits(ret, sq, n, masks, np.ones(len(ret), dtype=np.int64)), expected)


@pytest.mark.parametrize("n_splits", [None, 300, 60])
def test_identical_trials_are_scored_once_and_counted_as_often_as_they_occur(n_splits: int | None) -> None:
    """cscv_pbo scores each distinct row of blocks once with its multiplicity: the logits of every
    trial listed one by one, bit for bit (duplicates interleaved, a duplicate of the winner, trials that
    never trade), and distinct_trials keeps first occurrences in trial order."""
    from forex_pipeline.regimes.cscv_kernel import cscv_logits
    from forex_pipeline.regimes.significance import _split_masks, distinct_trials

    rng = np.random.default_rng(13)
    returns = rng.normal(0, 1e-3, (12, 320))
    returns[2] += 5e-4                                   # a strong trial: wins most splits
    returns[[3, 4]] = 0.0                                # never trade
    returns = returns[[0, 1, 2, 3, 4, 5, 2, 6, 7, 0, 8, 9, 10, 11, 2, 3]]
    ret, sq, n = _blocks(returns)
    first, counts = distinct_trials(ret, sq, n)
    assert first.tolist() == [0, 1, 2, 3, 5, 7, 8, 10, 11, 12, 13] and counts.tolist() == [2, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1]
    masks = _split_masks(16) if n_splits is None else _split_masks(16, n_splits, 5)
    one_by_one = cscv_logits(ret, sq, n, masks, np.ones(len(ret), dtype=np.int64))
    result = cscv_pbo(ret, sq, n, max_splits=n_splits, seed=5)
    np.testing.assert_array_equal(result.logits, one_by_one)
    assert result.n_trials == 16 and result.pbo == float((one_by_one <= 0).mean())


def test_split_subsets_are_the_seeded_draw_and_cached() -> None:
    from forex_pipeline.regimes.significance import _split_masks, _splits

    every = _split_masks(16)
    drawn = np.sort(np.random.default_rng(7).choice(len(_splits(16)), size=150, replace=False))
    np.testing.assert_array_equal(_split_masks(16, 150, 7), every[drawn])
    assert _split_masks(16, 150, 7) is _split_masks(16, 150, 7) and not _split_masks(16, 150, 7).flags.writeable


def test_trial_blocks_from_rows_and_concat_give_the_rows_pbo() -> None:
    rng = np.random.default_rng(5)
    frames = []
    for model in range(3):
        ret, sq, n = _blocks(rng.normal(0, 1e-3, (4, 320)))
        frames.append(pd.DataFrame({
            "regime": ["bull", "bear", "all", "bull"],
            "block_sum_ret": ret.tolist(), "block_sum_sq": [json.dumps(x.tolist()) for x in sq], "block_n_bars": list(n),
        }))
    rows = pd.concat(frames, ignore_index=True)
    whole = TrialBlocks.from_rows(rows)
    parts = TrialBlocks.concat(TrialBlocks.from_rows(f) for f in frames)
    assert len(whole) == len(parts) == 9 and "all" not in whole.regimes.tolist()
    for name in ("ret", "sq", "n"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(parts, name))
    grouped, joined = whole.by_regime(), parts.by_regime()      # one pass over the trials / the parts' groups
    assert list(grouped) == list(joined) == ["bear", "bull"]
    for regime in grouped:
        for mine, theirs, direct in zip(grouped[regime], joined[regime], whole.of_regime(regime)):
            np.testing.assert_array_equal(mine, direct)
            np.testing.assert_array_equal(theirs, direct)
    bull = rows[rows["regime"] == "bull"]
    ret, sq, n = whole.of_regime("bull")
    assert ret.shape == (6, 16)
    assert cscv_pbo(ret, sq, n).pbo == regime_pbo(bull.assign(segment="selection"))["bull"]
    assert len(TrialBlocks.concat([])) == 0


def test_noise_p_value_is_calibrated_and_accounts_for_the_number_of_trials() -> None:
    rng = np.random.default_rng(3)
    per_model = 50
    noise = rng.normal(size=(400, per_model)).max(axis=1)           # 400 noise model-bests
    fit = fit_gumbel(noise)
    assert fit.scale > 0
    # a best over m fresh noise models: its p-value is ~uniform, so p <= 0.05 about 5% of the time
    m = 8
    observed = rng.normal(size=(2000, m * per_model)).max(axis=1)
    p = np.array([noise_p_value(x, noise, m * per_model, per_model) for x in observed])
    assert 0.02 < (p <= 0.05).mean() < 0.09
    assert 0.4 < np.median(p) < 0.6
    # the same score chosen from more trials is less surprising
    assert noise_p_value(4.0, noise, 10 * per_model, per_model) > noise_p_value(4.0, noise, per_model, per_model)
    assert math.isnan(noise_p_value(float("nan"), noise, 100, per_model))
    assert math.isnan(noise_p_value(3.0, noise[:5], 100, per_model))


def test_verdict_thresholds() -> None:
    t = SignificanceSettings()
    assert is_significant(0.96, 0.01, 0.5, t)
    assert not is_significant(0.94, 0.01, 0.5, t)
    assert not is_significant(0.96, 0.06, 0.5, t)
    assert not is_significant(0.96, 0.01, 0.0, t)
    assert not is_significant(float("nan"), 0.01, 0.5, t)
    assert is_significant(0.5, 0.2, 0.1, SignificanceSettings(min_deflated_sharpe=0.5, max_noise_p_value=0.2))


def test_best_baseline_scores_flat_as_zero() -> None:
    baselines = pd.DataFrame(
        {"baseline": ["flat", "long", "short", "momentum"], "regime": "bull", "segment": "selection", "sharpe": [np.nan, -1.0, 0.5, -2.0]}
    )
    assert best_baseline(baselines, "bull") == ("short", 0.5)
    baselines["sharpe"] = [np.nan, -1.0, -0.5, -2.0]
    assert best_baseline(baselines, "bull") == ("flat", 0.0)
    assert best_baseline(baselines, "bear")[0] is None


def test_distinct_trials_never_merge_different_rows_that_share_a_hash() -> None:
    from forex_pipeline.regimes import significance
    from forex_pipeline.regimes.cscv_kernel import distinct_rows

    ret, sq, n = _blocks(np.random.default_rng(14).normal(0, 1e-3, (5, 320))[[0, 1, 0, 2, 3, 4]])
    assert significance.distinct_trials(ret, sq, n)[1].tolist() == [2, 1, 1, 1, 1]
    bits = np.array([[1, 2], [3, 0], [1, 2], [0, 3]], dtype=np.int64)
    assert [a.tolist() for a in distinct_rows(bits)] == [[0, 1, 3], [2, 1, 1]]
    # two different rows with the kernel's hash in common: (h0 ^ a) * p ^ b == (h0 ^ a2) * p ^ b2
    mod, h0, p = 2**64, 1469598103934665603, 1099511628211
    a, b, a2 = 5, 7, 9
    b2 = (((h0 ^ a) * p) % mod) ^ b ^ (((h0 ^ a2) * p) % mod)
    signed = lambda v: v - mod if v >= 2**63 else v  # noqa: E731
    colliding = np.array([[a, b], [a2, signed(b2)], [a, b]], dtype=np.int64)
    assert [a.tolist() for a in distinct_rows(colliding)] == [[0, 1, 2], [1, 1, 1]]
