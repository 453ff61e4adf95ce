"""History indexes (PostgreSQL): narrow covering copies of what the history pages filter and sort on.

A history page first picks its 50 run ids by the filters and the sort (store/history.py), then reads
those runs whole. On PostgreSQL a training_runs row is about 3 KB (the specification's JSON documents
and their generated columns), so picking the ids from the table itself reads all of it, 150 MB at
49,000 runs: 60 to 180 ms a page (issue 14). These two indexes hold the columns that choice reads,
about 5 and 13 MB at 49,000 runs, and serve it by index-only scans. SQLite's pages already meet the
target without them (its rows are read without a detour through generated columns), so it gets none.

Revision ID: 0006_history_indexes
Revises: 0005_claim_leases
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_history_indexes"
down_revision: str | None = "0005_claim_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As store/tables.py declares them at this revision (a migration keeps its own copy).
HISTORY_RUN_COLUMNS = (
    "status", "model_type", "symbol", "encoder", "base_timeframe", "horizon", "kept", "queue_id",
    "created_at", "completed_at", "training_seconds", "backtest_seconds",
)
HISTORY_SUMMARY_COLUMNS = ("best_sharpe", "best_max_drawdown")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index("ix_training_runs_history", "training_runs", ["id"], postgresql_include=list(HISTORY_RUN_COLUMNS))
    op.create_index(
        "ix_training_run_summaries_history", "training_run_summaries", ["regime", "training_run_id"],
        postgresql_include=list(HISTORY_SUMMARY_COLUMNS),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_training_run_summaries_history", table_name="training_run_summaries")
    op.drop_index("ix_training_runs_history", table_name="training_runs")
