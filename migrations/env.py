"""Alembic environment for the reconciler's own tables (version table: reconciler_alembic_version).

Run programmatically by `reconciler.migrate`, which hands over an open connection; the reconciler never
touches orchestrator-core's `alembic_version`.
"""

from __future__ import annotations

from alembic import context

from reconciler.migrate import VERSION_TABLE
from reconciler.store import ledger_metadata


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=ledger_metadata,
        version_table=VERSION_TABLE,
        include_object=lambda obj, name, type_, reflected, compare_to: (
            type_ != "table" or name in ledger_metadata.tables
        ),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported")
run_migrations_online()
