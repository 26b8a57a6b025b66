"""The ledger: one row per schedule key the reconciler owns.

Revision ID: 0001_ledger
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconciler_ledger",
        sa.Column("namespace", sa.String(100), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("schedule_id", sa.String(191), nullable=False),
        sa.Column("workflow_name", sa.String(), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("protect", sa.Boolean(), nullable=False),
        sa.Column("source_path", sa.String(), nullable=True),
        sa.Column("source_line", sa.Integer(), nullable=True),
        sa.Column("applied_commit", sa.String(64), nullable=True),
        sa.Column("applied_author", sa.String(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "key", name="pk_reconciler_ledger"),
        sa.UniqueConstraint("schedule_id", name="uq_reconciler_ledger_schedule_id"),
    )


def downgrade() -> None:
    op.drop_table("reconciler_ledger")
