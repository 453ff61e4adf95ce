"""The per-process cache of CSCV block arrays (pipeline/trust.py TrialBlockCache): recording a model
reads only the runs that are new or changed, and the PBO it gives is the one of a fresh read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.pipeline import trust
from forex_pipeline.pipeline.trust import TrialBlockCache, group_pbo, recorded_trial_blocks
from forex_pipeline.regimes.significance import TrialBlocks
from forex_pipeline.store import inference_backtests, training_runs
from forex_pipeline.store.db import make_engine, session_scope, upgrade
from tests.store.conftest import backtest_frame, run_identity

REGIMES = ["bull_trending", "bear_trending", "volatile_ranging", "calm_ranging"]


def _rows(seed: int, run: int) -> pd.DataFrame:
    return backtest_frame(seed=seed).assign(training_run_id=run)


def test_cache_fetches_only_new_or_changed_runs_and_drops_removed_ones() -> None:
    frames = {1: _rows(1, 1), 2: _rows(2, 2)}
    asked: list[list[int] | None] = []

    def fetch(runs: list[int] | None) -> pd.DataFrame:
        asked.append(runs)
        return pd.concat([frames[r] for r in (sorted(frames) if runs is None else runs)], ignore_index=True)

    def fresh() -> TrialBlocks:
        return TrialBlocks.from_rows(pd.concat([frames[r] for r in sorted(frames)], ignore_index=True))

    cache = TrialBlockCache()
    versions = {1: "a", 2: "a"}
    first = cache.blocks("set", versions, fetch)
    assert asked == [None]                                        # nothing cached: one read of everything
    frames[3] = _rows(3, 3)
    second = cache.blocks("set", {**versions, 3: "a"}, fetch)
    assert asked[-1] == [3] and len(second) == len(first) + len(TrialBlocks.from_rows(frames[3]))
    frames[2] = _rows(9, 2)                                       # run 2 re-recorded: a new version
    third = cache.blocks("set", {1: "a", 2: "b", 3: "a"}, fetch)
    assert asked[-1] == [2]
    np.testing.assert_array_equal(third.ret, fresh().ret)
    del frames[1]                                                 # run 1 deleted
    fourth = cache.blocks("set", {2: "b", 3: "a"}, fetch)
    assert asked[-1] == [2] and len(asked) == 3                   # nothing read
    np.testing.assert_array_equal(fourth.ret, fresh().ret)
    assert group_pbo(fourth) == group_pbo(pd.concat([frames[2], frames[3]], ignore_index=True))


@pytest.fixture()
def engine(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'forex.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _record(engine, identity: dict, seed: int, replace: bool = False) -> int:
    with session_scope(engine) as session:
        run = training_runs.upsert_training_run(session, identity)
        inference_backtests.batch_insert_backtests(session, run.id, backtest_frame(seed=seed), replace=replace)
        return run.id


def test_recorded_trial_blocks_read_only_new_runs_and_match_a_fresh_read(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trust, "TRIAL_BLOCKS", TrialBlockCache())
    calls: list[object] = []
    real = inference_backtests.trial_blocks

    def spy(*args, **kwargs):
        calls.append(kwargs.get("run_ids"))
        return real(*args, **kwargs)

    monkeypatch.setattr(inference_backtests, "trial_blocks", spy)
    identities = [run_identity(1, model_type=t) for t in ("ridge", "rf", "gbm")]   # one feature set, three models
    group = (identities[0]["feature_set_hash"], 5)
    ids = [_record(engine, identities[0], seed=1), _record(engine, identities[1], seed=2)]

    def both() -> tuple[dict[str, float], dict[str, float]]:
        with session_scope(engine) as session:
            cached = group_pbo(recorded_trial_blocks(session, group, REGIMES, "selection"))
            fresh = group_pbo(real(session, group[0], group[1], REGIMES, "selection"))
        return cached, fresh

    cached, fresh = both()
    assert calls == [None] and cached == fresh and set(cached) == set(REGIMES)
    ids.append(_record(engine, identities[2], seed=3))
    cached, fresh = both()
    assert calls[-1] == [ids[2]] and cached == fresh
    _record(engine, identities[0], seed=7, replace=True)          # the first model re-recorded with other results
    cached, fresh = both()
    assert calls[-1] == [ids[0]] and cached == fresh
    cached, fresh = both()
    assert len(calls) == 3 and cached == fresh                    # nothing changed: nothing read
    # the model just recorded, already read in the transaction, is taken from its rows
    fourth = _record(engine, run_identity(1, model_type="lasso"), seed=4)
    with session_scope(engine) as session:
        known = inference_backtests.get_backtests(session, fourth)
        cached = group_pbo(recorded_trial_blocks(session, group, REGIMES, "selection", known=known))
        fresh = group_pbo(real(session, group[0], group[1], REGIMES, "selection"))
    assert len(calls) == 3 and cached == fresh
