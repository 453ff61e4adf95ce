"""inference_backtests: batch insert round trip, column contract, cascades, transactions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from forex_pipeline.store import inference_backtests, regime_best_models, training_runs
from forex_pipeline.store.db import session_scope
from forex_pipeline.store.tables import BACKTEST_COLUMNS, InferenceBacktest, TrainingRun

from .conftest import backtest_frame, run_identity
from .helpers import add_run, best_row, count


def test_batch_insert_round_trip_with_nan_as_null(engine: Engine) -> None:
    run = add_run(engine, 1)
    frame = backtest_frame(seed=3)
    assert frame["sharpe"].isna().any() and len(frame) == 135 * 6
    with session_scope(engine) as session:
        assert inference_backtests.batch_insert_backtests(session, run.id, frame) == 810
    with session_scope(engine) as session:
        nulls = session.scalar(select(func.count()).where(InferenceBacktest.sharpe.is_(None)))
        back = inference_backtests.get_backtests(session, run.id)
    assert nulls == int(frame["sharpe"].isna().sum()) > 0
    assert list(back.columns) == ["id", "training_run_id", *BACKTEST_COLUMNS]
    assert (back["training_run_id"] == run.id).all()
    pd.testing.assert_frame_equal(
        back[list(BACKTEST_COLUMNS)].reset_index(drop=True), frame, check_dtype=False, check_exact=False, rtol=1e-12
    )


def test_batch_insert_rejects_wrong_columns_and_missing_runs(engine: Engine) -> None:
    run = add_run(engine, 1)
    frame = backtest_frame()
    wrong_columns = r"missing \['n_bars'\].*unexpected \['extra'\]"
    with session_scope(engine) as session, pytest.raises(ValueError, match=wrong_columns):
        inference_backtests.batch_insert_backtests(session, run.id, frame.drop(columns="n_bars").assign(extra=1))
    with session_scope(engine) as session, pytest.raises(ValueError, match="regime"):
        inference_backtests.batch_insert_backtests(session, run.id, frame.assign(regime=None))
    with session_scope(engine) as session, pytest.raises(LookupError, match="9999"):
        inference_backtests.batch_insert_backtests(session, 9999, frame)


def test_duplicate_backtest_rows_violate_the_unique_key_and_replace_works(engine: Engine) -> None:
    run = add_run(engine, 1)
    frame = backtest_frame(regimes=("all",))
    with session_scope(engine) as session:
        inference_backtests.batch_insert_backtests(session, run.id, frame)
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        inference_backtests.batch_insert_backtests(session, run.id, frame.iloc[:1])
    with session_scope(engine) as session:
        inference_backtests.batch_insert_backtests(session, run.id, frame.iloc[:10], replace=True)
    assert count(engine, InferenceBacktest) == 10


def test_deleting_a_run_cascades_to_backtests_and_bests(engine: Engine) -> None:
    keep, gone = add_run(engine, 1), add_run(engine, 2)
    with session_scope(engine) as session:
        inference_backtests.batch_insert_backtests(session, keep.id, backtest_frame(seed=1))
        inference_backtests.batch_insert_backtests(session, gone.id, backtest_frame(seed=2))
        test_id = int(inference_backtests.get_backtests(session, gone.id)["id"].iloc[0])
        regime_best_models.replace_regime_bests(session, "bull_trending", [best_row(1, gone.id, test_id, 2.0)])
    with session_scope(engine) as session:
        session.delete(session.get(TrainingRun, gone.id))
    assert count(engine, InferenceBacktest) == 810
    with session_scope(engine) as session:
        assert regime_best_models.current_bests(session).empty
        assert inference_backtests.get_backtests(session, gone.id).empty


def test_a_failed_transaction_leaves_nothing_half_written(engine: Engine) -> None:
    run = add_run(engine, 1)
    with pytest.raises(RuntimeError, match="crash"), session_scope(engine) as session:
        training_runs.mark_run_status(session, run.model_config_hash, "completed", training_seconds=9.0)
        inference_backtests.batch_insert_backtests(session, run.id, backtest_frame())
        training_runs.insert_training_run(session, run_identity(2))
        raise RuntimeError("crash after the writes")
    with session_scope(engine) as session:
        after = training_runs.get_training_run(session, run.id)
        assert after is not None and after.status == "pending" and after.training_seconds is None
    assert count(engine, InferenceBacktest) == 0
    assert count(engine, TrainingRun) == 1


def test_trial_blocks_read_back_the_written_lists_of_one_group(engine: Engine) -> None:
    """The CSCV blocks of a (feature set, horizon) group, per regime row (not 'all', none without blocks)."""
    runs = [add_run(engine, n) for n in (1, 2)]
    frame = backtest_frame(seed=4, regimes=("all", "calm_ranging", "bull_trending"))
    frame.loc[frame.index[5], "block_sum_ret"] = None
    with session_scope(engine) as session:
        for run in runs:
            inference_backtests.batch_insert_backtests(session, run.id, frame)
        found = inference_backtests.trial_blocks(session, runs[0].feature_set_hash, 5, ["calm_ranging", "all"], "selection")
    group = {runs[0].id} | ({runs[1].id} if runs[1].feature_set_hash == runs[0].feature_set_hash else set())
    expected = frame[(frame["regime"] == "calm_ranging") & frame["block_sum_ret"].notna()]
    assert set(found["training_run_id"]) == group and len(found) == len(expected) * len(group)
    assert list(found.columns) == ["regime", "training_run_id", "inference_config_hash", "block_sum_ret", "block_sum_sq", "block_n_bars"]
    mine = found[found["training_run_id"] == runs[0].id].set_index("inference_config_hash")
    for _, row in expected.iterrows():
        for column in ("block_sum_ret", "block_sum_sq", "block_n_bars"):
            assert mine.loc[row["inference_config_hash"], column] == pytest.approx(row[column], rel=1e-12)


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 20)),
              elements=st.floats(allow_nan=False, allow_infinity=False, width=64)))
def test_block_texts_are_json_of_the_same_floats(rows: np.ndarray) -> None:
    """The fast formatting of a block column (one Arrow cast) reads back as exactly the floats given, with
    the JSON the slow path would store; rows left out stay NULL."""
    import json

    values: list = [row for row in rows] + [None]
    texts = inference_backtests._block_texts(values)
    assert texts[-1] is None
    back = np.array([json.loads(text) for text in texts[:-1]], dtype=np.float64)
    assert np.array_equal(back, rows)
    assert [json.loads(text) for text in texts[:-1]] == [json.loads(inference_backtests._block_json(row)) for row in rows]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(width=64), st.integers(-2**40, 2**40), st.sampled_from(["direct", "mean", 'quo"te, "x": 1', "é"]),
                          st.one_of(st.none(), st.floats(allow_nan=False, width=64))), min_size=1, max_size=30))
def test_json_objects_are_the_records_as_json(rows: list) -> None:
    """Each row's JSON object (the specification's backtest_metrics and inference_params) is the row's
    values as json.dumps writes them: non-finite floats and missing values null, text escaped."""
    import json
    import math

    frame = pd.DataFrame(rows, columns=["sharpe", "trade_count", "prediction_method", "sortino"])
    texts = inference_backtests._json_objects(frame, ("sharpe", "trade_count", "prediction_method", "sortino"))

    def plain(value: object) -> object:
        return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value

    expected = [{"sharpe": plain(a), "trade_count": b, "prediction_method": c, "sortino": plain(d)} for a, b, c, d in rows]
    assert [json.loads(text) for text in texts] == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=20), min_size=1, max_size=12))
def test_block_lists_read_back_as_the_floats_written(rows: list[list[float]]) -> None:
    """Reading a group's block lists (Arrow's parse of the stored JSON text, equal or ragged lengths, the
    spacing json.dumps and PostgreSQL's jsonb write alike) gives back exactly the floats stored."""
    import json

    texts = [json.dumps(row) for row in rows]
    parsed = inference_backtests._float_lists_of_json(texts)
    assert parsed is not None and [list(p) for p in parsed] == rows
    compact = inference_backtests._float_lists_of_json([text.replace(", ", ",") for text in texts])
    assert compact is not None and [list(p) for p in compact] == rows


def test_block_lists_that_are_not_plain_numbers_are_left_to_json() -> None:
    for texts in (["[1.5, null]"], ["[[1.0], [2.0]]"], ["null"], ["[]"], ['["a"]']):
        assert inference_backtests._float_lists_of_json(texts) is None, texts
    assert inference_backtests._float_lists_of_json([]) == []
