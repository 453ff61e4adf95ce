"""The specification's column names on the five tables (docs/spec_mapping.md), and model paths
relative to the artefact store.

New values are real columns (uuids, created_by, feature_count, best_regimes, skipped_count, paused_at,
priority, max_parallel, achieved_at, secondary_metrics, the per-configuration JSON of
inference_backtests); values the project already stores under its own name are generated columns
over them (VIRTUAL on SQLite, STORED on PostgreSQL), so no value is kept twice by hand.

Existing rows are filled in place: uuids for every run and queue and every `all` backtest row,
best_regimes and achieved_at from the standing bests, secondary_metrics from each best's figures,
the per-configuration JSON from each configuration's rows, and absolute model paths under the
artefact store rewritten relative to it (paths elsewhere stay absolute and still load). Downgrade
drops the new columns and writes the relative paths back as absolute ones.

Revision ID: 0004_spec_names
Revises: 0003_run_summary
Create Date: 2026-12-06
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_spec_names"
down_revision: str | None = "0003_run_summary"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REGIME_ALL = "all"
METRICS = ("sharpe", "sortino", "max_drawdown", "total_return", "win_rate", "profit_factor", "trade_count", "exposure", "n_bars")
SECONDARY = (
    "trade_count", "n_trials", "deflated_sharpe", "previous_best_score", "improvement", "selection_score", "holdout_score",
    "holdout_trades", "null_p_value", "pbo", "baseline", "baseline_score", "improvement_over_baseline", "significant",
)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _json() -> sa.types.TypeEngine:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def _alias(source: str, key: str | None = None, cast: str | None = None) -> sa.Computed:
    """A generated column over a column of the same row (or a member of its JSON document): VIRTUAL on
    SQLite (the only kind ALTER TABLE can add), STORED on PostgreSQL (the only kind before version 18)."""
    if key is None:
        return sa.Computed(sa.text(source), persisted=None if _sqlite() else True)
    if _sqlite():
        return sa.Computed(sa.text(f"json_extract({source}, '$.{key}')"))
    return sa.Computed(sa.text(f"(({source} ->> '{key}')::{cast})" if cast else f"({source} -> '{key}')"), persisted=True)


def _generated(table: str) -> list[tuple[str, sa.types.TypeEngine, sa.Computed]]:
    """(name, type, expression) of the generated columns of `table`."""
    return {
        "training_runs": [
            ("config_hash", sa.String(64), _alias("model_config_hash")),
            ("days_history", sa.Integer(), _alias("feature_set", "days_history", "integer")),
            ("indicator_tfs", _json(), _alias("feature_set", "indicator_timeframes")),
            ("additional_features", _json(), _alias("feature_set", "additional_features")),
            ("preprocessing_params", _json(), _alias("feature_set", "preprocessing")),
            ("model_hyperparams", _json(), _alias("model_spec", "hyperparameters")),
            ("training_metrics", _json(), _alias("metrics")),
            ("training_duration_seconds", sa.Float(), _alias("training_seconds")),
            ("model_file_path", sa.Text(), _alias("model_path")),
            ("model_file_size_bytes", sa.BigInteger(), _alias("model_bytes")),
            ("is_model_kept", sa.Boolean(), _alias("kept")),
        ],
        "inference_backtests": [("completed_at", sa.DateTime(timezone=True), _alias("created_at"))],
        "regime_definitions": [
            ("regime_name", sa.String(64), _alias("name")),
            ("detection_rules", _json(), _alias("rules")),
            ("is_active", sa.Boolean(), _alias("enabled")),
        ],
        "regime_best_models": [
            ("regime_name", sa.String(64), _alias("regime")),
            ("performance_score", sa.Float(), _alias("score")),
        ],
        "training_queue": [
            ("config_grid", _json(), _alias("grid_spec")),
            ("current_index", sa.Integer(), _alias("(completed_models + failed_models)")),
            ("total_configs", sa.Integer(), _alias("total_models")),
            ("completed_count", sa.Integer(), _alias("(completed_models - skipped_count)")),
            ("failed_count", sa.Integer(), _alias("failed_models")),
            ("completed_at", sa.DateTime(timezone=True), _alias("finished_at")),
        ],
    }[table]


def _real(table: str) -> list[sa.Column]:
    """The new real columns of `table` (fresh Column objects each call: a Column belongs to one table)."""
    return {
        "training_runs": [
            sa.Column("run_uuid", sa.String(36), nullable=True),
            sa.Column("created_by", sa.String(100), nullable=True),
            sa.Column("feature_count", sa.Integer(), nullable=True),
            sa.Column("best_regimes", _json(), nullable=True),
        ],
        "inference_backtests": [
            sa.Column("backtest_uuid", sa.String(36), nullable=True),
            sa.Column("inference_params", _json(), nullable=True),
            sa.Column("backtest_metrics", _json(), nullable=True),
            sa.Column("regime_metrics", _json(), nullable=True),
            sa.Column("backtest_duration_seconds", sa.Float(), nullable=True),
        ],
        "regime_best_models": [_ts("achieved_at"), sa.Column("secondary_metrics", _json(), nullable=True)],
        "training_queue": [
            sa.Column("queue_uuid", sa.String(36), nullable=True),
            sa.Column("skipped_count", sa.Integer(), nullable=False, server_default="0"),
            _ts("paused_at"),
            sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
            sa.Column("max_parallel", sa.Integer(), nullable=False, server_default="1"),
        ],
    }.get(table, [])


TABLES = ("training_queue", "training_runs", "inference_backtests", "regime_definitions", "regime_best_models")
# (index name, table, columns, unique): a unique index, not a constraint, so SQLite needs no table rebuild
INDEXES = (
    ("ix_training_runs_run_uuid", "training_runs", ["run_uuid"], True),
    ("ix_inference_backtests_backtest_uuid", "inference_backtests", ["backtest_uuid"], True),
    ("ix_training_queue_queue_uuid", "training_queue", ["queue_uuid"], True),
    ("ix_training_runs_config_hash", "training_runs", ["config_hash"], False),   # the spec's lookup by hash
)


def _fill_uuids(connection: sa.engine.Connection, table: str, column: str, where: str = "") -> None:
    ids = [row[0] for row in connection.execute(sa.text(f"SELECT id FROM {table} {where}"))]
    if ids:
        connection.execute(
            sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
            [{"id": i, "value": str(uuid.uuid4())} for i in ids],
        )


def _cast(parameter: str) -> str:
    """A JSON text parameter as the column's type (jsonb on PostgreSQL)."""
    return f":{parameter}" if _sqlite() else f"CAST(:{parameter} AS jsonb)"


def _metrics(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in METRICS}


def _fill_backtest_documents(connection: sa.engine.Connection) -> None:
    """inference_params, backtest_metrics and regime_metrics of each configuration's `all` rows."""
    columns = ", ".join(("id", "training_run_id", "inference_config_hash", "segment", "regime", "prediction_method",
                         "ensemble_method", "confidence_threshold", "lookback_window", *METRICS))
    groups: dict[tuple[int, str, str], dict[str, Any]] = {}
    for row in connection.execute(sa.text(f"SELECT {columns} FROM inference_backtests ORDER BY id")):
        group = groups.setdefault((row.training_run_id, row.inference_config_hash, row.segment), {"regimes": {}})
        if row.regime == REGIME_ALL:
            group["id"] = row.id
            group["params"] = {
                "prediction_method": row.prediction_method, "ensemble_method": row.ensemble_method,
                "confidence_threshold": row.confidence_threshold, "lookback_window": row.lookback_window,
            }
            group["metrics"] = _metrics(row)
        else:
            group["regimes"][row.regime] = _metrics(row)
    updates = [
        {"id": g["id"], "params": json.dumps(g["params"]), "metrics": json.dumps(g["metrics"]), "regimes": json.dumps(g["regimes"])}
        for g in groups.values() if "id" in g
    ]
    if updates:
        connection.execute(
            sa.text(f"UPDATE inference_backtests SET inference_params = {_cast('params')}, backtest_metrics = {_cast('metrics')}, "
                    f"regime_metrics = {_cast('regimes')} WHERE id = :id"),
            updates,
        )


def _fill_bests(connection: sa.engine.Connection) -> None:
    """achieved_at (the best's last update: the earliest time known), secondary_metrics, and each
    run's best_regimes (regimes whose top N holds it; [] for the other completed runs)."""
    rows = list(connection.execute(sa.text(f"SELECT id, regime, training_run_id, updated_at, {', '.join(SECONDARY)} FROM regime_best_models")))
    if rows:
        connection.execute(
            sa.text(f"UPDATE regime_best_models SET achieved_at = updated_at, secondary_metrics = {_cast('doc')} WHERE id = :id"),
            [{"id": r.id, "doc": json.dumps({name: getattr(r, name) for name in SECONDARY})} for r in rows],
        )
    regimes: dict[int, list[str]] = {}
    for r in rows:
        regimes.setdefault(r.training_run_id, []).append(r.regime)
    connection.execute(sa.text(f"UPDATE training_runs SET best_regimes = {_cast('empty')} WHERE status = 'completed'"), {"empty": "[]"})
    if regimes:
        connection.execute(
            sa.text(f"UPDATE training_runs SET best_regimes = {_cast('doc')} WHERE id = :id"),
            [{"id": run_id, "doc": json.dumps(sorted(names))} for run_id, names in regimes.items()],
        )


def _artifacts_dir() -> Path:
    from forex_pipeline.settings import get_settings

    return get_settings().artifacts_dir


def _rewrite_model_paths(connection: sa.engine.Connection, to_relative: bool) -> None:
    """Model paths under the artefact store become relative to it (upgrade) or absolute again (downgrade)."""
    root = _artifacts_dir()
    updates = []
    for run_id, path in connection.execute(sa.text("SELECT id, model_path FROM training_runs WHERE model_path IS NOT NULL")):
        stored = Path(path)
        if to_relative and stored.is_absolute() and stored.is_relative_to(root):
            updates.append({"id": run_id, "path": stored.relative_to(root).as_posix()})
        elif not to_relative and not stored.is_absolute():
            updates.append({"id": run_id, "path": str(root / stored)})
    if updates:
        connection.execute(sa.text("UPDATE training_runs SET model_path = :path WHERE id = :id"), updates)


def upgrade() -> None:
    connection = op.get_bind()
    for table in TABLES:
        for column in _real(table):
            op.add_column(table, column)
        for name, type_, expression in _generated(table):
            op.add_column(table, sa.Column(name, type_, expression, nullable=True))
    _fill_uuids(connection, "training_runs", "run_uuid")
    _fill_uuids(connection, "training_queue", "queue_uuid")
    _fill_uuids(connection, "inference_backtests", "backtest_uuid", f"WHERE regime = '{REGIME_ALL}'")
    _fill_backtest_documents(connection)
    _fill_bests(connection)
    connection.execute(sa.text("UPDATE training_queue SET paused_at = updated_at WHERE status = 'paused'"))
    _rewrite_model_paths(connection, to_relative=True)
    for name, table, columns, unique in INDEXES:
        op.create_index(name, table, columns, unique=unique)


def downgrade() -> None:
    connection = op.get_bind()
    _rewrite_model_paths(connection, to_relative=False)
    for name, table, _columns, _unique in INDEXES:
        op.drop_index(name, table_name=table)
    for table in reversed(TABLES):
        for name, _type, _expression in reversed(_generated(table)):
            op.drop_column(table, name)
        for column in reversed(_real(table)):
            op.drop_column(table, column.name)
