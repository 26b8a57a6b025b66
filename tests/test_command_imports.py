"""Each command imports only what it uses: a whole `schedules` process, asked what it loaded.

Start-up is most of a small command's time (bench/whole.py measures it); these tests pin down the
imports that make the difference, never a duration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from reconciler import migrate, store
from tests.conftest import init_compatible

REPO = Path(__file__).resolve().parent.parent
WATCHED = ("alembic", "sqlalchemy", "reconciler.apply", "reconciler.jobstate", "psycopg")

PROBE = """
import atexit, json, sys
def report():
    loaded = sorted({m for m in sys.modules for w in WATCHED if m == w or m.startswith(w + ".")} & set(WATCHED))
    print(json.dumps(loaded), file=sys.stderr)
atexit.register(report)
sys.argv = ["schedules", *sys.argv[1:]]
from reconciler.cli import main
main()
"""


def loaded_by(*args: str, cwd: Path, watched: tuple[str, ...] = WATCHED) -> tuple[int, list[str]]:
    """Run `schedules ARGS` in a process of its own; its exit code and which watched modules it imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URI", "CACHE_URI")}
    code = PROBE.replace("WATCHED", repr(watched))
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True)
    return done.returncode, json.loads(done.stderr.strip().splitlines()[-1])


def test_the_migration_head_is_read_from_the_files_as_alembic_reads_it() -> None:
    script = ScriptDirectory(str(REPO / "migrations"))
    assert migrate.head_revisions() == frozenset(script.get_heads())


def test_only_a_migration_imports_alembic(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'schedules.db'}"
    schedules = str(REPO / "schedules.d")
    code, first = loaded_by("reconcile", schedules, "--db", db, cwd=tmp_path)
    # A new database: the ledger is created at the newest revision from the metadata (tests/test_migrate.py).
    assert code == 0 and "alembic" not in first and "sqlalchemy" in first
    older = f"sqlite:///{tmp_path / 'older.db'}"
    engine = store.connect(older)
    with store.write_transaction(engine) as conn:
        store.create_compatible_tables(conn)
        command.upgrade(migrate._config(conn), "0001_ledger")  # the ledger as an older release left it
    engine.dispose()
    code, migrated = loaded_by("reconcile", schedules, "--db", older, cwd=tmp_path)
    assert code == 0 and "alembic" in migrated  # a ledger behind the newest revision: alembic migrates it
    code, again = loaded_by("reconcile", schedules, "--db", db, cwd=tmp_path)
    assert code == 0 and "alembic" not in again and "reconciler.apply" in again  # at head: nothing to migrate
    code, dry = loaded_by("reconcile", schedules, "--db", db, "--dry-run", cwd=tmp_path)
    assert code == 0 and dry == ["reconciler.jobstate"]  # no SQLAlchemy, no apply code: plain sqlite3 reads
    code, checked = loaded_by("validate", schedules, cwd=tmp_path)
    assert code == 0 and checked == []


@pytest.mark.postgres
def test_a_postgres_dry_run_reads_through_psycopg_alone(pg_url: str, tmp_path: Path) -> None:
    init_compatible(pg_url).dispose()
    schedules = str(REPO / "schedules.d")
    code, applied = loaded_by("reconcile", schedules, "--db", pg_url, cwd=tmp_path)
    assert code == 0 and {"sqlalchemy", "reconciler.apply"} <= set(applied)
    code, dry = loaded_by("reconcile", schedules, "--db", pg_url, "--dry-run", "--detailed-exitcode", cwd=tmp_path)
    # The read-ahead child (reconciler/read_ahead.py) imported psycopg and read; a no-op plan reads no row whole,
    # so the command's own process never connects.
    assert code == 0 and dry == ["reconciler.jobstate"]


@pytest.mark.postgres
def test_health_reads_postgres_through_psycopg_alone(pg_url: str, tmp_path: Path) -> None:
    """`health` opens a bare read-only connection, as a dry run does, and judges triggers without the file
    format's pydantic models or the planner: those imports were a quarter of a 10,000-schedule report.
    A URL with query options still reads, through SQLAlchemy's engine."""
    init_compatible(pg_url).dispose()
    watched = (*WATCHED, "reconciler.spec", "reconciler.plan")
    code, plain = loaded_by("health", "--db", pg_url, cwd=tmp_path, watched=watched)
    assert code == 0 and plain == ["psycopg", "reconciler.jobstate"]
    code, with_options = loaded_by("health", "--db", f"{pg_url}?connect_timeout=5", cwd=tmp_path)
    assert code == 0 and "sqlalchemy" in with_options
