"""Bring the reconciler's own tables (the ledger) up to date with its alembic migrations.

alembic is imported only when a migration runs (an apply): it costs a third of a second of start-up,
which a dry run, a validate or a status never needs.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection


def _config(conn: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("reconciler.migrations")))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(conn: Connection) -> None:
    """Run pending migrations on `conn` (own version table; orchestrator-core's is never touched)."""
    from alembic import command

    command.upgrade(_config(conn), "head")
