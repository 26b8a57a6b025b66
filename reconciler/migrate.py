"""Bring the reconciler's own tables (the ledger) up to date with its alembic migrations."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection


def _config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("reconciler.migrations")))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(conn: Connection) -> None:
    """Run pending migrations on `conn` (own version table; orchestrator-core's is never touched)."""
    command.upgrade(_config(conn), "head")
