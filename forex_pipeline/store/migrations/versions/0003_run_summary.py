"""Run summaries and running trial moments, so no read on the history / plan / dashboard / keep-or-delete
paths scans inference_backtests (issue 14); drop the (regime, sharpe) and (segment, regime) indexes no
query needs any more.

`training_run_summaries` (one row per run and regime, `all` included) holds what history, the plan
estimate and the dashboards read; `regime_trial_moments` (one row per regime and segment) the N and
sums of the deflated Sharpe. Both are backfilled from the existing backtest rows with the same
definitions the write path uses (store/inference_backtests.py), so upgrading keeps every figure.
Downgrade drops both tables and restores the index; no existing row is touched either way.

Revision ID: 0003_run_summary
Revises: 0002_trust
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_run_summary"
down_revision: str | None = "0002_trust"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARPE_INDEX = ("ix_inference_backtests_regime_sharpe", "inference_backtests", ["regime", "sharpe"])
# Served the trial-moment aggregate, now a table of running totals; with it SQLite scanned every row of a
# segment for the CSCV blocks of one (feature set, horizon) instead of that group's runs.
SEGMENT_INDEX = ("ix_inference_backtests_segment_regime", "inference_backtests", ["segment", "regime"])
SUMMARY_INDEX = ("ix_training_run_summaries_regime_best_sharpe", "training_run_summaries", ["regime", "best_sharpe"])

# Ranked rows (store/inference_backtests.not_confirming): every segment but the holdouts.
BACKFILL_SUMMARIES = """
INSERT INTO training_run_summaries (training_run_id, regime, configurations, best_sharpe, best_max_drawdown,
    best_config_hash, best_config_max_drawdown, best_config_total_return, best_config_trade_count)
SELECT agg.training_run_id, agg.regime, agg.configurations, agg.best_sharpe, agg.best_max_drawdown,
    top.inference_config_hash, top.max_drawdown, top.total_return, top.trade_count
FROM (
    SELECT training_run_id, regime, COUNT(*) AS configurations, MAX(sharpe) AS best_sharpe,
        MIN(ABS(max_drawdown)) AS best_max_drawdown
    FROM inference_backtests WHERE segment NOT LIKE 'holdout%'
    GROUP BY training_run_id, regime
) AS agg
LEFT JOIN (
    SELECT training_run_id, regime, inference_config_hash, max_drawdown, total_return, trade_count,
        ROW_NUMBER() OVER (PARTITION BY training_run_id, regime ORDER BY sharpe DESC, id) AS position
    FROM inference_backtests WHERE segment NOT LIKE 'holdout%' AND sharpe IS NOT NULL
) AS top ON top.training_run_id = agg.training_run_id AND top.regime = agg.regime AND top.position = 1
"""
BACKFILL_MOMENTS = """
INSERT INTO regime_trial_moments (regime, segment, trials, finite_trials, sum_sharpe_per_bar, sum_sq_sharpe_per_bar)
SELECT regime, segment, COUNT(*), COUNT(sharpe_per_bar), COALESCE(SUM(sharpe_per_bar), 0),
    COALESCE(SUM(sharpe_per_bar * sharpe_per_bar), 0)
FROM inference_backtests WHERE regime <> 'all'
GROUP BY regime, segment
"""


def upgrade() -> None:
    op.create_table(
        "training_run_summaries",
        sa.Column("training_run_id", sa.Integer(), nullable=False),
        sa.Column("regime", sa.String(64), nullable=False),
        sa.Column("configurations", sa.Integer(), nullable=False),
        sa.Column("best_sharpe", sa.Float(), nullable=True),
        sa.Column("best_max_drawdown", sa.Float(), nullable=True),
        sa.Column("best_config_hash", sa.String(64), nullable=True),
        sa.Column("best_config_max_drawdown", sa.Float(), nullable=True),
        sa.Column("best_config_total_return", sa.Float(), nullable=True),
        sa.Column("best_config_trade_count", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("training_run_id", "regime", name="pk_training_run_summaries"),
        sa.ForeignKeyConstraint(
            ["training_run_id"], ["training_runs.id"],
            name="fk_training_run_summaries_training_run_id_training_runs", ondelete="CASCADE",
        ),
    )
    op.create_table(
        "regime_trial_moments",
        sa.Column("regime", sa.String(64), nullable=False),
        sa.Column("segment", sa.String(32), nullable=False),
        sa.Column("trials", sa.BigInteger(), nullable=False),
        sa.Column("finite_trials", sa.BigInteger(), nullable=False),
        sa.Column("sum_sharpe_per_bar", sa.Float(), nullable=False),
        sa.Column("sum_sq_sharpe_per_bar", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("regime", "segment", name="pk_regime_trial_moments"),
    )
    op.execute(BACKFILL_SUMMARIES)
    op.execute(BACKFILL_MOMENTS)
    op.create_index(*SUMMARY_INDEX)
    for name, table, _ in (SHARPE_INDEX, SEGMENT_INDEX):
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    op.create_index(*SEGMENT_INDEX)
    op.create_index(*SHARPE_INDEX)
    op.drop_index(SUMMARY_INDEX[0], table_name=SUMMARY_INDEX[1])
    op.drop_table("regime_trial_moments")
    op.drop_table("training_run_summaries")
