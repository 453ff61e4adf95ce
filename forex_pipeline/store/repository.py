"""Plain functions over a Session: callers get frozen records or DataFrames, never ORM objects.

None of these functions commit; wrap them in `db.session_scope` so each unit of work is one
transaction. Functions that change a row they did not create raise LookupError when it is missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from forex_pipeline.store.tables import (
    BACKTEST_COLUMNS,
    BACKTEST_METRICS,
    QUEUE_STATUSES,
    RUN_STATUSES,
    InferenceBacktest,
    RegimeBestModel,
    RegimeDefinitionRow,
    TrainingQueue,
    TrainingRun,
    json_safe,
    utcnow,
)

if TYPE_CHECKING:
    from forex_pipeline.features.spec import FeatureSetSpec
    from forex_pipeline.models.spec import ModelSpec
    from forex_pipeline.settings import Settings

IN_CHUNK = 500
R = TypeVar("R")


# ----------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class TrainingRunRecord:
    """One row of training_runs."""

    id: int
    model_config_hash: str
    partition_key: str
    feature_set_hash: str
    model_spec_hash: str
    feature_set: dict[str, Any]
    model_spec: dict[str, Any]
    symbol: str
    base_timeframe: str
    model_type: str
    encoder: str
    horizon: int
    status: str
    training_seconds: float | None
    backtest_seconds: float | None
    metrics: dict[str, Any] | None
    model_path: str | None
    model_sha256: str | None
    model_bytes: int | None
    kept: bool
    file_deleted_at: datetime | None
    error_message: str | None
    dagster_run_id: str | None
    queue_id: int | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True)
class QueueRecord:
    """One row of training_queue."""

    id: int
    name: str
    grid_spec: dict[str, Any]
    grid_hash: str
    status: str
    total_models: int
    completed_models: int
    failed_models: int
    kept_models: int
    deleted_models: int
    consecutive_failures: int
    checkpoint: dict[str, Any] | None
    dagster_run_ids: list[str]
    pause_requested: bool
    cancel_requested: bool
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class RegimeDefinitionRecord:
    """One row of regime_definitions; rules are {feature: {"min": x, "max": y}} (either may be absent)."""

    id: int
    name: str
    description: str
    rules: dict[str, dict[str, float]]
    enabled: bool
    is_builtin: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class HistoryFilter:
    """Filters of the training history; None means "any". Dates bound created_at, [since, until)."""

    status: str | None = None
    model_type: str | None = None
    symbol: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_sharpe: float | None = None
    max_drawdown: float | None = None
    sort: str = "-created_at"
    page: int = 1
    page_size: int = 50


@dataclass(frozen=True)
class HistoryPage:
    """One page of history rows, and how many rows match in all."""

    rows: pd.DataFrame
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


def _record(cls: type[R], row: Any) -> R:
    """Copy the columns of an ORM row into a frozen record."""
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})  # type: ignore[arg-type]


def _chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    """Slices short enough for one IN (...) on SQLite."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _dialect_insert(session: Session, table: Any) -> Any:
    """INSERT with ON CONFLICT support on the session's backend."""
    name = session.get_bind().dialect.name
    return postgresql.insert(table) if name == "postgresql" else sqlite.insert(table)


def _check_status(status: str, allowed: tuple[str, ...], what: str) -> None:
    if status not in allowed:
        raise ValueError(f"{what} status {status!r} is not one of {', '.join(allowed)}")


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} {value.isoformat()} is naive; give a timezone-aware (UTC) datetime")
    return value.astimezone(timezone.utc)


# ----------------------------------------------------------------------------------- training runs

RUN_IDENTITY_FIELDS: tuple[str, ...] = (
    "partition_key",
    "feature_set_hash",
    "model_spec_hash",
    "feature_set",
    "model_spec",
    "symbol",
    "base_timeframe",
    "model_type",
    "encoder",
    "horizon",
)


def training_run_fields(feature_set: FeatureSetSpec, model_spec: ModelSpec) -> dict[str, Any]:
    """The identity columns of a training run, derived from its two specs (partition key `fs|ms`)."""
    from forex_pipeline.models.spec import model_config_hash

    return {
        "model_config_hash": model_config_hash(feature_set.hash, model_spec.hash),
        "partition_key": f"{feature_set.partition_key}|{model_spec.partition_key}",
        "feature_set_hash": feature_set.hash,
        "model_spec_hash": model_spec.hash,
        "feature_set": feature_set.canonical(),
        "model_spec": model_spec.canonical(),
        "symbol": feature_set.symbol,
        "base_timeframe": feature_set.base_timeframe,
        "model_type": model_spec.model_type,
        "encoder": model_spec.encoder,
        "horizon": model_spec.horizon,
    }


def _run_values(identity: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Validated column values of a new training run: every identity field, nothing unknown."""
    required = ("model_config_hash", *RUN_IDENTITY_FIELDS)
    label = identity.get("model_config_hash") or "<no model_config_hash>"
    missing = [name for name in required if identity.get(name) is None]
    unknown = sorted(set(identity) - set(required))
    if missing or unknown:
        raise ValueError(f"training run {label}: missing field(s) {missing}, unknown field(s) {unknown}")
    if "status" in extra:
        _check_status(extra["status"], RUN_STATUSES, "training run")
    return {**{name: identity[name] for name in required}, **extra}


def insert_training_run(
    session: Session,
    identity: Mapping[str, Any],
    *,
    queue_id: int | None = None,
    dagster_run_id: str | None = None,
    status: str = "pending",
) -> TrainingRunRecord:
    """Insert a new training run (identity: see training_run_fields); a duplicate hash raises IntegrityError."""
    extra = {"queue_id": queue_id, "dagster_run_id": dagster_run_id, "status": status}
    row = TrainingRun(**_run_values(identity, extra))
    session.add(row)
    session.flush()
    return _record(TrainingRunRecord, row)


def upsert_training_run(
    session: Session,
    identity: Mapping[str, Any],
    *,
    queue_id: int | None = None,
    dagster_run_id: str | None = None,
) -> TrainingRunRecord:
    """Insert the run if its model_config_hash is new, else attach it to `queue_id`/`dagster_run_id`.

    Safe with parallel writers (INSERT .. ON CONFLICT); an existing run's status and results stay.
    """
    values = _run_values(identity, {"queue_id": queue_id, "dagster_run_id": dagster_run_id})
    statement = _dialect_insert(session, TrainingRun).values(
        **values, status="pending", kept=False, created_at=utcnow()
    )
    changes = {k: v for k, v in (("queue_id", queue_id), ("dagster_run_id", dagster_run_id)) if v is not None}
    if changes:
        statement = statement.on_conflict_do_update(index_elements=["model_config_hash"], set_=changes)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=["model_config_hash"])
    session.execute(statement)
    record = get_training_run_by_hash(session, values["model_config_hash"])
    if record is None:
        raise LookupError(f"training run {values['model_config_hash']} vanished right after its upsert")
    return record


def get_training_run_by_hash(session: Session, model_config_hash: str) -> TrainingRunRecord | None:
    """The training run of one model configuration, or None."""
    statement = select(TrainingRun).where(TrainingRun.model_config_hash == model_config_hash)
    row = session.scalars(statement.execution_options(populate_existing=True)).one_or_none()
    return None if row is None else _record(TrainingRunRecord, row)


def get_training_run(session: Session, training_run_id: int) -> TrainingRunRecord | None:
    """The training run with this id, or None."""
    row = session.get(TrainingRun, training_run_id, populate_existing=True)
    return None if row is None else _record(TrainingRunRecord, row)


def _run_row(session: Session, model_config_hash: str) -> TrainingRun:
    row = session.scalars(select(TrainingRun).where(TrainingRun.model_config_hash == model_config_hash)).one_or_none()
    if row is None:
        raise LookupError(f"no training run with model_config_hash {model_config_hash!r}")
    return row


def mark_run_status(
    session: Session,
    model_config_hash: str,
    status: str,
    *,
    error_message: str | None = None,
    training_seconds: float | None = None,
    backtest_seconds: float | None = None,
    metrics: Mapping[str, Any] | None = None,
    model_path: str | None = None,
    model_sha256: str | None = None,
    model_bytes: int | None = None,
    dagster_run_id: str | None = None,
) -> TrainingRunRecord:
    """Move a run to `status`; `running` stamps started_at, `completed`/`failed` stamp completed_at.

    Fields given as None keep their value, except error_message, which is cleared on `running`
    and `completed`.
    """
    _check_status(status, RUN_STATUSES, "training run")
    row = _run_row(session, model_config_hash)
    now = utcnow()
    row.status = status
    if status == "running":
        row.started_at, row.completed_at, row.error_message = now, None, None
    elif status in ("completed", "failed"):
        row.completed_at = now
    if status == "completed":
        row.error_message = None
    updates = {
        "error_message": error_message,
        "training_seconds": None if _is_nan(training_seconds) else training_seconds,
        "backtest_seconds": None if _is_nan(backtest_seconds) else backtest_seconds,
        "metrics": json_safe(dict(metrics)) if metrics is not None else None,
        "model_path": model_path,
        "model_sha256": model_sha256,
        "model_bytes": model_bytes,
        "dagster_run_id": dagster_run_id,
    }
    for name, value in updates.items():
        if value is not None:
            setattr(row, name, value)
    session.flush()
    return _record(TrainingRunRecord, row)


def find_completed_hashes(session: Session, hashes: Iterable[str]) -> set[str]:
    """The subset of `hashes` whose training run is completed (what a queue may skip)."""
    wanted = sorted(set(hashes))
    done: set[str] = set()
    for chunk in _chunks(wanted):
        statement = select(TrainingRun.model_config_hash).where(
            TrainingRun.model_config_hash.in_(chunk), TrainingRun.status == "completed"
        )
        done.update(session.scalars(statement))
    return done


def runs_of_queue(session: Session, queue_id: int) -> list[TrainingRunRecord]:
    """Every training run attached to a queue, oldest first."""
    rows = session.scalars(select(TrainingRun).where(TrainingRun.queue_id == queue_id).order_by(TrainingRun.id))
    return [_record(TrainingRunRecord, row) for row in rows]


def set_kept_flags(session: Session) -> list[TrainingRunRecord]:
    """kept := the run is in some regime's bests; returns unkept runs whose file still exists (to delete)."""
    in_bests = select(RegimeBestModel.training_run_id).distinct()
    session.execute(
        update(TrainingRun).values(kept=TrainingRun.id.in_(in_bests)).execution_options(synchronize_session=False)
    )
    rows = session.scalars(
        select(TrainingRun)
        .where(TrainingRun.kept.is_(False), TrainingRun.model_path.is_not(None), TrainingRun.file_deleted_at.is_(None))
        .order_by(TrainingRun.id)
        .execution_options(populate_existing=True)
    )
    return [_record(TrainingRunRecord, row) for row in rows]


def mark_file_deleted(session: Session, training_run_id: int, at: datetime | None = None) -> TrainingRunRecord:
    """Record that a run's model file was deleted (its metadata stays)."""
    row = session.get(TrainingRun, training_run_id)
    if row is None:
        raise LookupError(f"no training run with id {training_run_id}")
    row.file_deleted_at = _aware(at, "file_deleted_at") if at is not None else utcnow()
    session.flush()
    return _record(TrainingRunRecord, row)


# ------------------------------------------------------------------------------------- backtests


def _backtest_rows(training_run_id: int, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for executemany: exactly the contract columns, NaN -> None, integers as int."""
    missing = [c for c in BACKTEST_COLUMNS if c not in frame.columns]
    extra = [c for c in frame.columns if c not in BACKTEST_COLUMNS]
    if missing or extra:
        raise ValueError(
            f"backtest frame columns: missing {missing}, unexpected {extra}; expected {list(BACKTEST_COLUMNS)}"
        )
    nulls = [c for c in BACKTEST_COLUMNS if c not in BACKTEST_METRICS and frame[c].isna().any()]
    if nulls:
        raise ValueError(f"backtest frame has missing values in required column(s) {nulls}")
    now = utcnow()
    metrics = set(BACKTEST_METRICS)
    rows = []
    for record in frame.loc[:, list(BACKTEST_COLUMNS)].to_dict("records"):
        row = {k: (None if k in metrics and _is_nan(v) else v) for k, v in record.items()}
        row["trade_count"], row["n_bars"] = int(row["trade_count"]), int(row["n_bars"])
        row["lookback_window"] = int(row["lookback_window"])
        row["confidence_threshold"] = float(row["confidence_threshold"])
        row["training_run_id"], row["created_at"] = training_run_id, now
        rows.append(row)
    return rows


def _is_nan(value: Any) -> bool:
    """None or a float NaN (numpy floats included)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def batch_insert_backtests(
    session: Session, training_run_id: int, frame: pd.DataFrame, *, replace: bool = False
) -> int:
    """Insert one model's backtest results in one executemany (NaN metrics stored as NULL).

    `frame` has exactly the columns of docs/architecture.md "Backtest results". With replace=True
    the run's earlier rows (and any regime bests pointing at them) are deleted first.
    """
    rows = _backtest_rows(training_run_id, frame)
    if session.get(TrainingRun, training_run_id) is None:
        raise LookupError(f"no training run with id {training_run_id}")
    if replace:
        session.execute(delete(InferenceBacktest).where(InferenceBacktest.training_run_id == training_run_id))
    if rows:
        session.execute(insert(InferenceBacktest.__table__), rows)
    return len(rows)


def get_backtests(session: Session, training_run_id: int) -> pd.DataFrame:
    """A run's backtest rows as a DataFrame (id, training_run_id and the contract columns; NULL -> NaN)."""
    columns = ["id", "training_run_id", *BACKTEST_COLUMNS]
    statement = (
        select(*(getattr(InferenceBacktest, c) for c in columns))
        .where(InferenceBacktest.training_run_id == training_run_id)
        .order_by(InferenceBacktest.id)
    )
    return _frame(session, statement, columns, float_columns=BACKTEST_METRICS)


def backtests_for_regime(session: Session, regime: str, *, min_trades: int = 0) -> pd.DataFrame:
    """Every completed run's backtests in `regime` with at least `min_trades` trades (selection input)."""
    columns = ["inference_backtest_id", "training_run_id", "model_config_hash", "partition_key", *BACKTEST_COLUMNS]
    statement = (
        select(
            InferenceBacktest.id,
            InferenceBacktest.training_run_id,
            TrainingRun.model_config_hash,
            TrainingRun.partition_key,
            *(getattr(InferenceBacktest, c) for c in BACKTEST_COLUMNS),
        )
        .join(TrainingRun, TrainingRun.id == InferenceBacktest.training_run_id)
        .where(
            InferenceBacktest.regime == regime,
            InferenceBacktest.trade_count >= min_trades,
            TrainingRun.status == "completed",
        )
        .order_by(InferenceBacktest.id)
    )
    return _frame(session, statement, columns, float_columns=BACKTEST_METRICS)


def _frame(
    session: Session, statement: Select[Any], columns: Sequence[str], float_columns: Iterable[str] = ()
) -> pd.DataFrame:
    """Run a select into a DataFrame with the given column names; float columns get NaN for NULL."""
    frame = pd.DataFrame([tuple(row) for row in session.execute(statement)], columns=list(columns))
    for name in float_columns:
        if name in frame.columns:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


# ------------------------------------------------------------------------------------ regime bests

BEST_COLUMNS: tuple[str, ...] = (
    "regime",
    "rank",
    "training_run_id",
    "model_config_hash",
    "partition_key",
    "symbol",
    "base_timeframe",
    "model_type",
    "encoder",
    "horizon",
    "inference_backtest_id",
    "inference_config_hash",
    "prediction_method",
    "ensemble_method",
    "confidence_threshold",
    "lookback_window",
    "score",
    "previous_best_score",
    "improvement",
    "trade_count",
    "n_trials",
    "deflated_sharpe",
    "updated_at",
    "kept",
    "model_path",
)
BEST_REQUIRED_FIELDS: tuple[str, ...] = (
    "rank",
    "training_run_id",
    "inference_backtest_id",
    "inference_config_hash",
    "score",
    "trade_count",
    "n_trials",
)
BEST_ROW_FIELDS: tuple[str, ...] = (
    "rank",
    "training_run_id",
    "inference_backtest_id",
    "inference_config_hash",
    "score",
    "previous_best_score",
    "improvement",
    "trade_count",
    "n_trials",
    "deflated_sharpe",
)


def current_bests(session: Session) -> pd.DataFrame:
    """Every regime's ranked best models with their configuration and inference settings."""
    run, best, test = TrainingRun, RegimeBestModel, InferenceBacktest
    statement = (
        select(
            best.regime, best.rank, best.training_run_id, run.model_config_hash, run.partition_key, run.symbol,
            run.base_timeframe, run.model_type, run.encoder, run.horizon, best.inference_backtest_id,
            best.inference_config_hash, test.prediction_method, test.ensemble_method, test.confidence_threshold,
            test.lookback_window, best.score, best.previous_best_score, best.improvement, best.trade_count,
            best.n_trials, best.deflated_sharpe, best.updated_at, run.kept, run.model_path,
        )
        .join(run, run.id == best.training_run_id)
        .join(test, test.id == best.inference_backtest_id)
        .order_by(best.regime, best.rank)
    )
    floats = ("confidence_threshold", "score", "previous_best_score", "improvement", "deflated_sharpe")
    return _frame(session, statement, BEST_COLUMNS, float_columns=floats)


def lock_regime(session: Session, regime: str) -> None:
    """Serialize updates of one regime's bests: row lock on PostgreSQL (SQLite's write lock suffices)."""
    found = session.scalar(
        select(RegimeDefinitionRow.id).where(RegimeDefinitionRow.name == regime).with_for_update()
    )
    if found is None:
        raise LookupError(f"regime {regime!r} is not defined in regime_definitions")


def _best_rows(regime: str, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validated rows of one regime's bests: known fields, ranks exactly 1..N, one row per run."""
    for i, row in enumerate(rows):
        missing = [f for f in BEST_REQUIRED_FIELDS if row.get(f) is None]
        unknown = sorted(set(row) - set(BEST_ROW_FIELDS))
        if missing or unknown:
            raise ValueError(f"regime {regime!r} best row {i}: missing {missing}, unknown {unknown}")
        if _is_nan(float(row["score"])):
            raise ValueError(f"regime {regime!r} best row {i}: score is NaN")
    ranks = sorted(int(row["rank"]) for row in rows)
    if ranks != list(range(1, len(rows) + 1)):
        raise ValueError(f"regime {regime!r}: ranks must be 1..{len(rows)} without gaps, got {ranks}")
    runs = [row["training_run_id"] for row in rows]
    if len(set(runs)) != len(runs):
        raise ValueError(f"regime {regime!r}: a training run appears more than once in {runs}")
    now = utcnow()
    return [{**{f: row.get(f) for f in BEST_ROW_FIELDS}, "regime": regime, "updated_at": now} for row in rows]


def replace_regime_bests(session: Session, regime: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Replace a regime's ranked bests with `rows` (fields BEST_ROW_FIELDS); call inside one transaction."""
    values = _best_rows(regime, rows)
    lock_regime(session, regime)
    session.execute(delete(RegimeBestModel).where(RegimeBestModel.regime == regime))
    if values:
        session.execute(insert(RegimeBestModel), values)
    return len(values)


# ------------------------------------------------------------------------------ regime definitions


def _validated_rules(name: str, description: str, rules: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Rules checked exactly as the YAML ones are (valid name, known features, min <= max)."""
    from forex_pipeline.settings import parse_settings

    raw = {"regimes": {"definitions": {name: {"description": description, "rules": dict(rules)}}}}
    definition = parse_settings(raw, source=f"regime {name!r}").regimes.definitions[name]
    return {feature: bound.model_dump(exclude_none=True) for feature, bound in definition.rules.items()}


def list_regime_definitions(session: Session, *, enabled_only: bool = False) -> list[RegimeDefinitionRecord]:
    """Regime definitions by name (optionally only the enabled ones)."""
    statement = select(RegimeDefinitionRow).order_by(RegimeDefinitionRow.name)
    if enabled_only:
        statement = statement.where(RegimeDefinitionRow.enabled.is_(True))
    return [_record(RegimeDefinitionRecord, row) for row in session.scalars(statement)]


def get_regime_definition(session: Session, name: str) -> RegimeDefinitionRecord | None:
    """One regime definition, or None."""
    row = session.scalars(select(RegimeDefinitionRow).where(RegimeDefinitionRow.name == name)).one_or_none()
    return None if row is None else _record(RegimeDefinitionRecord, row)


def _regime_row(session: Session, name: str) -> RegimeDefinitionRow:
    row = session.scalars(select(RegimeDefinitionRow).where(RegimeDefinitionRow.name == name)).one_or_none()
    if row is None:
        raise LookupError(f"regime {name!r} is not defined")
    return row


def add_regime_definition(
    session: Session, name: str, rules: Mapping[str, Any], *, description: str = "", enabled: bool = True
) -> RegimeDefinitionRecord:
    """Add a custom regime; a name already defined raises ValueError."""
    checked = _validated_rules(name, description, rules)
    if get_regime_definition(session, name) is not None:
        raise ValueError(f"regime {name!r} already exists")
    row = RegimeDefinitionRow(name=name, description=description, rules=checked, enabled=enabled, is_builtin=False)
    session.add(row)
    session.flush()
    return _record(RegimeDefinitionRecord, row)


def update_regime_definition(
    session: Session, name: str, *, rules: Mapping[str, Any] | None = None, description: str | None = None
) -> RegimeDefinitionRecord:
    """Change a regime's rules and/or description."""
    row = _regime_row(session, name)
    new_description = row.description if description is None else description
    row.rules = _validated_rules(name, new_description, row.rules if rules is None else rules)
    row.description = new_description
    session.flush()
    return _record(RegimeDefinitionRecord, row)


def set_regime_enabled(session: Session, name: str, enabled: bool) -> RegimeDefinitionRecord:
    """Enable or disable a regime (disabled regimes are not scored)."""
    row = _regime_row(session, name)
    row.enabled = enabled
    session.flush()
    return _record(RegimeDefinitionRecord, row)


def delete_regime_definition(session: Session, name: str) -> None:
    """Delete a custom regime and its bests; built-in regimes can only be disabled."""
    row = _regime_row(session, name)
    if row.is_builtin:
        raise ValueError(f"regime {name!r} is built in (from the settings); disable it instead")
    session.execute(delete(RegimeBestModel).where(RegimeBestModel.regime == name))
    session.delete(row)
    session.flush()


def seed_regime_definitions(session: Session, settings: Settings | None = None) -> list[str]:
    """Insert the settings' regimes that are missing (built-in, enabled); returns the names added.

    Idempotent and safe with parallel callers; rows already present (perhaps edited) are left as they are.
    """
    if settings is None:
        from forex_pipeline.settings import get_settings

        settings = get_settings()
    now = utcnow()
    added = []
    for name, definition in settings.regimes.definitions.items():
        rules = {feature: bound.model_dump(exclude_none=True) for feature, bound in definition.rules.items()}
        statement = (
            _dialect_insert(session, RegimeDefinitionRow)
            .values(
                name=name,
                description=definition.description,
                rules=rules,
                enabled=True,
                is_builtin=True,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["name"])
        )
        if session.execute(statement).rowcount:
            added.append(name)
    return added


# ------------------------------------------------------------------------------------------ queue

QUEUE_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("running", "paused", "cancelled", "failed"),
    "running": ("paused", "cancelled", "completed", "failed", "interrupted"),
    "paused": ("running", "cancelled"),
    "interrupted": ("running", "paused", "cancelled", "failed"),
    "failed": ("running", "cancelled"),
    "completed": (),
    "cancelled": (),
}
QUEUE_FINISHED = ("completed", "cancelled", "failed")


def create_queue(
    session: Session, name: str, grid_spec: Mapping[str, Any], grid_hash: str, total_models: int
) -> QueueRecord:
    """A new pending queue over a grid of `total_models` model configurations."""
    if not name.strip():
        raise ValueError("queue name is empty")
    if total_models < 0:
        raise ValueError(f"queue {name!r}: total_models {total_models} is negative")
    row = TrainingQueue(
        name=name,
        grid_spec=json_safe(dict(grid_spec)),
        grid_hash=grid_hash,
        total_models=total_models,
        dagster_run_ids=[],
    )
    session.add(row)
    session.flush()
    return _record(QueueRecord, row)


def get_queue(session: Session, queue_id: int) -> QueueRecord | None:
    """One queue as it is in the database now, or None."""
    row = session.get(TrainingQueue, queue_id, populate_existing=True)
    return None if row is None else _record(QueueRecord, row)


def list_queues(session: Session, *, status: str | None = None) -> list[QueueRecord]:
    """Queues, newest first, optionally of one status."""
    statement = select(TrainingQueue).order_by(TrainingQueue.id.desc()).execution_options(populate_existing=True)
    if status is not None:
        _check_status(status, QUEUE_STATUSES, "queue")
        statement = statement.where(TrainingQueue.status == status)
    return [_record(QueueRecord, row) for row in session.scalars(statement)]


def _queue_row(session: Session, queue_id: int, *, lock: bool = True) -> TrainingQueue:
    """The queue row, re-read (and row-locked on PostgreSQL) so decisions use the current state."""
    statement = select(TrainingQueue).where(TrainingQueue.id == queue_id).execution_options(populate_existing=True)
    row = session.scalars(statement.with_for_update() if lock else statement).one_or_none()
    if row is None:
        raise LookupError(f"no training queue with id {queue_id}")
    return row


def update_queue_counts(
    session: Session,
    queue_id: int,
    *,
    completed: int = 0,
    failed: int = 0,
    kept: int = 0,
    deleted: int = 0,
    consecutive_failures: int | None = None,
) -> QueueRecord:
    """Add to the queue's counters atomically (parallel runs do not lose updates).

    consecutive_failures None means: reset to 0 when a model completed, else add `failed`.
    """
    if min(completed, failed, kept, deleted) < 0:
        raise ValueError(f"queue {queue_id}: count increments must be >= 0")
    column = TrainingQueue.consecutive_failures
    streak: Any = consecutive_failures if consecutive_failures is not None else (0 if completed else column + failed)
    result = session.execute(
        update(TrainingQueue)
        .where(TrainingQueue.id == queue_id)
        .values(
            completed_models=TrainingQueue.completed_models + completed,
            failed_models=TrainingQueue.failed_models + failed,
            kept_models=TrainingQueue.kept_models + kept,
            deleted_models=TrainingQueue.deleted_models + deleted,
            consecutive_failures=streak,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:
        raise LookupError(f"no training queue with id {queue_id}")
    return _record(QueueRecord, _queue_row(session, queue_id, lock=False))


def recount_queue(session: Session, queue_id: int) -> QueueRecord:
    """Recompute completed/failed/kept/deleted counts from the queue's training runs (after a crash)."""
    row = _queue_row(session, queue_id)
    run = TrainingRun
    counts = session.execute(
        select(
            func.count().filter(run.status == "completed"),
            func.count().filter(run.status == "failed"),
            func.count().filter(run.kept.is_(True)),
            func.count().filter(run.file_deleted_at.is_not(None)),
        ).where(run.queue_id == queue_id)
    ).one()
    row.completed_models, row.failed_models, row.kept_models, row.deleted_models = (int(c) for c in counts)
    session.flush()
    return _record(QueueRecord, row)


def set_queue_status(session: Session, queue_id: int, status: str, *, error_message: str | None = None) -> QueueRecord:
    """Move a queue along QUEUE_TRANSITIONS (same status is a no-op); stamps started/finished times."""
    _check_status(status, QUEUE_STATUSES, "queue")
    row = _queue_row(session, queue_id)
    if status != row.status and status not in QUEUE_TRANSITIONS[row.status]:
        allowed = ", ".join(QUEUE_TRANSITIONS[row.status]) or "none (finished)"
        raise ValueError(f"queue {queue_id}: cannot go from {row.status!r} to {status!r}; allowed: {allowed}")
    now = utcnow()
    if status == "running" and row.status != "running":
        row.started_at = row.started_at or now
        row.heartbeat_at, row.finished_at, row.pause_requested, row.error_message = now, None, False, None
    if status == "paused":
        row.pause_requested = False
    if status in QUEUE_FINISHED:
        row.finished_at = now
    if error_message is not None:
        row.error_message = error_message
    row.status = status
    session.flush()
    return _record(QueueRecord, row)


def request_pause(session: Session, queue_id: int) -> QueueRecord:
    """Pause: a running queue finishes its current model then stops; a waiting one pauses at once."""
    row = _queue_row(session, queue_id)
    if row.status == "running":
        row.pause_requested = True
        session.flush()
        return _record(QueueRecord, row)
    return set_queue_status(session, queue_id, "paused")


def request_cancel(session: Session, queue_id: int) -> QueueRecord:
    """Cancel: a running queue stops now (finished work stays); a waiting one is cancelled at once."""
    row = _queue_row(session, queue_id)
    if row.status == "running":
        row.cancel_requested = True
        session.flush()
        return _record(QueueRecord, row)
    return set_queue_status(session, queue_id, "cancelled")


def heartbeat(session: Session, queue_id: int, *, checkpoint: Mapping[str, Any] | None = None) -> QueueRecord:
    """Stamp heartbeat_at (and store a checkpoint); the record tells the worker about pause/cancel requests."""
    row = _queue_row(session, queue_id)
    row.heartbeat_at = utcnow()
    if checkpoint is not None:
        row.checkpoint = json_safe(dict(checkpoint))
    session.flush()
    return _record(QueueRecord, row)


def add_queue_dagster_run(session: Session, queue_id: int, dagster_run_id: str) -> QueueRecord:
    """Remember a Dagster run launched for the queue (once)."""
    row = _queue_row(session, queue_id)
    if dagster_run_id not in row.dagster_run_ids:
        row.dagster_run_ids = [*row.dagster_run_ids, dagster_run_id]
        session.flush()
    return _record(QueueRecord, row)


def find_stale_queues(
    session: Session, stale_after_seconds: float, *, now: datetime | None = None
) -> list[QueueRecord]:
    """Running queues whose last heartbeat (or start) is older than `stale_after_seconds`: crashed workers."""
    cutoff = (_aware(now, "now") if now is not None else utcnow()) - timedelta(seconds=stale_after_seconds)
    last_seen = func.coalesce(TrainingQueue.heartbeat_at, TrainingQueue.started_at, TrainingQueue.created_at)
    statement = (
        select(TrainingQueue)
        .where(TrainingQueue.status == "running", last_seen < cutoff)
        .order_by(TrainingQueue.id)
        .execution_options(populate_existing=True)
    )
    return [_record(QueueRecord, row) for row in session.scalars(statement)]


# ---------------------------------------------------------------------------------------- history

HISTORY_COLUMNS: tuple[str, ...] = (
    "id",
    "model_config_hash",
    "partition_key",
    "symbol",
    "base_timeframe",
    "model_type",
    "encoder",
    "horizon",
    "status",
    "training_seconds",
    "backtest_seconds",
    "kept",
    "file_deleted_at",
    "queue_id",
    "error_message",
    "created_at",
    "completed_at",
    "best_sharpe",
    "best_max_drawdown",
)
HISTORY_SORTS: tuple[str, ...] = (
    "created_at",
    "completed_at",
    "training_seconds",
    "best_sharpe",
    "symbol",
    "model_type",
    "status",
)


def _best_backtests(filters: HistoryFilter) -> Any:
    """Per run over the `all` regime: best Sharpe and the smallest drawdown among rows passing the metric filters."""
    test = InferenceBacktest
    drawdown = func.abs(test.max_drawdown)
    statement = select(
        test.training_run_id.label("training_run_id"),
        func.max(test.sharpe).label("best_sharpe"),
        func.min(drawdown).label("best_max_drawdown"),
    ).where(test.regime == "all")
    if filters.min_sharpe is not None:
        statement = statement.where(test.sharpe >= filters.min_sharpe)
    if filters.max_drawdown is not None:
        statement = statement.where(drawdown <= abs(filters.max_drawdown))
    return statement.group_by(test.training_run_id).subquery("best")


def _history_where(statement: Select[Any], filters: HistoryFilter) -> Select[Any]:
    """Apply the run-level filters of `filters`."""
    run = TrainingRun
    if filters.status is not None:
        _check_status(filters.status, RUN_STATUSES, "training run")
        statement = statement.where(run.status == filters.status)
    if filters.model_type is not None:
        statement = statement.where(run.model_type == filters.model_type)
    if filters.symbol is not None:
        from forex_pipeline.settings import normalize_symbol

        statement = statement.where(run.symbol == normalize_symbol(filters.symbol))
    if filters.since is not None:
        statement = statement.where(run.created_at >= _aware(filters.since, "since"))
    if filters.until is not None:
        statement = statement.where(run.created_at < _aware(filters.until, "until"))
    return statement


def _history_order(sort: str, best: Any) -> list[Any]:
    """ORDER BY for a sort key like `-best_sharpe` (descending) or `symbol`; ties broken by id."""
    name = sort.lstrip("-")
    if name not in HISTORY_SORTS:
        raise ValueError(
            f"history sort {sort!r} is unknown; use one of {list(HISTORY_SORTS)} (prefix '-' for descending)"
        )
    column = best.c.best_sharpe if name == "best_sharpe" else getattr(TrainingRun, name)
    ordered = column.desc() if sort.startswith("-") else column.asc()
    tie = TrainingRun.id.desc() if sort.startswith("-") else TrainingRun.id.asc()
    return [ordered.nulls_last(), tie]


def query_history(session: Session, filters: HistoryFilter = HistoryFilter()) -> HistoryPage:
    """One page of training runs matching `filters`, with each run's best `all`-regime Sharpe and drawdown."""
    if filters.page < 1 or filters.page_size < 1:
        raise ValueError(f"history page {filters.page} / page_size {filters.page_size} must both be >= 1")
    best = _best_backtests(filters)
    metric_filter = filters.min_sharpe is not None or filters.max_drawdown is not None
    run_columns = [getattr(TrainingRun, c) for c in HISTORY_COLUMNS[:-2]]
    base = select(*run_columns, best.c.best_sharpe, best.c.best_max_drawdown).join(
        best, best.c.training_run_id == TrainingRun.id, isouter=not metric_filter
    )
    base = _history_where(base, filters)
    total = int(session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    offset = (filters.page - 1) * filters.page_size
    statement = base.order_by(*_history_order(filters.sort, best)).limit(filters.page_size).offset(offset)
    floats = ("training_seconds", "backtest_seconds", "best_sharpe", "best_max_drawdown")
    rows = _frame(session, statement, HISTORY_COLUMNS, float_columns=floats)
    return HistoryPage(rows=rows, total=total, page=filters.page, page_size=filters.page_size)
