"""The ledger records which source applied each schedule (ownership across repositories).

`source` is `<git remote URL, or repository root>:<schedules directory>` or the `--source` name. Existing
rows get NULL: the first source that applies them adopts them.

Revision ID: 0003_ledger_source
Revises: 0002_runner_lease
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_ledger_source"
down_revision = "0002_runner_lease"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reconciler_ledger") as batch:
        batch.add_column(sa.Column("source", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reconciler_ledger") as batch:
        batch.drop_column("source")
