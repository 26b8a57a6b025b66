"""The database edge: orchestrator-core's schedule tables, the reconciler's ledger, raw reads and writes.

Rows of `apscheduler_jobs` are read raw (never through APScheduler's SQLAlchemyJobStore, which deletes
rows it cannot restore) and decoded later by `jobstate`. Writes follow orchestrator-core's order:
job row first, then its linker row.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    bindparam,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError

from reconciler import database_url, deadline, reads
from reconciler.database_url import DEFAULT_DB_NAME as DEFAULT_DB_NAME  # re-exported, as below
from reconciler.database_url import DEFAULT_DB_URL as DEFAULT_DB_URL
from reconciler.database_url import absolute_db_url as absolute_db_url
from reconciler.database_url import default_db_path as default_db_path
from reconciler.database_url import describe_db_error as describe_db_error
from reconciler.database_url import redact as redact
from reconciler.database_url import redact_url as redact_url
from reconciler.database_url import resolve_db_url as resolve_db_url
from reconciler.jobstate import JobRow
from reconciler.state import ExpectedRow
from reconciler.state import LedgerEntry as LedgerEntry  # re-exported: the edges and commands still say store.X
from reconciler.state import LiveJob as LiveJob
from reconciler.state import LiveState as LiveState
from reconciler.state import Workflow as Workflow

LEDGER_TABLE = reads.LEDGER_TABLE
SCHEDULE_TABLES = reads.SCHEDULE_TABLES
CORE_TASKS = reads.CORE_TASKS  # orchestrator-core's own task workflows, seeded into the embedded database
_batches = reads._batches

orchestrator_metadata = MetaData()

workflows = Table(
    "workflows",
    orchestrator_metadata,
    Column("workflow_id", Uuid, primary_key=True, default=uuid.uuid4),
    Column("name", String, nullable=False, unique=True),
    Column("target", String, nullable=False),
    Column("description", String(2000), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.current_timestamp()),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    Column("is_task", Boolean, nullable=False, server_default=text("false")),
)

apscheduler_jobs = Table(
    "apscheduler_jobs",
    orchestrator_metadata,
    Column("id", String(191), primary_key=True),
    Column("next_run_time", Float(53), nullable=True),
    Column("job_state", LargeBinary, nullable=False),
)

# orchestrator-core's final shape: no primary key, UNIQUE(workflow_id, schedule_id), both FKs cascade.
workflows_apscheduler_jobs = Table(
    "workflows_apscheduler_jobs",
    orchestrator_metadata,
    Column("workflow_id", Uuid, ForeignKey("workflows.workflow_id", ondelete="CASCADE"), nullable=False),
    Column("schedule_id", String(512), ForeignKey("apscheduler_jobs.id", ondelete="CASCADE"), nullable=False),
    UniqueConstraint("workflow_id", "schedule_id", name="uq_workflow_schedule"),
)

# The reconciler's own tables exactly as its migrations (migrations/versions) leave them at the newest
# revision: a database that has none of them gets them created from here (tests/test_migrate.py).
ledger_metadata = MetaData()

ledger = Table(
    LEDGER_TABLE,
    ledger_metadata,
    Column("namespace", String(100), nullable=False),
    Column("key", String(100), nullable=False),
    Column("schedule_id", String(191), nullable=False),
    Column("workflow_name", String, nullable=False),
    Column("spec_hash", String(64), nullable=False),
    Column("row_hash", String(64), nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("protect", Boolean, nullable=False),
    Column("source_path", String, nullable=True),
    Column("source_line", Integer, nullable=True),
    Column("applied_commit", String(64), nullable=True),
    Column("applied_author", String, nullable=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("source", String, nullable=True),  # migration 0003: the source that applied the entry
    PrimaryKeyConstraint("namespace", "key", name="pk_reconciler_ledger"),
    UniqueConstraint("schedule_id", name="uq_reconciler_ledger_schedule_id"),
)

LEASE_TABLE = "reconciler_runner_lease"
# The runner's leader lease (migration 0002): reconciler.runner.leader reads and renews it.
runner_lease = Table(
    LEASE_TABLE,
    ledger_metadata,
    Column("name", String(100), nullable=False),
    Column("holder", String(200), nullable=False),
    Column("acquired_at", Float(53), nullable=False),
    Column("renewed_at", Float(53), nullable=False),
    Column("expires_at", Float(53), nullable=False),
    PrimaryKeyConstraint("name", name="pk_reconciler_runner_lease"),
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Foreign keys are off by default in SQLite; the linker table relies on ON DELETE CASCADE.
    # isolation_level=None hands BEGIN to us, so an apply can take the write lock up front.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


def connect(url: str, *, lock_timeout: float = 30.0, read_only: bool = False) -> Engine:
    """An engine for `url`; postgresql:// URLs use psycopg 3.

    `read_only` makes the database itself refuse writes (SQLite mode=ro, PostgreSQL read-only
    transactions), so a dry run cannot write even by mistake; a SQLite file that does not exist
    yet reads as empty instead of being created.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        args: dict[str, Any] = {"timeout": lock_timeout}
        database = parsed.database or ""
        if read_only and database and database != ":memory:":
            path = Path(database).resolve()
            target = f"file:{path}?mode=ro" if path.exists() else "file::memory:"
            parsed = parsed.set(database=target, query={**parsed.query, "uri": "true"})
        engine = create_engine(parsed, connect_args=args)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(
            parsed, pool_pre_ping=True, connect_args=deadline.pg_connect_args(parsed.query, read_only)
        )
    event.listen(engine, "connect", deadline.track)  # --timeout can sever each connection this engine opens
    return _labelled(engine, url)


def _labelled(engine: Engine, url: str) -> Engine:
    """The engine, remembering the URL the user gave (password masked) for every message about it.

    Each database error raised through it carries that target and whether it happened while connecting,
    so `describe_db_error` can name the file or server and the fix.
    """
    target = redact_url(absolute_db_url(url))
    setattr(engine, _TARGET, target)

    def tag(context: Any) -> None:
        error = context.sqlalchemy_exception
        if error is not None:
            setattr(error, _TARGET, target)
            setattr(error, _CONNECTING, context.connection is None)

    event.listen(engine, "handle_error", tag)
    return engine


_TARGET = database_url.TARGET_ATTRIBUTE
_CONNECTING = database_url.CONNECTING_ATTRIBUTE


def target_of(conn: Connection | Engine) -> str:
    """The database as the user named it (password masked), for messages."""
    engine = conn.engine if isinstance(conn, Connection) else conn
    return str(getattr(engine, _TARGET, None) or redact_url(engine.url.render_as_string(hide_password=True)))


missing_tables_message = reads.missing_tables_message
MissingScheduleTables = reads.MissingScheduleTables


def require_schedule_tables(conn: Connection, names: Collection[str] | None = None) -> None:
    """Refuse, with the one line, a database that lacks orchestrator-core's schedule tables."""
    present = set(names) if names is not None else table_names(conn)
    if not present >= SCHEDULE_TABLES:
        raise MissingScheduleTables(missing_tables_message(target_of(conn)))


def is_sqlite(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "sqlite"


def table_names(conn: Connection) -> set[str]:
    return reads.table_names(reads.Reader.of(conn))


def is_orchestrator_database(conn: Connection) -> bool:
    """True when orchestrator-core's migrations manage this database (its alembic_version has rows)."""
    return reads.is_orchestrator_database(reads.Reader.of(conn))


def has_schedule_tables(conn: Connection) -> bool:
    return table_names(conn) >= SCHEDULE_TABLES


def create_compatible_tables(conn: Connection, *, seed_core_tasks: bool = True) -> None:
    """orchestrator-compatible `workflows` / `apscheduler_jobs` / linker tables, for an empty database.

    Refuses a database that orchestrator-core manages: its own migrations own those tables.
    """
    if is_orchestrator_database(conn):
        raise RuntimeError("this is an orchestrator-core database; its own migrations create the schedule tables")
    orchestrator_metadata.create_all(conn)
    if seed_core_tasks and conn.execute(select(func.count()).select_from(workflows)).scalar_one() == 0:
        conn.execute(
            workflows.insert(),
            [
                {
                    "workflow_id": uuid.uuid4(),
                    "name": n,
                    "target": "SYSTEM",
                    "description": d,
                    "is_task": True,
                }
                for n, d in CORE_TASKS
            ],
        )


def read_workflows(conn: Connection) -> list[Workflow]:
    """Every row of `workflows` (soft-deleted ones flagged)."""
    return reads.read_workflows(reads.Reader.of(conn))


def read_jobs(conn: Connection, expected: Mapping[str, ExpectedRow] | None = None) -> list[LiveJob]:
    """Every `apscheduler_jobs` row, linked workflow ids and job_state decoded (see `reads.read_jobs`)."""
    return reads.read_jobs(reads.Reader.of(conn), expected)


def reread_jobs(conn: Connection, live: LiveState, ids: Iterable[str]) -> LiveState:
    """`live` with the rows `ids` read again, whole (a row deleted meanwhile is dropped)."""
    return reads.reread_jobs(reads.Reader.of(conn), live, ids)


def lock_job_table(conn: Connection, *, timeout: float) -> bool:
    """PostgreSQL: `apscheduler_jobs` in ACCESS EXCLUSIVE mode until the (sub)transaction ends, so no
    scheduler reads a row until our writes are committed; False when it was not granted within `timeout`
    (a long transaction of someone else holds the table). Call it inside a savepoint: a refusal aborts it.
    """
    conn.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": f"{max(1, int(timeout * 1000))}ms"})
    try:
        conn.execute(text("LOCK TABLE apscheduler_jobs IN ACCESS EXCLUSIVE MODE"))
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            return False
        raise
    return True


def read_row_digests(conn: Connection, ids: Collection[str] | None = None) -> dict[str, tuple[float | None, str]]:
    """id → (next_run_time column, sha256 hex of job_state), of every job row or of the rows `ids`."""
    return reads.read_row_digests(reads.Reader.of(conn), ids)


def read_links(conn: Connection, schedule_ids: Collection[str] | None = None) -> set[tuple[str, str]]:
    """Every (workflow_id, schedule_id) linker row, or those of `schedule_ids`; ids as canonical strings."""
    return reads.read_links(reads.Reader.of(conn), schedule_ids)


def ledger_exists(conn: Connection) -> bool:
    return LEDGER_TABLE in table_names(conn)


def read_ledger(conn: Connection) -> list[LedgerEntry]:
    """All ledger rows, every namespace (the planner needs to know what others own)."""
    return reads.read_ledger(reads.Reader.of(conn))


def ledger_has_source(conn: Connection) -> bool:
    """Whether the ledger has its `source` column (migration 0003); a dry run never migrates, so it may not."""
    return reads.ledger_has_source(reads.Reader.of(conn))


def absent_keys(conn: Connection, namespace: str) -> frozenset[str]:
    """Ledger keys of `namespace` that are enabled but have no job row (e.g. a `date` job that fired)."""
    return reads.absent_keys(reads.Reader.of(conn), namespace)


def read_live_state(conn: Connection, *, expect: reads.ExpectRows | None = None) -> LiveState:
    """One read of ledger, workflows and jobs inside the connection's transaction (see `reads.read_live_state`)."""
    return reads.read_live_state(reads.Reader.of(conn), expect=expect)


COPY_THRESHOLD = 64  # below this, a plain INSERT is as fast and simpler to read in logs


def _bulk_insert(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """INSERT many rows: PostgreSQL COPY (several times faster than batched INSERTs), else executemany."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            # Binary: the server parses no hex-escaped bytea (half the server time of text COPY for job rows).
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([_binary_type(table.c[name]) for name in columns])
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()
        return
    conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])


def _binary_type(column: Column[Any]) -> str:
    """The PostgreSQL type a binary COPY sends for `column` (binary input must match the column's type)."""
    kind = column.type
    if isinstance(kind, Uuid):
        return "uuid"
    if isinstance(kind, LargeBinary):
        return "bytea"
    if isinstance(kind, Float):
        return "float8"
    if isinstance(kind, Boolean):
        return "bool"
    if isinstance(kind, Integer):
        return "int4"
    if isinstance(kind, DateTime):
        return "timestamptz" if kind.timezone else "timestamp"
    return "text"


def insert_jobs(conn: Connection, rows: Sequence[JobRow], links: Sequence[tuple[str, str]]) -> None:
    """INSERT job rows, then their linker rows (workflow_id, schedule_id): orchestrator-core's order."""
    _bulk_insert(
        conn,
        apscheduler_jobs,
        ("id", "next_run_time", "job_state"),
        [(r.id, r.next_run_time, r.job_state) for r in rows],
    )
    insert_links(conn, links)


def insert_links(conn: Connection, links: Sequence[tuple[str, str]]) -> None:
    """INSERT linker rows (after their job rows: the foreign key points at them)."""
    as_uuid = {w: uuid.UUID(w) for w in {w for w, _ in links}}  # a few workflows, many links
    _bulk_insert(conn, workflows_apscheduler_jobs, ("workflow_id", "schedule_id"), [(as_uuid[w], s) for w, s in links])


def update_jobs(conn: Connection, rows: Sequence[JobRow]) -> None:
    """Rewrite job rows in place (id kept, so linker rows stay), as one executemany."""
    if not rows:
        return
    statement = (
        apscheduler_jobs.update()
        .where(apscheduler_jobs.c.id == bindparam("row_id"))
        .values(next_run_time=bindparam("row_next_run_time"), job_state=bindparam("row_job_state"))
    )
    conn.execute(
        statement,
        [{"row_id": r.id, "row_next_run_time": r.next_run_time, "row_job_state": r.job_state} for r in rows],
    )


def delete_jobs(conn: Connection, ids: Iterable[str]) -> None:
    """DELETE job rows; linker rows go with them (explicitly too, in case FKs are not enforced)."""
    for chunk in _batches(ids):
        conn.execute(workflows_apscheduler_jobs.delete().where(workflows_apscheduler_jobs.c.schedule_id.in_(chunk)))
        conn.execute(apscheduler_jobs.delete().where(apscheduler_jobs.c.id.in_(chunk)))


def delete_links(conn: Connection, links: Sequence[tuple[str, str]]) -> None:
    for w, s in links:
        conn.execute(
            workflows_apscheduler_jobs.delete().where(
                (workflows_apscheduler_jobs.c.workflow_id == uuid.UUID(w))
                & (workflows_apscheduler_jobs.c.schedule_id == s)
            )
        )


def write_ledger(conn: Connection, entries: Sequence[LedgerEntry], remove: Iterable[tuple[str, str]]) -> None:
    """Delete the (namespace, key) rows in `remove`, then insert `entries`.

    A changed entry is replaced: the caller lists its key in `remove` too. New keys need no delete, which
    keeps a 10,000-schedule first apply to one COPY.
    """
    by_namespace: dict[str, list[str]] = {}
    for ns, key in remove:
        by_namespace.setdefault(ns, []).append(key)
    for ns, keys in by_namespace.items():
        for chunk in _batches(keys):
            conn.execute(ledger.delete().where((ledger.c.namespace == ns) & ledger.c.key.in_(chunk)))
    now = datetime.now(UTC)
    columns = (
        "namespace", "key", "schedule_id", "workflow_name", "spec_hash", "row_hash", "enabled", "protect",
        "source_path", "source_line", "applied_commit", "applied_author", "applied_at", "source",
    )  # fmt: skip
    _bulk_insert(
        conn,
        ledger,
        columns,
        [
            (
                e.namespace,
                e.key,
                e.schedule_id,
                e.workflow_name,
                e.spec_hash,
                e.row_hash,
                e.enabled,
                e.protect,
                e.source_path,
                e.source_line,
                e.applied_commit,
                e.applied_author,
                e.applied_at or now,
                e.source,
            )
            for e in entries
        ],
    )


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds SQLite's write lock from its first statement (BEGIN IMMEDIATE)."""
    with engine.connect() as conn:
        if is_sqlite(conn):
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn
