"""The per-process cache of CSCV block arrays (pipeline/trust.py TrialBlockCache): recording a model
reads only the runs that are new or changed, and the PBO it gives is the one of a fresh read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forex_pipeline.pipeline import trust
from forex_pipeline.pipeline.trust import TrialBlockCache, cached_trial_blocks, group_pbo, recorded_trial_blocks, run_trial_blocks
from forex_pipeline.keys import REGIME_ALL
from forex_pipeline.regimes.significance import TrialBlocks, block_matrix
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


def _reference_run_blocks(rows: pd.DataFrame, regimes: list[str], segment: str) -> dict[int, TrialBlocks]:
    """The straightforward way: filter the frame, sort it as the store reads it, convert per run."""
    keep = rows[
        (rows["segment"] == segment) & rows["regime"].isin([r for r in regimes if r != REGIME_ALL]) & rows["block_sum_ret"].notna()
    ]
    keep = keep.sort_values(["training_run_id", "regime", "inference_config_hash"], kind="mergesort")
    return {int(run): TrialBlocks.from_rows(part) for run, part in keep.groupby("training_run_id", sort=True)}


def test_run_trial_blocks_equal_the_sorted_rows_the_store_would_return() -> None:
    """The array path (filter, lexsort, one conversion per column) equals filtering and sorting the frame:
    same trials, same order, same floats, for shuffled rows of several runs with other segments,
    regime 'all', a regime not asked for and rows without blocks."""
    parts = [_rows(1, 7), _rows(2, 3), backtest_frame(seed=3, segment="holdout").assign(training_run_id=7)]
    parts.append(backtest_frame(seed=4, regimes=("all", "unclassified", "bull_trending")).assign(training_run_id=3))
    rows = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=0).reset_index(drop=True)
    rows.loc[rows.index[:25], "block_sum_ret"] = None
    regimes = [*REGIMES, REGIME_ALL]
    expected = _reference_run_blocks(rows, regimes, "selection")
    got = run_trial_blocks(rows, [3, 7, 11], regimes, "selection")
    assert sorted(got) == sorted(expected) == [3, 7]
    for run, blocks in expected.items():
        assert got[run].regimes.tolist() == blocks.regimes.tolist()
        for name in ("ret", "sq", "n"):
            np.testing.assert_array_equal(getattr(got[run], name), getattr(blocks, name))
    assert list(run_trial_blocks(rows, [7], regimes, "selection")) == [7]
    assert run_trial_blocks(rows, [11], regimes, "selection") == {}


def test_cache_takes_known_runs_from_their_rows_and_fetches_the_rest() -> None:
    frames = {1: _rows(1, 1), 2: _rows(2, 2), 3: _rows(3, 3)}
    asked: list[list[int] | None] = []

    def fetch(runs: list[int] | None) -> pd.DataFrame:
        asked.append(runs)
        chosen = sorted(frames) if runs is None else runs
        return pd.concat([_reference_rows(frames[r]) for r in chosen], ignore_index=True)

    cache = TrialBlockCache()
    versions = {1: "a", 2: "a", 3: "a"}
    got = cached_trial_blocks(cache, "set", versions, fetch, frames[3], REGIMES, "selection")
    assert asked == [[1, 2]]                                      # run 3 came from its rows
    fresh = TrialBlocks.concat(TrialBlocks.from_rows(_reference_rows(frames[r])) for r in sorted(frames))
    assert got.regimes.tolist() == fresh.regimes.tolist()
    np.testing.assert_array_equal(got.ret, fresh.ret)
    assert group_pbo(got) == group_pbo(fresh)


def _reference_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """A run's rows as the store's trial_blocks returns them (REGIMES only, regime then configuration hash order)."""
    return rows[rows["regime"].isin(REGIMES)].sort_values(["regime", "inference_config_hash"], kind="mergesort")


@pytest.mark.parametrize(
    "values",
    [
        [[1.0, 2.5, -3.0], [4.0, 5.0, 6.0]],
        [[1, 2, 3], [4.0, 5.5, 6.0]],                                # ints and floats
        [[1.0, None, 3.0], [4.0, 5.0, 6.0]],                         # a null inside a list: NaN
        [np.array([1.0, 2.0]), np.array([3.0, 4.0])],                 # arrays
        ["[1.0, 2.0]", "[3.0, null]"],                                # JSON text
    ],
)
def test_block_matrix_equals_a_plain_conversion(values: list) -> None:
    import json

    plain = np.asarray([json.loads(v) if isinstance(v, str) else v for v in values], dtype=np.float64)
    np.testing.assert_array_equal(block_matrix(np.array(values, dtype=object) if isinstance(values[0], str) else values), plain)


def test_block_matrix_refuses_lists_of_different_lengths() -> None:
    with pytest.raises(ValueError):
        block_matrix([[1.0, 2.0], [3.0]])


def test_run_trial_blocks_reuse_a_layout_only_for_frames_laid_out_alike() -> None:
    """Frames with the same segment, regime and configuration columns share the cached positions and
    sort keys (their values are still their own); a frame laid out otherwise gets its own layout."""
    regimes = [*REGIMES, REGIME_ALL]
    first, second = _rows(1, 4), _rows(2, 5)                               # same layout, other values and run
    shuffled = second.sample(frac=1.0, random_state=1).reset_index(drop=True)
    renamed = second.assign(inference_config_hash=second["inference_config_hash"].str[::-1])  # other order
    for rows, run in ((first, 4), (second, 5), (shuffled, 5), (renamed, 5), (first, 4)):
        got = run_trial_blocks(rows, [run], regimes, "selection")[run]
        expected = _reference_run_blocks(rows, regimes, "selection")[run]
        assert got.regimes.tolist() == expected.regimes.tolist()
        for name in ("ret", "sq", "n"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
