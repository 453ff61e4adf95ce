"""inference_backtests: one row per inference configuration, regime and segment of a trained model.

Besides the rows themselves, the two reads the trust figures need (regimes/significance.py) without
loading the table: the per-regime trial moments (COUNT / SUM / SUM of squares of the per-bar Sharpe
over one segment, aggregated in the database) and the CSCV block lists of the trials of one
(feature set, horizon), the set over which the probability of backtest overfitting is computed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.orm import Session

from forex_pipeline.backtest.columns import CONFIG_COLUMNS, METRIC_COLUMNS
from forex_pipeline.keys import REGIME_ALL
from forex_pipeline.store.common import in_chunks, is_nan, select_frame
from forex_pipeline.store.tables import (
    BACKTEST_BLOCKS,
    BACKTEST_COLUMNS,
    BACKTEST_FLOATS,
    BACKTEST_METRICS,
    BACKTEST_SEGMENT,
    InferenceBacktest,
    TrainingRun,
    new_uuid,
    utcnow,
)

# Columns a frame may leave out (stored as NULL): the trust columns. Everything else is required.
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(c for c in BACKTEST_COLUMNS if c in BACKTEST_FLOATS and c not in BACKTEST_METRICS) + BACKTEST_BLOCKS
_NULLABLE = frozenset((*BACKTEST_METRICS, *OPTIONAL_COLUMNS))


def _block_list(value: Any) -> list[float] | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    values = json.loads(value) if isinstance(value, str) else value
    return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def _backtest_rows(training_run_id: int, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for executemany: the contract columns (trust columns may be absent), NaN -> None, ints as int."""
    missing = [c for c in BACKTEST_COLUMNS if c not in frame.columns and c not in OPTIONAL_COLUMNS]
    extra = [c for c in frame.columns if c not in BACKTEST_COLUMNS]
    if missing or extra:
        raise ValueError(
            f"backtest frame columns: missing {missing}, unexpected {extra}; expected {list(BACKTEST_COLUMNS)}"
        )
    nulls = [c for c in BACKTEST_COLUMNS if c in frame.columns and c not in _NULLABLE and frame[c].isna().any()]
    if nulls:
        raise ValueError(f"backtest frame has missing values in required column(s) {nulls}")
    now = utcnow()
    present = [c for c in BACKTEST_COLUMNS if c in frame.columns]
    blocks = set(BACKTEST_BLOCKS)
    rows = []
    for record in frame.loc[:, present].to_dict("records"):
        row = {c: None for c in BACKTEST_COLUMNS}
        for key, value in record.items():
            if key in blocks:
                row[key] = _block_list(value)
            elif key in _NULLABLE and is_nan(value):
                row[key] = None
            elif key in _NULLABLE:
                row[key] = float(value)
            else:
                row[key] = value
        row["trade_count"], row["n_bars"] = int(row["trade_count"]), int(row["n_bars"])
        row["lookback_window"] = int(row["lookback_window"])
        row["confidence_threshold"] = float(row["confidence_threshold"])
        row[BACKTEST_SEGMENT] = str(row[BACKTEST_SEGMENT])
        row["training_run_id"], row["created_at"] = training_run_id, now
        rows.append(row)
    return rows


INFERENCE_PARAMS: tuple[str, ...] = tuple(c for c in CONFIG_COLUMNS if c != "inference_config_hash")


def add_configuration_documents(rows: list[dict[str, Any]], duration_seconds: float | None) -> None:
    """Give each configuration's `all` row of each segment the specification's per-configuration
    fields: backtest_uuid, inference_params, backtest_metrics, regime_metrics ({regime: metrics} of
    the same segment) and backtest_duration_seconds (the model's internal-loop time shared equally by
    its configurations, which run in one vectorised pass). Per-regime rows keep them NULL."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["inference_config_hash"], row[BACKTEST_SEGMENT]), []).append(row)
    n_configurations = len({key[0] for key in groups}) or 1
    share = None if duration_seconds is None else float(duration_seconds) / n_configurations
    for group in groups.values():
        overall = [row for row in group if row["regime"] == REGIME_ALL]
        if not overall:
            continue
        row = overall[0]
        row["backtest_uuid"] = new_uuid()
        row["inference_params"] = {name: row[name] for name in INFERENCE_PARAMS}
        row["backtest_metrics"] = {name: row[name] for name in METRIC_COLUMNS}
        row["regime_metrics"] = {
            other["regime"]: {name: other[name] for name in METRIC_COLUMNS} for other in group if other["regime"] != REGIME_ALL
        }
        row["backtest_duration_seconds"] = share


def batch_insert_backtests(
    session: Session,
    training_run_id: int,
    frame: pd.DataFrame,
    *,
    replace: bool = False,
    duration_seconds: float | None = None,
) -> int:
    """Insert one model's backtest results in one executemany (NaN metrics stored as NULL).

    `frame` has the columns of backtest/columns.py EVALUATION_COLUMNS (the trust columns may be left
    out: NULL). With replace=True the run's earlier rows (and any regime bests pointing at them) are
    deleted first. `duration_seconds` is the model's internal-loop time (backtest_duration_seconds).
    """
    rows = _backtest_rows(training_run_id, frame)
    add_configuration_documents(rows, duration_seconds)
    for row in rows:
        row.setdefault("backtest_uuid", None)
        for name in ("inference_params", "backtest_metrics", "regime_metrics", "backtest_duration_seconds"):
            row.setdefault(name, None)
    if session.get(TrainingRun, training_run_id) is None:
        raise LookupError(f"no training run with id {training_run_id}")
    if replace:
        session.execute(delete(InferenceBacktest).where(InferenceBacktest.training_run_id == training_run_id))
    if rows:
        session.execute(insert(InferenceBacktest.__table__), rows)
    return len(rows)


def get_backtests(session: Session, training_run_id: int, segments: Iterable[str] | None = None) -> pd.DataFrame:
    """A run's backtest rows (id, training_run_id and the contract columns; NULL -> NaN, blocks as lists),
    optionally only the given segments."""
    columns = ["id", "training_run_id", *BACKTEST_COLUMNS]
    statement = select(*(getattr(InferenceBacktest, c) for c in columns)).where(
        InferenceBacktest.training_run_id == training_run_id
    )
    if segments is not None:
        statement = statement.where(InferenceBacktest.segment.in_(list(segments)))
    return select_frame(session, statement.order_by(InferenceBacktest.id), columns, float_columns=BACKTEST_FLOATS)


def not_confirming(table: Any = InferenceBacktest) -> Any:
    """Rows a figure may rank on: every segment but the holdouts (`holdout`, walk-forward `holdout_k`),
    which only confirm a best and never choose one. Legacy `test` rows count as ranked."""
    return ~table.segment.like("holdout%")


def regime_trial_moments(session: Session, segment: str) -> dict[str, tuple[int, int, float, float]]:
    """Per regime (not 'all'): (trials, trials with a per-bar Sharpe, SUM(sharpe_per_bar),
    SUM(sharpe_per_bar^2)) over every recorded row of `segment`, aggregated in the database.

    These are N and the sums behind V of the deflated Sharpe (regimes/significance.py TrialMoments).
    """
    sr = InferenceBacktest.sharpe_per_bar
    statement = (
        select(InferenceBacktest.regime, func.count(), func.count(sr), func.sum(sr), func.sum(sr * sr))
        .where(InferenceBacktest.segment == segment, InferenceBacktest.regime != REGIME_ALL)
        .group_by(InferenceBacktest.regime)
        .order_by(InferenceBacktest.regime)
    )
    return {
        str(regime): (int(n), int(n_finite), float(total or 0.0), float(total_sq or 0.0))
        for regime, n, n_finite, total, total_sq in session.execute(statement)
    }


def trial_blocks(
    session: Session, feature_set_hash: str, horizon: int, regimes: Iterable[str], segment: str
) -> pd.DataFrame:
    """The CSCV inputs of every trial of one (feature set, horizon) in `regimes` on `segment`:
    regime, training_run_id, inference_config_hash and the three block lists (rows without blocks
    are left out). Trials of one feature set and horizon share their segments, hence their blocks."""
    test, run = InferenceBacktest, TrainingRun
    regimes = [r for r in dict.fromkeys(regimes) if r != REGIME_ALL]
    columns = ["regime", "training_run_id", "inference_config_hash", *BACKTEST_BLOCKS]
    frames = []
    for chunk in in_chunks(regimes):
        statement = (
            select(test.regime, test.training_run_id, test.inference_config_hash, *(getattr(test, c) for c in BACKTEST_BLOCKS))
            .join(run, run.id == test.training_run_id)
            .where(
                and_(
                    run.feature_set_hash == feature_set_hash,
                    run.horizon == int(horizon),
                    test.segment == segment,
                    test.regime.in_(list(chunk)),
                    test.block_sum_ret.is_not(None),
                )
            )
            .order_by(test.regime, test.training_run_id, test.inference_config_hash)
        )
        frames.append(select_frame(session, statement, columns))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return frame[frame["block_sum_ret"].notna()].reset_index(drop=True) if len(frame) else frame
