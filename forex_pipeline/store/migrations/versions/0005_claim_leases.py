"""Claim leases: the worker that claimed a training run (host, pid, Celery task id) and its heartbeat.

A worker renews `heartbeat_at` of its claims while it trains; a `running` claim whose lease has
expired, or whose process is gone from this host, is released by the daemon's queue sensor and
trained elsewhere (docs/deployment.md). The worker columns stay after the run finished, so the history
says which host trained each model. Existing rows get NULL (their lease falls back to started_at).

Revision ID: 0005_claim_leases
Revises: 0004_spec_names
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_claim_leases"
down_revision: str | None = "0004_spec_names"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("worker_host", sa.String(255)),
    ("worker_pid", sa.Integer()),
    ("celery_task_id", sa.String(64)),
    ("heartbeat_at", sa.DateTime(timezone=True)),  # as every timestamp of 0001
)


def upgrade() -> None:
    # plain ADD COLUMN on both dialects (no table rebuild: inference_backtests refers to training_runs)
    for name, type_ in COLUMNS:
        op.add_column("training_runs", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.drop_column("training_runs", name)
