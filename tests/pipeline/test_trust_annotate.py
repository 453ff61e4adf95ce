"""The pipeline's annotation (once per group and regime) gives the core's figures (annotate_bests, per row)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forex_pipeline.backtest.run import run_baseline_backtests, run_evaluation_backtests, run_noise_backtests
from forex_pipeline.backtest.segments import evaluation_segments
from forex_pipeline.pipeline.trust import TrustReference, annotate, group_pbo, pbo_splits, trials_per_model
from forex_pipeline.regimes.selection import select_regime_bests
from forex_pipeline.regimes.significance import annotate_bests, regime_pbo, regime_trials
from forex_pipeline.settings import DEFAULT_SETTINGS_FILE, load_settings
from tests.backtest.trust_support import TEST, SignalModel, make_market


def test_pipeline_annotation_matches_annotate_bests() -> None:
    settings = load_settings(DEFAULT_SETTINGS_FILE)
    matrix, labels = make_market(7, edge=0.3)
    rows = pd.concat(
        [run_evaluation_backtests(SignalModel(m), matrix, TEST, labels, settings, "EURUSD").frame.assign(
            model_config_hash=f"m{m}", feature_set_hash="fs", horizon=1) for m in range(2)],
        ignore_index=True,
    )
    segments = evaluation_segments(TEST.size, settings.evaluation, 1)
    noise = run_noise_backtests(matrix.close[TEST], labels[TEST], settings, "EURUSD", 1, "1h", segments, n_models=20)
    baselines = run_baseline_backtests(matrix.close, TEST, labels, settings, "EURUSD", 1, "1h", segments)
    trials = regime_trials(rows)
    bests = select_regime_bests(rows, pd.DataFrame(), top_n=3, min_trades=10, trials=trials).bests
    selection = rows[rows["segment"] == "selection"]
    pbo = group_pbo(selection)
    ours = annotate(bests, trials=trials, references={("fs", 1): TrustReference(noise, baselines)},
                    pbo={("fs", 1): pbo}, settings=settings, segment="selection")
    core = annotate_bests(bests, trials=trials, noise_maxima=noise, pbo=pbo, baselines=baselines,
                          thresholds=settings.regimes.significance, trials_per_model=trials_per_model(settings))
    for column in ("deflated_sharpe", "null_p_value", "pbo", "baseline_score", "improvement_over_baseline", "n_trials"):
        np.testing.assert_allclose(ours[column].astype(float), core[column].astype(float), rtol=1e-12, equal_nan=True)
    assert ours["baseline"].tolist() == core["baseline"].tolist()
    assert ours["significant"].tolist() == core["significant"].tolist() and ours["significant"].any()
    # any index (here one label repeated) keeps its rows and gets the same figures
    odd = annotate(bests.set_axis([7] * len(bests)), trials=trials, references={("fs", 1): TrustReference(noise, baselines)},
                   pbo={("fs", 1): pbo}, settings=settings, segment="selection")
    assert odd.index.tolist() == [7] * len(bests) and odd["regime"].tolist() == bests["regime"].tolist()
    np.testing.assert_allclose(odd["null_p_value"].astype(float), ours["null_p_value"].astype(float), equal_nan=True)
    # the bounded CSCV estimates the exact PBO
    exact = regime_pbo(selection)
    assert pbo_splits(270) < 12870
    assert all(abs(pbo[r] - exact[r]) < 0.15 for r in exact)
    # a group without a reference or a new PBO keeps its stored baseline and PBO, and gets no p-value
    kept = annotate(ours, trials=trials, references={}, pbo={}, settings=settings, segment="selection")
    assert kept["baseline"].tolist() == ours["baseline"].tolist()
    np.testing.assert_array_equal(kept["baseline_score"].to_numpy(), ours["baseline_score"].to_numpy())
    np.testing.assert_array_equal(kept["pbo"].to_numpy(), ours["pbo"].to_numpy())
    assert kept["null_p_value"].isna().all() and not kept["significant"].any()
    np.testing.assert_array_equal(kept["deflated_sharpe"].to_numpy(), ours["deflated_sharpe"].to_numpy())
