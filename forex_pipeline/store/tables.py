"""SQLAlchemy 2 models of the project tables; the Alembic migrations create the same schema."""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnElement,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from forex_pipeline.backtest.columns import (
    BLOCK_COLUMNS,
    EVALUATION_COLUMNS,
    MOMENT_COLUMNS,
    NULLABLE_METRICS,
    SEGMENT_COLUMN,
)
from forex_pipeline.keys import QueueStatus, RunStatus

RUN_STATUSES: tuple[str, ...] = tuple(RunStatus)
# What a history page filters and sorts on (store/history.py): PostgreSQL keeps a narrow covering index of
# them (migration 0006), so choosing a page's runs never reads the wide training_runs rows.
HISTORY_RUN_COLUMNS: tuple[str, ...] = (
    "status", "model_type", "symbol", "encoder", "base_timeframe", "horizon", "kept", "queue_id",
    "created_at", "completed_at", "training_seconds", "backtest_seconds",
)
HISTORY_SUMMARY_COLUMNS: tuple[str, ...] = ("best_sharpe", "best_max_drawdown")
QUEUE_STATUSES: tuple[str, ...] = tuple(QueueStatus)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the default of every timestamp column)."""
    return datetime.now(timezone.utc)


def in_list(column: str, values: tuple[str, ...]) -> str:
    """SQL text `column IN ('a', 'b')` for a check constraint over fixed names."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both backends: SQLite stores naive UTC, reads come back tagged UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; timestamps must be timezone-aware (UTC)")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def json_safe(value: Any) -> Any:
    """Plain JSON values: non-finite floats become None, numpy scalars and tuples become Python ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.loads(json.dumps(value, default=str))


class JSONDocument(TypeDecorator[Any]):
    """JSON (JSONB on PostgreSQL) that stores NaN and infinity as null instead of invalid JSON."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else json_safe(value)


class JSONList(JSONDocument):
    """A JSON list column where Python None is SQL NULL (not JSON null), so `IS NULL` finds it."""

    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))


class NullableFloat(TypeDecorator[float]):
    """A float column where NaN (e.g. a Sharpe ratio over zero trades) is stored as NULL."""

    impl = Float
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> float | None:
        if value is None:
            return None
        value = float(value)
        return None if math.isnan(value) else value


def new_uuid() -> str:
    """A time-ordered UUID as text (the specification's run_uuid, backtest_uuid and queue_uuid): version 7
    of RFC 9562 (section 5.7), the Unix time in milliseconds in the top 48 bits, then 74 random bits.

    New values sort after older ones, so the unique index on backtest_uuid (135 new values a model, 6.6
    million at the full grid) takes them at its right edge instead of on a random leaf each; random
    (version 4) values made a model's record touch 135 leaves of a 205 MB index. Python's uuid module
    has uuid7 only from 3.14.
    """
    millis = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")   # 80 bits: 12 for rand_a, 62 for rand_b, 6 unused
    value = (millis & (2**48 - 1)) << 80 | 0x7 << 76 | (random >> 68) << 64 | 0b10 << 62 | (random & (2**62 - 1))
    return str(uuid.UUID(int=value))


class SpecAlias(ColumnElement[Any]):
    """The expression of a generated column that gives a project column the specification's name.

    `source` is a column of the same row; `key` picks a member of its JSON document; `cast` types a
    JSON member on PostgreSQL (SQLite's json_extract returns typed values). Plain SQL per dialect, so
    the generated column is VIRTUAL on SQLite (no storage, no write cost) and STORED on PostgreSQL
    (its only kind before version 18). docs/spec_mapping.md lists every such column.
    """

    inherit_cache = False

    def __init__(self, source: str, key: str | None = None, cast: str | None = None, minus: str | None = None) -> None:
        self.source, self.key, self.cast, self.minus = source, key, cast, minus


@compiles(SpecAlias)
def _spec_alias_postgresql(element: SpecAlias, compiler: Any, **kw: Any) -> str:
    if element.minus:
        return f"({element.source} - {element.minus})"
    if element.key is None:
        return element.source
    if element.cast:
        return f"(({element.source} ->> '{element.key}')::{element.cast})"
    return f"({element.source} -> '{element.key}')"


@compiles(SpecAlias, "sqlite")
def _spec_alias_sqlite(element: SpecAlias, compiler: Any, **kw: Any) -> str:
    if element.minus:
        return f"({element.source} - {element.minus})"
    if element.key is None:
        return element.source
    return f"json_extract({element.source}, '$.{element.key}')"


def spec_alias(source: str, key: str | None = None, cast: str | None = None, minus: str | None = None) -> Computed:
    """A generated column over `source` (see SpecAlias); read-only, the ORM never writes it."""
    return Computed(SpecAlias(source, key, cast, minus))


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so constraint names match on SQLite and PostgreSQL."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TrainingQueue(Base):
    """One grid of model configurations worked through by Dagster runs, with pause/cancel flags."""

    __tablename__ = "training_queue"
    __table_args__ = (
        CheckConstraint(in_list("status", QUEUE_STATUSES), name="status"),
        CheckConstraint(
            "total_models >= 0 AND completed_models >= 0 AND failed_models >= 0 "
            "AND kept_models >= 0 AND deleted_models >= 0 AND consecutive_failures >= 0",
            name="counts_non_negative",
        ),
        Index(None, "status"),
        Index(None, "grid_hash"),
        Index(None, "queue_uuid", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    grid_spec: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    grid_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=str(QueueStatus.PENDING))
    total_models: Mapped[int] = mapped_column(Integer, default=0)
    completed_models: Mapped[int] = mapped_column(Integer, default=0)
    failed_models: Mapped[int] = mapped_column(Integer, default=0)
    kept_models: Mapped[int] = mapped_column(Integer, default=0)
    deleted_models: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, nullable=True)
    dagster_run_ids: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    pause_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The specification's columns (docs/spec_mapping.md): real where the value is new, generated where derived.
    queue_uuid: Mapped[str | None] = mapped_column(String(36), default=new_uuid, nullable=True)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    max_parallel: Mapped[int] = mapped_column(Integer, default=1)
    config_grid: Mapped[dict[str, Any]] = mapped_column(JSONDocument, spec_alias("grid_spec"), nullable=True)
    current_index: Mapped[int] = mapped_column(Integer, spec_alias("(completed_models + failed_models)"), nullable=True)
    total_configs: Mapped[int] = mapped_column(Integer, spec_alias("total_models"), nullable=True)
    completed_count: Mapped[int] = mapped_column(Integer, spec_alias("completed_models", minus="skipped_count"), nullable=True)
    failed_count: Mapped[int] = mapped_column(Integer, spec_alias("failed_models"), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, spec_alias("finished_at"), nullable=True)


class TrainingRun(Base):
    """One model configuration (feature set x model spec): its training, its file and its fate."""

    __tablename__ = "training_runs"
    __table_args__ = (
        CheckConstraint(in_list("status", RUN_STATUSES), name="status"),
        Index(None, "symbol", "model_type"),
        Index(None, "status"),
        Index(None, "queue_id"),
        Index(None, "feature_set_hash"),
        Index(None, "run_uuid", unique=True),
        Index(None, "config_hash"),
        Index("ix_training_runs_history", "id", postgresql_include=list(HISTORY_RUN_COLUMNS)).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_config_hash: Mapped[str] = mapped_column(String(64), unique=True)
    partition_key: Mapped[str] = mapped_column(String(255))
    feature_set_hash: Mapped[str] = mapped_column(String(64))
    model_spec_hash: Mapped[str] = mapped_column(String(64))
    feature_set: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    model_spec: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    symbol: Mapped[str] = mapped_column(String(16))
    base_timeframe: Mapped[str] = mapped_column(String(8))
    model_type: Mapped[str] = mapped_column(String(32))
    encoder: Mapped[str] = mapped_column(String(32))
    horizon: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=str(RunStatus.PENDING))
    training_seconds: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    backtest_seconds: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, nullable=True)
    model_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    kept: Mapped[bool] = mapped_column(Boolean, default=False)
    file_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    dagster_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    queue_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_queue.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The specification's columns (docs/spec_mapping.md): real where the value is new, generated where derived.
    run_uuid: Mapped[str | None] = mapped_column(String(36), default=new_uuid, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    feature_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    best_regimes: Mapped[list[str] | None] = mapped_column(JSONList, nullable=True)
    config_hash: Mapped[str] = mapped_column(String(64), spec_alias("model_config_hash"), nullable=True)
    days_history: Mapped[int] = mapped_column(Integer, spec_alias("feature_set", "days_history", "integer"), nullable=True)
    indicator_tfs: Mapped[dict[str, Any]] = mapped_column(JSONDocument, spec_alias("feature_set", "indicator_timeframes"), nullable=True)
    additional_features: Mapped[list[str]] = mapped_column(JSONDocument, spec_alias("feature_set", "additional_features"), nullable=True)
    preprocessing_params: Mapped[dict[str, Any]] = mapped_column(JSONDocument, spec_alias("feature_set", "preprocessing"), nullable=True)
    model_hyperparams: Mapped[dict[str, Any]] = mapped_column(JSONDocument, spec_alias("model_spec", "hyperparameters"), nullable=True)
    training_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, spec_alias("metrics"), nullable=True)
    training_duration_seconds: Mapped[float | None] = mapped_column(Float, spec_alias("training_seconds"), nullable=True)
    model_file_path: Mapped[str | None] = mapped_column(Text, spec_alias("model_path"), nullable=True)
    model_file_size_bytes: Mapped[int | None] = mapped_column(BigInteger, spec_alias("model_bytes"), nullable=True)
    is_model_kept: Mapped[bool] = mapped_column(Boolean, spec_alias("kept"), nullable=True)
    # the claim's worker (kept after it finished: which host trained the model) and its lease
    worker_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    celery_task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class InferenceBacktest(Base):
    """Metrics of one inference configuration of one trained model, over one regime (or `all`) and one
    segment of the test period (`selection`, `holdout` (walk-forward pools its folds into selection), or
    `test` for rows recorded before the selection/holdout split existed: the whole test segment).

    The trust columns (NULL on `test` rows) are what the trust figures need without re-running anything:
    per-bar Sharpe, skewness and non-excess kurtosis of the regime's per-bar returns, the sums of their
    powers, and the CSCV block lists (16 floats each, JSON) of regimes/significance.py.
    """

    __tablename__ = "inference_backtests"
    __table_args__ = (
        UniqueConstraint(
            "training_run_id",
            "inference_config_hash",
            "regime",
            "segment",
            name="uq_inference_backtests_run_config_regime_segment",
        ),
        Index(None, "backtest_uuid", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    training_run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"))
    inference_config_hash: Mapped[str] = mapped_column(String(64))
    prediction_method: Mapped[str] = mapped_column(String(32))
    ensemble_method: Mapped[str] = mapped_column(String(32))
    confidence_threshold: Mapped[float] = mapped_column(Float)
    lookback_window: Mapped[int] = mapped_column(Integer)
    regime: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str] = mapped_column(String(32))
    sharpe: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    sortino: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    max_drawdown: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    total_return: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    win_rate: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    profit_factor: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    trade_count: Mapped[int] = mapped_column(Integer)
    exposure: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    n_bars: Mapped[int] = mapped_column(Integer)
    sharpe_per_bar: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    skewness: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    kurtosis: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    sum_ret: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    sum_sq: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    sum_cube: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    sum_quad: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    block_sum_ret: Mapped[list[float] | None] = mapped_column(JSONList, nullable=True)
    block_sum_sq: Mapped[list[float] | None] = mapped_column(JSONList, nullable=True)
    block_n_bars: Mapped[list[float] | None] = mapped_column(JSONList, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The specification's one row per inference configuration is the configuration's `all` row of each
    # segment: only those rows carry the JSON documents (NULL on the per-regime rows), docs/spec_mapping.md.
    backtest_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    inference_params: Mapped[dict[str, Any] | None] = mapped_column(JSONList, nullable=True)
    backtest_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONList, nullable=True)
    regime_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONList, nullable=True)
    backtest_duration_seconds: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime, spec_alias("created_at"), nullable=True)


class TrainingRunSummary(Base):
    """What history, the plan estimate and the dashboards read about one run in one regime (or `all`),
    written with the run's backtests (store/inference_backtests.py) so no reader scans that table.

    Over the ranked rows (every segment but the holdouts, as `not_confirming`): how many there are, the
    best Sharpe, the smallest |max drawdown| of any configuration, and the figures of the best-Sharpe
    configuration (`best_config_*`, ties broken by the lower row id).
    """

    __tablename__ = "training_run_summaries"
    __table_args__ = (
        Index(None, "regime", "best_sharpe"),
        Index(
            "ix_training_run_summaries_history", "regime", "training_run_id", postgresql_include=list(HISTORY_SUMMARY_COLUMNS)
        ).ddl_if(dialect="postgresql"),
    )

    training_run_id: Mapped[int] = mapped_column(
        ForeignKey("training_runs.id", ondelete="CASCADE"), primary_key=True
    )
    regime: Mapped[str] = mapped_column(String(64), primary_key=True)
    configurations: Mapped[int] = mapped_column(Integer)
    best_sharpe: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    best_max_drawdown: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    best_config_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    best_config_max_drawdown: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    best_config_total_return: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    best_config_trade_count: Mapped[int | None] = mapped_column(Integer, nullable=True)


class RegimeTrialMoments(Base):
    """Running totals of the trials of one regime on one segment: N and the sums behind V of the
    deflated Sharpe (regimes/significance.py TrialMoments), kept up to date by every backtest write so
    the keep-or-delete transaction reads one row per regime instead of aggregating the backtests.
    Trials stay counted when their run is deleted: they were tried (Bailey & Lopez de Prado's N)."""

    __tablename__ = "regime_trial_moments"

    regime: Mapped[str] = mapped_column(String(64), primary_key=True)
    segment: Mapped[str] = mapped_column(String(32), primary_key=True)
    trials: Mapped[int] = mapped_column(BigInteger, default=0)
    finite_trials: Mapped[int] = mapped_column(BigInteger, default=0)
    sum_sharpe_per_bar: Mapped[float] = mapped_column(Float, default=0.0)
    sum_sq_sharpe_per_bar: Mapped[float] = mapped_column(Float, default=0.0)


class RegimeDefinitionRow(Base):
    """A market regime: rules {feature: {min, max}} over the regime features; built-ins come from YAML."""

    __tablename__ = "regime_definitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    rules: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    is_builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The specification's names (generated, docs/spec_mapping.md).
    regime_name: Mapped[str] = mapped_column(String(64), spec_alias("name"), nullable=True)
    detection_rules: Mapped[dict[str, Any]] = mapped_column(JSONDocument, spec_alias("rules"), nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, spec_alias("enabled"), nullable=True)


class RegimeBestModel(Base):
    """Rank `rank` (1..N) of the best models of one regime, with the inference config that earned it."""

    __tablename__ = "regime_best_models"
    __table_args__ = (
        UniqueConstraint("regime", "rank"),
        UniqueConstraint("regime", "training_run_id"),
        CheckConstraint("rank >= 1", name="rank_positive"),
        Index(None, "training_run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    regime: Mapped[str] = mapped_column(ForeignKey("regime_definitions.name", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    training_run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"))
    inference_backtest_id: Mapped[int] = mapped_column(ForeignKey("inference_backtests.id", ondelete="CASCADE"))
    inference_config_hash: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    previous_best_score: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    improvement: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    trade_count: Mapped[int] = mapped_column(Integer)
    n_trials: Mapped[int] = mapped_column(Integer)
    deflated_sharpe: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    # Trust figures (regimes/significance.py, docs/regimes.md); NULL on rows recorded before they existed.
    selection_score: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    holdout_score: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    holdout_trades: Mapped[int | None] = mapped_column(Integer, nullable=True)
    null_p_value: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    pbo: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    baseline: Mapped[str | None] = mapped_column(String(32), nullable=True)
    baseline_score: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    improvement_over_baseline: Mapped[float | None] = mapped_column(NullableFloat, nullable=True)
    significant: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The specification's columns (docs/spec_mapping.md): achieved_at survives re-ranking (the model's
    # entry into this regime's top N), secondary_metrics gathers the figures beside the score.
    achieved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    secondary_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONList, nullable=True)
    regime_name: Mapped[str] = mapped_column(String(64), spec_alias("regime"), nullable=True)
    performance_score: Mapped[float] = mapped_column(Float, spec_alias("score"), nullable=True)


# The stored backtest row: the evaluation frame of backtest/run.py (backtest/columns.py EVALUATION_COLUMNS).
BACKTEST_COLUMNS: tuple[str, ...] = EVALUATION_COLUMNS
BACKTEST_METRICS: tuple[str, ...] = NULLABLE_METRICS
BACKTEST_FLOATS: tuple[str, ...] = (*NULLABLE_METRICS, *MOMENT_COLUMNS)       # NULL <-> NaN
BACKTEST_BLOCKS: tuple[str, ...] = BLOCK_COLUMNS                              # JSON lists of floats
BACKTEST_SEGMENT: str = SEGMENT_COLUMN
CONFIRMING_SEGMENT_PREFIX = "holdout"   # `holdout`, walk-forward `holdout_k`: confirm a best, never rank one
LEGACY_SEGMENT = "test"     # rows recorded before segments: the whole test segment (migration 0002)
