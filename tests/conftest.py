"""Real databases for the tests: a SQLite file, and a scratch PostgreSQL database per test.

PostgreSQL is the local server (127.0.0.1:5432, trust auth); `.ci/run` starts it. Set
RECONCILER_TEST_PG to another admin URL to use a different server.

Test tiers: every test that reaches PostgreSQL carries the `postgres` marker, and every test that needs
orchestrator-core the `orchestrator` marker, so `pytest -m "not postgres and not orchestrator"` is the
inner loop that needs no server. The `postgres` marker is put on automatically for the fixtures here
(`pg_url`, the PostgreSQL half of `db_url`); any other test must be marked by hand, and one that makes a
scratch PostgreSQL database without the marker fails, so the fast tier can never quietly need the server;
likewise an unmarked test that imports orchestrator-core.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import uuid
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path

import hypothesis
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from reconciler import store
from tests.command_line import BOTH_WAYS, Schedules

PG_ADMIN = os.environ.get("RECONCILER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# How many examples each property test tries: the inner loop (README) and bench/mutation.py ask for fewer;
# unset, hypothesis's default (100) and test_one_answer's own 150.
if os.environ.get("RECONCILER_PROPERTY_EXAMPLES"):
    hypothesis.settings.register_profile(
        "reconciler-examples", max_examples=int(os.environ["RECONCILER_PROPERTY_EXAMPLES"])
    )
    hypothesis.settings.load_profile("reconciler-examples")


def pg_admin_engine() -> Engine:
    return create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `postgres` marker on every test that takes a PostgreSQL fixture of this file."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = "pg_url" in getattr(item, "fixturenames", ()) or (
            callspec is not None and callspec.params.get("db_url") == "postgres"
        )
        if on_postgres:
            item.add_marker(pytest.mark.postgres)
    if os.environ.get("MUTANT_UNDER_TEST"):
        # A mutant (bench/mutation.py) stops at its first failing test: the in-memory tests first, the ones
        # that set up a database after them, so a killed mutant is known after a fraction of the time.
        databases = {"sqlite_url", "db_url", "pg_url"}
        items.sort(key=lambda item: bool(databases & set(getattr(item, "fixturenames", ()))))


_running: list[pytest.Item] = []  # the test being set up, run or torn down (module fixtures included)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    _running.append(item)
    try:
        yield
    finally:
        _running.pop()


class _OrchestratorImportGuard(importlib.abc.MetaPathFinder):
    """Refuses to import orchestrator-core in a test without the `orchestrator` marker.

    A finder is asked only for modules not imported yet, so this is certain in the fast tier (where no
    marked test imports it first), which is the tier that must not need it.
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if (
            fullname.partition(".")[0] == "orchestrator"
            and _running
            and _running[-1].get_closest_marker("orchestrator") is None
        ):
            raise ImportError(f"{_running[-1].nodeid} imports orchestrator-core: mark it @pytest.mark.orchestrator")
        return None


sys.meta_path.insert(0, _OrchestratorImportGuard())


def create_scratch_pg() -> str:
    """A new empty PostgreSQL database; returns its URL."""
    if _running and _running[-1].get_closest_marker("postgres") is None:
        raise RuntimeError(f"{_running[-1].nodeid} uses PostgreSQL: mark it @pytest.mark.postgres")
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


@pytest.fixture(autouse=os.environ.get("MUTANT_UNDER_TEST") is not None)
def _fresh_caches() -> None:
    """Under bench/mutation.py only: mutmut forks each worker from a process that has already run the
    tests, so memoised results of the original code (built triggers, namespace uuids, spec digests, DST tables, the
    unpickler's checked trigger classes) would hide the mutant under test. Start every test with those caches
    empty."""
    from reconciler import jobstate, plan
    from reconciler.triggers import building, dst

    building._BUILT.clear()
    jobstate._AllowListUnpickler._found.clear()
    plan.namespace_uuid.cache_clear()
    plan._spec_digest.cache_clear()
    dst._transitions.cache_clear()


@pytest.fixture(params=BOTH_WAYS)
def command_line(request: pytest.FixtureRequest) -> Schedules:
    """The `schedules` command: in this process, and (`slow`, the full suite) as a whole process."""
    runner: Schedules = request.param
    return runner
