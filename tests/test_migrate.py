"""A first apply creates the reconciler's tables straight from `store.ledger_metadata`, stamped at the newest
revision; they must be exactly the tables alembic's migrations build, so later migrations find what they expect."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from reconciler import migrate, store
from tests.conftest import create_scratch_pg, drop_scratch_pg

OURS = (store.LEDGER_TABLE, store.LEASE_TABLE, migrate.VERSION_TABLE)


@pytest.fixture
def two_databases(db_url: str, tmp_path: Any) -> Iterator[tuple[str, str]]:
    """Two empty databases of the same kind (orchestrator-core's tables in the PostgreSQL ones)."""
    if db_url.startswith("sqlite"):
        yield db_url, f"sqlite:///{tmp_path / 'other.db'}"
        return
    other = create_scratch_pg()
    try:
        engine = store.connect(other)
        with store.write_transaction(engine) as conn:
            store.create_compatible_tables(conn)
        engine.dispose()
        yield db_url, other
    finally:
        drop_scratch_pg(other)


def _schema(conn: Connection) -> dict[str, Any]:
    """Each of our tables as the database describes it: columns, keys, constraints, indexes."""
    found = inspect(conn)
    described: dict[str, Any] = {}
    for table in OURS:
        described[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"), c.get("autoincrement"))
                for c in found.get_columns(table)
            ],
            "primary_key": found.get_pk_constraint(table),
            "unique": sorted((u["name"] or "", tuple(u["column_names"])) for u in found.get_unique_constraints(table)),
            "indexes": sorted(
                (i["name"] or "", tuple(str(c) for c in i["column_names"]), i["unique"])
                for i in found.get_indexes(table)
            ),
            "foreign_keys": found.get_foreign_keys(table),
        }
    return described


def _versions(conn: Connection) -> list[str]:
    return [row[0] for row in conn.exec_driver_sql(f"SELECT version_num FROM {migrate.VERSION_TABLE}")]


def test_a_first_apply_creates_what_the_migrations_build(two_databases: tuple[str, str]) -> None:
    by_alembic, created = (store.connect(url) for url in two_databases)
    try:
        with store.write_transaction(by_alembic) as conn:
            command.upgrade(migrate._config(conn), "head")  # every migration, one after another
        with store.write_transaction(created) as conn:
            migrate.upgrade(conn)
        with by_alembic.connect() as a, created.connect() as b:
            assert _schema(b) == _schema(a)
            assert _versions(b) == _versions(a) == sorted(migrate.head_revisions())
            assert migrate.at_head(b)
            # alembic itself sees nothing to migrate: the created tables are its head, as it knows them.
            ours = MigrationContext.configure(
                b,
                opts={
                    "version_table": migrate.VERSION_TABLE,
                    # As migrations/env.py: orchestrator-core's tables and the version table are not ours to diff.
                    "include_object": lambda obj, name, type_, reflected, compare_to: (
                        type_ != "table" or name in store.ledger_metadata.tables
                    ),
                },
            )
            assert compare_metadata(ours, store.ledger_metadata) == []
    finally:
        by_alembic.dispose()
        created.dispose()


def test_a_database_with_our_older_tables_is_migrated_by_alembic(sqlite_url: str) -> None:
    engine = store.connect(sqlite_url)
    try:
        with store.write_transaction(engine) as conn:
            command.upgrade(migrate._config(conn), "0001_ledger")
            conn.exec_driver_sql(
                f"INSERT INTO {store.LEDGER_TABLE} (namespace, key, schedule_id, workflow_name, spec_hash, "
                "enabled, protect, applied_at) VALUES ('default', 'k', 'id', 'task_x', 's', 1, 0, '2026-12-01')"
            )
        with store.write_transaction(engine) as conn:
            migrate.upgrade(conn)
        with engine.connect() as conn:
            assert _versions(conn) == sorted(migrate.head_revisions())
            kept = conn.exec_driver_sql(f"SELECT key, source FROM {store.LEDGER_TABLE}").all()
            assert [tuple(r) for r in kept] == [("k", None)]  # migrated in place, nothing recreated
    finally:
        engine.dispose()


def test_a_first_apply_does_not_import_alembic(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'first.db'}"
    script = (
        "import sys\n"
        "from reconciler import migrate, store\n"
        f"engine = store.connect({url!r})\n"
        "with store.write_transaction(engine) as conn:\n"
        "    migrate.upgrade(conn)\n"
        "with engine.connect() as conn:\n"
        "    assert migrate.at_head(conn)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
