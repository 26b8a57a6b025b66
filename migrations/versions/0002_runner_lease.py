"""The runner's leader lease: one row per database names the runner that may start workflows.

PostgreSQL runners lock with a session advisory lock instead; the table exists there too (migrations
are the same on every database) and simply stays empty.

Revision ID: 0002_runner_lease
Revises: 0001_ledger
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_runner_lease"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconciler_runner_lease",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        # Epoch seconds (UTC): compared with the clock of the same host, SQLite being a local file.
        sa.Column("acquired_at", sa.Float(53), nullable=False),
        sa.Column("renewed_at", sa.Float(53), nullable=False),
        sa.Column("expires_at", sa.Float(53), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_reconciler_runner_lease"),
    )


def downgrade() -> None:
    op.drop_table("reconciler_runner_lease")
