"""Initial schema: the five project tables, and the built-in regimes from the YAML settings.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_STATUSES = ("pending", "running", "completed", "failed")
QUEUE_STATUSES = ("pending", "running", "paused", "cancelled", "completed", "failed", "interrupted")


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _create_training_queue() -> None:
    op.create_table(
        "training_queue",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("grid_spec", _json(), nullable=False),
        sa.Column("grid_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total_models", sa.Integer(), nullable=False),
        sa.Column("completed_models", sa.Integer(), nullable=False),
        sa.Column("failed_models", sa.Integer(), nullable=False),
        sa.Column("kept_models", sa.Integer(), nullable=False),
        sa.Column("deleted_models", sa.Integer(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("checkpoint", _json(), nullable=True),
        sa.Column("dagster_run_ids", _json(), nullable=False),
        sa.Column("pause_requested", sa.Boolean(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        _ts("started_at"),
        _ts("heartbeat_at"),
        _ts("updated_at", nullable=False),
        _ts("finished_at"),
        sa.PrimaryKeyConstraint("id", name="pk_training_queue"),
        sa.CheckConstraint(_in("status", QUEUE_STATUSES), name="ck_training_queue_status"),
        sa.CheckConstraint(
            "total_models >= 0 AND completed_models >= 0 AND failed_models >= 0 "
            "AND kept_models >= 0 AND deleted_models >= 0 AND consecutive_failures >= 0",
            name="ck_training_queue_counts_non_negative",
        ),
    )
    op.create_index("ix_training_queue_status", "training_queue", ["status"])
    op.create_index("ix_training_queue_grid_hash", "training_queue", ["grid_hash"])


def _create_training_runs() -> None:
    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_config_hash", sa.String(64), nullable=False),
        sa.Column("partition_key", sa.String(255), nullable=False),
        sa.Column("feature_set_hash", sa.String(64), nullable=False),
        sa.Column("model_spec_hash", sa.String(64), nullable=False),
        sa.Column("feature_set", _json(), nullable=False),
        sa.Column("model_spec", _json(), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("base_timeframe", sa.String(8), nullable=False),
        sa.Column("model_type", sa.String(32), nullable=False),
        sa.Column("encoder", sa.String(32), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("training_seconds", sa.Float(), nullable=True),
        sa.Column("backtest_seconds", sa.Float(), nullable=True),
        sa.Column("metrics", _json(), nullable=True),
        sa.Column("model_path", sa.Text(), nullable=True),
        sa.Column("model_sha256", sa.String(64), nullable=True),
        sa.Column("model_bytes", sa.BigInteger(), nullable=True),
        sa.Column("kept", sa.Boolean(), nullable=False),
        _ts("file_deleted_at"),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("dagster_run_id", sa.String(64), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        _ts("created_at", nullable=False),
        _ts("started_at"),
        _ts("completed_at"),
        sa.PrimaryKeyConstraint("id", name="pk_training_runs"),
        sa.UniqueConstraint("model_config_hash", name="uq_training_runs_model_config_hash"),
        sa.CheckConstraint(_in("status", RUN_STATUSES), name="ck_training_runs_status"),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["training_queue.id"], name="fk_training_runs_queue_id_training_queue", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_training_runs_symbol_model_type", "training_runs", ["symbol", "model_type"])
    op.create_index("ix_training_runs_status", "training_runs", ["status"])
    op.create_index("ix_training_runs_queue_id", "training_runs", ["queue_id"])
    op.create_index("ix_training_runs_feature_set_hash", "training_runs", ["feature_set_hash"])


def _create_inference_backtests() -> None:
    metrics = ("sharpe", "sortino", "max_drawdown", "total_return", "win_rate", "profit_factor")
    op.create_table(
        "inference_backtests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("training_run_id", sa.Integer(), nullable=False),
        sa.Column("inference_config_hash", sa.String(64), nullable=False),
        sa.Column("prediction_method", sa.String(32), nullable=False),
        sa.Column("ensemble_method", sa.String(32), nullable=False),
        sa.Column("confidence_threshold", sa.Float(), nullable=False),
        sa.Column("lookback_window", sa.Integer(), nullable=False),
        sa.Column("regime", sa.String(64), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=True) for name in metrics),
        sa.Column("trade_count", sa.Integer(), nullable=False),
        sa.Column("exposure", sa.Float(), nullable=True),
        sa.Column("n_bars", sa.Integer(), nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inference_backtests"),
        sa.UniqueConstraint(
            "training_run_id", "inference_config_hash", "regime", name="uq_inference_backtests_run_config_regime"
        ),
        sa.ForeignKeyConstraint(
            ["training_run_id"],
            ["training_runs.id"],
            name="fk_inference_backtests_training_run_id_training_runs",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_inference_backtests_regime_sharpe", "inference_backtests", ["regime", "sharpe"])


def _create_regime_definitions() -> None:
    op.create_table(
        "regime_definitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("rules", _json(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("is_builtin", sa.Boolean(), nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_regime_definitions"),
        sa.UniqueConstraint("name", name="uq_regime_definitions_name"),
    )


def _create_regime_best_models() -> None:
    op.create_table(
        "regime_best_models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("regime", sa.String(64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("training_run_id", sa.Integer(), nullable=False),
        sa.Column("inference_backtest_id", sa.Integer(), nullable=False),
        sa.Column("inference_config_hash", sa.String(64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("previous_best_score", sa.Float(), nullable=True),
        sa.Column("improvement", sa.Float(), nullable=True),
        sa.Column("trade_count", sa.Integer(), nullable=False),
        sa.Column("n_trials", sa.Integer(), nullable=False),
        sa.Column("deflated_sharpe", sa.Float(), nullable=True),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_regime_best_models"),
        sa.UniqueConstraint("regime", "rank", name="uq_regime_best_models_regime_rank"),
        sa.UniqueConstraint("regime", "training_run_id", name="uq_regime_best_models_regime_training_run_id"),
        sa.CheckConstraint("rank >= 1", name="ck_regime_best_models_rank_positive"),
        sa.ForeignKeyConstraint(
            ["regime"],
            ["regime_definitions.name"],
            name="fk_regime_best_models_regime_regime_definitions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["training_run_id"],
            ["training_runs.id"],
            name="fk_regime_best_models_training_run_id_training_runs",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inference_backtest_id"],
            ["inference_backtests.id"],
            name="fk_regime_best_models_inference_backtest_id_inference_backtests",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_regime_best_models_training_run_id", "regime_best_models", ["training_run_id"])


def _seed_regimes() -> None:
    """Insert the regimes of the YAML settings as built-ins (enabled)."""
    from forex_pipeline.settings import get_settings

    sqlite = op.get_bind().dialect.name == "sqlite"
    now = datetime.now(timezone.utc)
    stamp = now.replace(tzinfo=None) if sqlite else now
    table = sa.table(
        "regime_definitions",
        sa.column("name", sa.String()),
        sa.column("description", sa.Text()),
        sa.column("rules", _json()),
        sa.column("enabled", sa.Boolean()),
        sa.column("is_builtin", sa.Boolean()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    rows = [
        {
            "name": name,
            "description": definition.description,
            "rules": {feature: bound.model_dump(exclude_none=True) for feature, bound in definition.rules.items()},
            "enabled": True,
            "is_builtin": True,
            "created_at": stamp,
            "updated_at": stamp,
        }
        for name, definition in get_settings().regimes.definitions.items()
    ]
    if rows:
        op.bulk_insert(table, rows)


def upgrade() -> None:
    """Create the five tables (parents first) and seed the built-in regimes."""
    _create_training_queue()
    _create_training_runs()
    _create_inference_backtests()
    _create_regime_definitions()
    _create_regime_best_models()
    _seed_regimes()


def downgrade() -> None:
    """Drop the five tables, children first."""
    op.drop_index("ix_regime_best_models_training_run_id", table_name="regime_best_models")
    op.drop_table("regime_best_models")
    op.drop_table("regime_definitions")
    op.drop_index("ix_inference_backtests_regime_sharpe", table_name="inference_backtests")
    op.drop_table("inference_backtests")
    for index in ("feature_set_hash", "queue_id", "status", "symbol_model_type"):
        op.drop_index(f"ix_training_runs_{index}", table_name="training_runs")
    op.drop_table("training_runs")
    op.drop_index("ix_training_queue_grid_hash", table_name="training_queue")
    op.drop_index("ix_training_queue_status", table_name="training_queue")
    op.drop_table("training_queue")
