"""Bring the reconciler's own tables (the ledger) up to date with its alembic migrations.

alembic is imported only when a migration has to run: importing it costs a third of a second of start-up,
which a dry run, a validate or a status never needs, and an apply needs only once per new revision. The
newest revision is read from the migration files themselves (their `revision` / `down_revision` lines),
so a database already there is recognised with one query.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

VERSION_TABLE = "reconciler_alembic_version"  # migrations/env.py; orchestrator-core's alembic_version is its own
_REVISION = re.compile(r"^(revision|down_revision)\s*=\s*(None|\"[^\"]*\"|'[^']*')", re.MULTILINE)


def head_revisions() -> frozenset[str]:
    """The revisions no other revision builds on, read from migrations/versions/*.py without alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for entry in resources.files("reconciler.migrations.versions").iterdir():
        if not entry.name.endswith(".py") or entry.name.startswith("_"):
            continue
        fields = {k: v.strip("\"'") for k, v in _REVISION.findall(entry.read_text(encoding="utf-8")) if v != "None"}
        if "revision" in fields:
            revisions.add(fields["revision"])
        if "down_revision" in fields:
            parents.add(fields["down_revision"])
    return frozenset(revisions - parents)


def at_head(conn: Connection) -> bool:
    """Whether the ledger tables are at the newest revision (nothing for alembic to do)."""
    from sqlalchemy import inspect

    if not inspect(conn).has_table(VERSION_TABLE):
        return False
    applied = {row[0] for row in conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")}
    return bool(applied) and applied == head_revisions()


def _config(conn: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("reconciler.migrations")))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(conn: Connection) -> None:
    """Run pending migrations on `conn` (own version table; orchestrator-core's is never touched).

    A database with none of our tables yet (a first apply) gets them at the newest revision straight from
    `store.ledger_metadata`, stamped with that revision, as alembic's own recipe for a new database does:
    the same tables, without importing alembic (~70 ms). Anything older is migrated by alembic.
    """
    if at_head(conn):
        return
    if _create_at_head(conn):
        return
    from alembic import command

    command.upgrade(_config(conn), "head")


def _create_at_head(conn: Connection) -> bool:
    """Create our tables at the newest revision on a database that has none of them; False: not such a one."""
    from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect

    from reconciler.store import ledger_metadata

    heads = head_revisions()
    present = set(inspect(conn).get_table_names())
    if len(heads) != 1 or present & {VERSION_TABLE, *ledger_metadata.tables}:
        return False
    ledger_metadata.create_all(conn)
    # The version table exactly as alembic creates it (name, column, primary key constraint).
    version = Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )
    version.create(conn)
    conn.execute(version.insert(), [{"version_num": next(iter(heads))}])
    return True
