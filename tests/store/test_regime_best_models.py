"""regime_best_models: replace and read the ranked bests."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from forex_pipeline.store import inference_backtests, regime_best_models, training_runs
from forex_pipeline.store.db import session_scope

from .conftest import backtest_frame
from .helpers import add_run, best_row


def test_replace_regime_bests_and_current_bests(engine: Engine) -> None:
    runs = [add_run(engine, n) for n in range(3)]
    with session_scope(engine) as session:
        ids = {}
        for run in runs:
            inference_backtests.batch_insert_backtests(session, run.id, backtest_frame(seed=run.id))
            ids[run.id] = inference_backtests.get_backtests(session, run.id)
        first = [best_row(1, runs[0].id, int(ids[runs[0].id]["id"].iloc[0]), 1.0)]
        regime_best_models.replace_regime_bests(session, "calm_ranging", first)
        second = [best_row(1, runs[2].id, int(ids[runs[2].id]["id"].iloc[5]), 2.5),
                  best_row(2, runs[0].id, int(ids[runs[0].id]["id"].iloc[0]), 1.0)]
        second[0].update(previous_best_score=1.0, improvement=1.5)
        regime_best_models.replace_regime_bests(session, "calm_ranging", second)
        to_delete = training_runs.set_kept(session, before=set(), after={runs[0].id, runs[2].id})
    with session_scope(engine) as session:
        bests = regime_best_models.current_bests(session)
    assert list(bests["rank"]) == [1, 2] and set(bests["regime"]) == {"calm_ranging"}
    top = bests.iloc[0]
    source = ids[runs[2].id].iloc[5]
    assert top["model_config_hash"] == runs[2].model_config_hash and top["improvement"] == 1.5
    for column in ("prediction_method", "lookback_window", "confidence_threshold"):
        assert top[column] == source[column], column
    assert list(bests["kept"]) == [True, True] and to_delete == []
    assert bests["updated_at"].iloc[0].tzinfo is not None


def test_replace_regime_bests_validates(engine: Engine) -> None:
    run = add_run(engine, 1)
    with session_scope(engine) as session:
        inference_backtests.batch_insert_backtests(session, run.id, backtest_frame(regimes=("all",)))
        test_id = int(inference_backtests.get_backtests(session, run.id)["id"].iloc[0])
        with pytest.raises(ValueError, match="ranks must be 1..1"):
            regime_best_models.replace_regime_bests(session, "calm_ranging", [best_row(2, run.id, test_id, 1.0)])
        with pytest.raises(ValueError, match="more than once"):
            regime_best_models.replace_regime_bests(session, "calm_ranging", [best_row(1, run.id, test_id, 1.0),
                                                               best_row(2, run.id, test_id, 0.5)])
        with pytest.raises(LookupError, match="'martian'"):
            regime_best_models.replace_regime_bests(session, "martian", [best_row(1, run.id, test_id, 1.0)])
