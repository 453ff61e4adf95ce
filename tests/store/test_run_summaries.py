"""Run summaries and trial moments kept by the backtest write: always equal to an aggregate of the raw rows
(computed here independently, in pandas, from the rows read back), through merges and replaces."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from forex_pipeline.store import inference_backtests, run_summaries
from forex_pipeline.store.db import session_scope

from .conftest import backtest_frame
from .helpers import add_run


def expected_summaries(rows: pd.DataFrame) -> dict[str, dict]:
    """The module's definitions, recomputed from raw rows: ranked = segment not starting with 'holdout'."""
    ranked = rows[~rows["segment"].str.startswith("holdout")]
    out = {}
    for regime, group in ranked.groupby("regime"):
        finite = group[group["sharpe"].notna()]
        top = finite.loc[finite["sharpe"] == finite["sharpe"].max()].sort_values("id").iloc[0] if len(finite) else None
        drawdowns = group["max_drawdown"].abs().dropna()
        out[regime] = {
            "regime": regime,
            "configurations": len(group),
            "best_sharpe": None if top is None else float(finite["sharpe"].max()),
            "best_max_drawdown": float(drawdowns.min()) if len(drawdowns) else None,
            "best_config_hash": None if top is None else top["inference_config_hash"],
            "best_config_max_drawdown": None if top is None or math.isnan(top["max_drawdown"]) else float(top["max_drawdown"]),
            "best_config_total_return": None if top is None or math.isnan(top["total_return"]) else float(top["total_return"]),
            "best_config_trade_count": None if top is None else int(top["trade_count"]),
        }
    return out


def expected_moments(rows: pd.DataFrame, segment: str) -> dict[str, tuple]:
    chosen = rows[(rows["segment"] == segment) & (rows["regime"] != "all")]
    out = {}
    for regime, group in chosen.groupby("regime"):
        sr = group["sharpe_per_bar"].dropna()
        out[regime] = (len(group), len(sr), pytest.approx(float(sr.sum()), abs=1e-12), pytest.approx(float((sr**2).sum()), abs=1e-12))
    return out


def all_rows(engine: Engine, run_ids: list[int]) -> pd.DataFrame:
    with session_scope(engine) as session:
        return pd.concat([inference_backtests.get_backtests(session, i) for i in run_ids], ignore_index=True)


def assert_summaries_match(engine: Engine, run_ids: list[int]) -> None:
    rows = all_rows(engine, run_ids)
    with session_scope(engine) as session:
        for run_id in run_ids:
            stored = run_summaries.get_summaries(session, run_id)
            expected = expected_summaries(rows[rows["training_run_id"] == run_id])
            assert set(stored) == set(expected)
            for regime, want in expected.items():
                got = stored[regime]
                for key, value in want.items():
                    assert got[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), (run_id, regime, key)
        for segment in ("selection", "holdout"):
            assert inference_backtests.regime_trial_moments(session, segment) == expected_moments(rows, segment)


def ties_and_gaps(seed: int) -> pd.DataFrame:
    """A frame on two segments with a tied best Sharpe (the lower id must win) and a regime without any Sharpe."""
    frame = pd.concat([backtest_frame(seed=seed, segment="selection"), backtest_frame(seed=seed + 1, segment="holdout")], ignore_index=True)
    rows = frame.index[(frame["regime"] == "all") & (frame["segment"] == "selection")]
    frame.loc[rows[[3, 7]], "sharpe"] = 9.0                                 # a tie: row 3 comes first
    frame.loc[frame["regime"] == "unclassified", ["sharpe", "sortino", "win_rate", "profit_factor", "sharpe_per_bar"]] = np.nan
    frame.loc[(frame["regime"] == "bull_trending") & (frame["segment"] == "holdout"), "sharpe"] = 50.0   # holdouts never rank
    return frame


def test_summaries_and_moments_equal_an_aggregate_of_the_raw_rows(engine: Engine) -> None:
    runs = [add_run(engine, n) for n in range(3)]
    with session_scope(engine) as session:
        inference_backtests.batch_insert_backtests(session, runs[0].id, ties_and_gaps(10))
        # a run written in two calls: its summaries are the merge of both
        halves = ties_and_gaps(20)
        inference_backtests.batch_insert_backtests(session, runs[1].id, halves.iloc[: len(halves) // 3])
        inference_backtests.batch_insert_backtests(session, runs[1].id, halves.iloc[len(halves) // 3 :])
        inference_backtests.batch_insert_backtests(session, runs[2].id, backtest_frame(seed=30))
    assert_summaries_match(engine, [r.id for r in runs])
    with session_scope(engine) as session:
        top = run_summaries.get_summaries(session, runs[0].id)["all"]
        ids = inference_backtests.get_backtests(session, runs[0].id)
    tied = ids[(ids["regime"] == "all") & (ids["sharpe"] == 9.0)].sort_values("id")
    assert top["best_sharpe"] == 9.0 and top["best_config_hash"] == tied["inference_config_hash"].iloc[0]


def test_replacing_a_runs_rows_replaces_its_summaries_and_takes_its_trials_out(engine: Engine) -> None:
    runs = [add_run(engine, n) for n in range(2)]
    with session_scope(engine) as session:
        for run in runs:
            inference_backtests.batch_insert_backtests(session, run.id, ties_and_gaps(run.id))
    with session_scope(engine) as session:
        smaller = backtest_frame(seed=99, regimes=("all", "calm_ranging")).iloc[:40]
        inference_backtests.batch_insert_backtests(session, runs[0].id, smaller, replace=True)
    assert_summaries_match(engine, [r.id for r in runs])
    with session_scope(engine) as session:
        assert set(run_summaries.get_summaries(session, runs[0].id)) == set(smaller["regime"])


def test_write_returns_the_ids_of_the_rows_in_frame_order(engine: Engine) -> None:
    run = add_run(engine, 1)
    frame = backtest_frame(seed=5).sample(frac=1.0, random_state=1).reset_index(drop=True)
    with session_scope(engine) as session:
        ids = inference_backtests.write_backtests(session, run.id, frame)
        stored = inference_backtests.stored_rows(frame, run.id, ids)
        back = inference_backtests.get_backtests(session, run.id).set_index("id").loc[ids].reset_index()
    assert list(back["id"]) == list(ids)
    assert list(back["inference_config_hash"] + back["regime"]) == list(frame["inference_config_hash"] + frame["regime"])
    pd.testing.assert_frame_equal(stored.drop(columns=list(inference_backtests.BACKTEST_BLOCKS)),
                                  back.drop(columns=list(inference_backtests.BACKTEST_BLOCKS)), check_dtype=False)
    assert stored["block_sum_ret"].tolist() == back["block_sum_ret"].tolist()
