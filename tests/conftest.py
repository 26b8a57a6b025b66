"""Real databases for the tests: a SQLite file, and a scratch PostgreSQL database per test.

PostgreSQL is the local server (127.0.0.1:5432, trust auth); `.ci/run` starts it. Set
RECONCILER_TEST_PG to another admin URL to use a different server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from reconciler import store

PG_ADMIN = os.environ.get("RECONCILER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_admin_engine() -> Engine:
    return create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")


def create_scratch_pg() -> str:
    """A new empty PostgreSQL database; returns its URL."""
    name = f"rt_{uuid.uuid4().hex[:12]}"
    admin = pg_admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop_scratch_pg(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = pg_admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (no tables at all)."""
    url = create_scratch_pg()
    try:
        yield url
    finally:
        drop_scratch_pg(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'schedules.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that takes `db_url` runs once on SQLite and once on PostgreSQL.

    SQLite starts empty (the embedded default creates its tables); PostgreSQL starts with the schedule
    tables and core's task workflows, as orchestrator-core's migrations would leave them.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'schedules.db'}"
        return
    url = create_scratch_pg()
    try:
        init_compatible(url).dispose()
        yield url
    finally:
        drop_scratch_pg(url)


def init_compatible(url: str) -> Engine:
    """orchestrator-compatible tables with core's task workflows (what the embedded default creates)."""
    engine = store.connect(url)
    with store.write_transaction(engine) as conn:
        store.create_compatible_tables(conn)
    return engine
