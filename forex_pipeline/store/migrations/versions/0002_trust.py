"""Trust figures: backtest segments (selection / holdout / walk-forward folds), the per-row moments and
CSCV blocks of inference_backtests, and the trust fields of regime_best_models (docs/regimes.md).

Existing backtest rows were the specification's single backtest over the whole test segment: they get
segment = 'test' and NULL trust columns; existing bests keep their figures with NULL trust fields (the
next keep-or-delete transaction of their regime fills what it can). Downgrade drops the new columns
and the rows of every segment but 'test', the only ones the old schema can hold under its unique key.

Revision ID: 0002_trust
Revises: 0001_initial
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_trust"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_SEGMENT = "test"
OLD_UNIQUE = ("uq_inference_backtests_run_config_regime", ["training_run_id", "inference_config_hash", "regime"])
NEW_UNIQUE = (
    "uq_inference_backtests_run_config_regime_segment",
    ["training_run_id", "inference_config_hash", "regime", "segment"],
)
SEGMENT_INDEX = ("ix_inference_backtests_segment_regime", ["segment", "regime"])
MOMENTS = ("sharpe_per_bar", "skewness", "kurtosis", "sum_ret", "sum_sq", "sum_cube", "sum_quad")
BLOCKS = ("block_sum_ret", "block_sum_sq", "block_n_bars")
BEST_FLOATS = ("selection_score", "holdout_score", "null_p_value", "pbo", "baseline_score", "improvement_over_baseline")


def _json_list() -> sa.types.TypeEngine:
    return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _keep_bests() -> None:
    """SQLite rebuilds inference_backtests to change its unique key; dropping the old table would
    cascade to regime_best_models (foreign keys are on), so the bests are copied aside first."""
    if _sqlite():
        op.execute("CREATE TEMPORARY TABLE _kept_regime_bests AS SELECT * FROM regime_best_models")


def _restore_bests() -> None:
    if _sqlite():
        op.execute(
            "INSERT INTO regime_best_models SELECT * FROM _kept_regime_bests "
            "WHERE id NOT IN (SELECT id FROM regime_best_models) "
            "AND inference_backtest_id IN (SELECT id FROM inference_backtests)"
        )
        op.execute("DROP TABLE _kept_regime_bests")


def upgrade() -> None:
    # batch mode: SQLite rebuilds the table (its only way to change a unique constraint), PostgreSQL alters in place
    _keep_bests()
    with op.batch_alter_table("inference_backtests") as batch:
        batch.add_column(sa.Column("segment", sa.String(32), nullable=False, server_default=LEGACY_SEGMENT))
        for name in MOMENTS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
        for name in BLOCKS:
            batch.add_column(sa.Column(name, _json_list(), nullable=True))
    with op.batch_alter_table("inference_backtests") as batch:
        batch.alter_column("segment", server_default=None, existing_type=sa.String(32), existing_nullable=False)
        batch.drop_constraint(OLD_UNIQUE[0], type_="unique")
        batch.create_unique_constraint(*NEW_UNIQUE)
        batch.create_index(*SEGMENT_INDEX)
    _restore_bests()
    with op.batch_alter_table("regime_best_models") as batch:
        for name in ("selection_score", "holdout_score"):
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
        batch.add_column(sa.Column("holdout_trades", sa.Integer(), nullable=True))
        for name in ("null_p_value", "pbo"):
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
        batch.add_column(sa.Column("baseline", sa.String(32), nullable=True))
        for name in ("baseline_score", "improvement_over_baseline"):
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))
        batch.add_column(sa.Column("significant", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("regime_best_models") as batch:
        for name in ("significant", "improvement_over_baseline", "baseline_score", "baseline", "pbo", "null_p_value",
                     "holdout_trades", "holdout_score", "selection_score"):
            batch.drop_column(name)
    # The old unique key has no segment: keep the whole-test rows only (bests on other rows cascade away).
    op.execute(sa.text("DELETE FROM regime_best_models WHERE inference_backtest_id IN "
                       "(SELECT id FROM inference_backtests WHERE segment <> :legacy)").bindparams(legacy=LEGACY_SEGMENT))
    op.execute(sa.text("DELETE FROM inference_backtests WHERE segment <> :legacy").bindparams(legacy=LEGACY_SEGMENT))
    _keep_bests()
    with op.batch_alter_table("inference_backtests") as batch:
        batch.drop_index(SEGMENT_INDEX[0])
        batch.drop_constraint(NEW_UNIQUE[0], type_="unique")
        batch.create_unique_constraint(*OLD_UNIQUE)
        for name in (*BLOCKS, *MOMENTS, "segment"):
            batch.drop_column(name)
    _restore_bests()
