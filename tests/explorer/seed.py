"""A project database filled fast with made-up but valid history: real specs and hashes (so labels,
search and export work), metrics per inference configuration and regime, a few regime bests.

Rows go in by direct inserts (SQLite: executemany on the raw connection; PostgreSQL: COPY), never
through the ORM, so 2,000 runs take a second or two. Used by the explorer's browser test and by
benchmarks/bench_explorer.py.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from forex_pipeline.features.spec import FeatureSetSpec
from forex_pipeline.hashing import config_hash
from forex_pipeline.models.spec import ModelConfiguration, ModelSpec
from forex_pipeline.store import db

SYMBOLS = ("EURUSD", "GBPUSD", "AUDUSD", "EURGBP")
TIMEFRAMES = ("1h", "4h")
DAYS = (120, 180, 240, 300, 365, 420, 480, 540, 600, 660)  # windows the sample bars (2018-2019) hold
MODELS: tuple[tuple[str, str, list[Any]], ...] = (
    ("ridge", "alpha", [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0]),
    ("lasso", "alpha", [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]),
    ("rf", "max_depth", [2, 3, 4, 5, 6, 8, 10, 12, 16, 20]),
    ("elasticnet", "alpha", [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]),
)
HORIZONS = (1, 3, 6, 12)
REGIMES = ("all", "bull_trending", "bear_trending", "volatile_ranging", "calm_ranging")
INFERENCE_GRID = list(itertools.product(["direct", "recursive", "direct_multi"], ["mean", "weighted", "stacking"],
                                        [0.0, 0.3, 0.5, 0.7, 0.9], [50, 100, 200]))
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
SEED_REVISION = "0002_trust"     # the schema the rows below are written in (see seed_history)
RUN_COLUMNS = (
    "id", "model_config_hash", "partition_key", "feature_set_hash", "model_spec_hash", "feature_set", "model_spec",
    "symbol", "base_timeframe", "model_type", "encoder", "horizon", "status", "training_seconds", "backtest_seconds",
    "metrics", "model_path", "model_sha256", "model_bytes", "kept", "file_deleted_at", "error_message", "queue_id",
    "created_at", "started_at", "completed_at",
)
BACKTEST_COLUMNS = (
    "training_run_id", "inference_config_hash", "prediction_method", "ensemble_method", "confidence_threshold",
    "lookback_window", "regime", "segment", "sharpe", "sortino", "max_drawdown", "total_return", "win_rate",
    "profit_factor", "trade_count", "exposure", "n_bars", "created_at",
)


def configurations(n: int) -> Iterator[ModelConfiguration]:
    """`n` distinct valid configurations (up to 80 feature sets x 1,600 model specs), spread over every axis."""
    feature_sets = [
        FeatureSetSpec(symbol=s, base_timeframe=t, days_history=d, as_of=datetime(2019, 12, 31, tzinfo=timezone.utc),
                       indicator_timeframes={"rsi": [t], "atr": [t]}, additional_features=["returns_volatility"])
        for d, s, t in itertools.product(DAYS, SYMBOLS, TIMEFRAMES)
    ]
    model_specs = [
        ModelSpec(model_type=model_type, horizon=h, hyperparameters={name: value})
        for (model_type, name, values), h in itertools.product(MODELS, HORIZONS) for value in values
    ]
    picks = np.random.default_rng(3).permutation(len(feature_sets) * len(model_specs))[:n]
    for pick in picks:
        yield ModelConfiguration.of(feature_sets[pick // len(model_specs)], model_specs[pick % len(model_specs)])


@dataclass(frozen=True)
class Seeded:
    """What was written: run ids, the runs with full details, the regime-best runs."""

    n_runs: int
    detailed: tuple[int, ...]
    bests: tuple[int, ...]


def _status(i: int) -> str:
    return "failed" if i % 13 == 5 else ("pending" if i % 47 == 11 else "completed")


def run_rows(n: int, bests: Sequence[int]) -> Iterator[tuple[Any, ...]]:
    """One training_runs row per configuration; ids from 1; created one every 7 minutes from START."""
    rng = np.random.default_rng(7)
    for i, configuration in enumerate(configurations(n), start=1):
        status = _status(i)
        created = START + timedelta(minutes=7 * i)
        done = status == "completed"
        kept = i in bests
        metrics = {"validation_mse_zero": 1.0, "validation_skill_direct_mean": float(rng.normal(0.01, 0.02)),
                   "n_train": 3000.0, "n_validation": 1000.0, "n_test": 1000.0} if done else None
        yield (
            i, configuration.model_config_hash, configuration.partition_key, configuration.feature_set_hash,
            configuration.model_spec_hash, json.dumps(configuration.feature_set.canonical()),
            json.dumps(configuration.model_spec.canonical()), configuration.feature_set.symbol,
            configuration.feature_set.base_timeframe, configuration.model_spec.model_type, configuration.model_spec.encoder,
            configuration.model_spec.horizon, status, float(rng.uniform(1, 90)) if done else None,
            float(rng.uniform(0.2, 3)) if done else None, json.dumps(metrics) if metrics else None,
            f"/nonexistent/models/{i}.joblib" if done else None, "0" * 64 if done else None, 1000 if done else None,
            kept, None if kept or not done else created + timedelta(minutes=5),
            "ValueError: 800 days asked of 365 days of bars" if status == "failed" else None, None,
            created, created if status != "pending" else None, created + timedelta(minutes=5) if done else None,
        )


def backtest_rows(run_ids: Iterable[int], configs: Sequence[tuple[Any, ...]], regimes: Sequence[str],
                  segments: Sequence[str], seed: int = 0) -> Iterator[tuple[Any, ...]]:
    """Metrics of each (run, inference configuration, regime, segment); Sharpe ~ N(run skill, 1)."""
    rng = np.random.default_rng(seed)
    for run_id in run_ids:
        if _status(run_id) != "completed":
            continue
        skill = float(rng.normal(0, 0.5))
        n = len(configs) * len(regimes) * len(segments)
        sharpe, drawdown, trades = rng.normal(skill, 1.0, n), -np.abs(rng.normal(0.08, 0.05, n)), rng.integers(0, 80, n)
        for k, ((method, ensemble, threshold, lookback), regime, segment) in enumerate(itertools.product(configs, regimes, segments)):
            yield (
                run_id, config_hash([method, ensemble, threshold, lookback]), method, ensemble, threshold, lookback, regime,
                segment, float(sharpe[k]), float(sharpe[k] * 1.3), float(drawdown[k]), float(sharpe[k] * 0.02), 0.5,
                1.2, int(trades[k]), 0.4, 1000, START,
            )


def _timestamp(value: Any, sqlite: bool) -> Any:
    if not isinstance(value, datetime):
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ") if sqlite else value.isoformat()


def write_rows(url: str, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]], chunk: int = 200_000) -> int:
    """Insert rows directly: COPY on PostgreSQL, executemany on SQLite; returns the count."""
    parsed = db.parse_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    engine = db.make_engine(url)
    written = 0
    try:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            placeholders = ", ".join("?" for _ in columns)
            for batch in _batches(rows, chunk):
                batch = [tuple(_timestamp(v, sqlite) for v in row) for row in batch]
                if sqlite:
                    cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", batch)
                else:
                    buffer = io.StringIO()
                    csv.writer(buffer).writerows(["" if v is None else v for v in row] for row in batch)
                    buffer.seek(0)
                    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer)
                written += len(batch)
            connection.commit()
        finally:
            connection.close()
    finally:
        engine.dispose()
    return written


@contextmanager
def without_backtest_indexes(url: str) -> Iterator[None]:
    """Bulk-load practice: drop inference_backtests' secondary indexes and its unique / foreign-key
    constraints for the COPY, then rebuild them once (what every page query then uses)."""
    from sqlalchemy import create_engine

    engine = create_engine(db.parse_url(url))
    table = "inference_backtests"
    with engine.begin() as connection:
        constraints = connection.exec_driver_sql(
            f"SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = '{table}'::regclass AND contype IN ('u', 'f')"
        ).all()
        indexes = connection.exec_driver_sql(
            f"SELECT indexname, indexdef FROM pg_indexes WHERE tablename = '{table}' AND indexname NOT IN "
            f"(SELECT conname FROM pg_constraint WHERE conrelid = '{table}'::regclass)"
        ).all()
        for name, _ in constraints:
            connection.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            connection.exec_driver_sql(f'DROP INDEX "{name}"')
    try:
        yield
    finally:
        with engine.begin() as connection:
            for _, definition in indexes:
                connection.exec_driver_sql(definition)
            for name, definition in constraints:
                connection.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            connection.exec_driver_sql(f"ANALYZE {table}")
        engine.dispose()


def _batches(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def seed_history(url: str, n_runs: int, *, detailed: Sequence[int] = (1, 2, 3, 4, 5), bests: Sequence[int] = (2,),
                 configs_per_run: int = 3, regimes: Sequence[str] = REGIMES, segments: Sequence[str] = ("selection",),
                 bulk: bool = False) -> Seeded:
    """Fill a new database: `n_runs` runs; every completed run gets `configs_per_run` inference
    configurations x `regimes` x `segments`; the `detailed` runs get all 135 x regimes x (selection, holdout);
    the `bests` runs are rank-1 regime bests (kept) of `bull_trending`. Resets the PostgreSQL id sequence.

    The rows are written at SEED_REVISION's schema, then the database is upgraded to head, so a later
    migration that derives tables from the backtest rows (per-run summaries) backfills them the way it
    does for any existing database. `bulk` (PostgreSQL): load without the backtest indexes, rebuild them after."""
    from contextlib import nullcontext

    from sqlalchemy import text

    from forex_pipeline.settings import get_settings
    from forex_pipeline.store.regime_definitions import seed_regime_definitions

    db.upgrade(url, SEED_REVISION)
    postgres = db.parse_url(url).get_backend_name() == "postgresql"
    with without_backtest_indexes(url) if bulk and postgres else nullcontext():
        write_rows(url, "training_runs", RUN_COLUMNS, run_rows(n_runs, bests))
        others = (i for i in range(1, n_runs + 1) if i not in detailed)
        write_rows(url, "inference_backtests", BACKTEST_COLUMNS,
                   itertools.chain(backtest_rows(others, INFERENCE_GRID[:configs_per_run], regimes, segments),
                                   backtest_rows(detailed, INFERENCE_GRID, regimes, ("selection", "holdout"), seed=1)))
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        with db.session_scope(engine) as session:
            seed_regime_definitions(session, get_settings())
            for rank, run_id in enumerate(bests, start=1):
                backtest = session.execute(text(
                    "SELECT id, inference_config_hash FROM inference_backtests WHERE training_run_id = :r "
                    "AND regime = 'bull_trending' AND segment = 'selection' ORDER BY sharpe DESC LIMIT 1"), {"r": run_id}).one()
                session.execute(text(
                    "INSERT INTO regime_best_models (regime, rank, training_run_id, inference_backtest_id, inference_config_hash, "
                    "score, trade_count, n_trials, updated_at) VALUES ('bull_trending', :rank, :run, :bt, :h, 1.5, 40, 135, :t)"),
                    {"rank": rank, "run": run_id, "bt": backtest.id, "h": backtest.inference_config_hash,
                     "t": _timestamp(START, engine.dialect.name == "sqlite")})
            if engine.dialect.name == "postgresql":
                session.execute(text("SELECT setval(pg_get_serial_sequence('training_runs', 'id'), (SELECT MAX(id) FROM training_runs))"))
                session.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return Seeded(n_runs, tuple(detailed), tuple(bests))
