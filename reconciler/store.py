"""The database edge: orchestrator-core's schedule tables, the reconciler's ledger, raw reads and writes.

Rows of `apscheduler_jobs` are read raw (never through APScheduler's SQLAlchemyJobStore, which deletes
rows it cannot restore) and decoded later by `jobstate`. Writes follow orchestrator-core's order:
job row first, then its linker row.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
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
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError

from reconciler import deadline
from reconciler.exit_codes import CommandError
from reconciler.jobstate import JobRow, UnreadableJobState, load_job_state, state_digest
from reconciler.state import ExpectedRow
from reconciler.state import LedgerEntry as LedgerEntry  # re-exported: the edges and commands still say store.X
from reconciler.state import LiveJob as LiveJob
from reconciler.state import LiveState as LiveState
from reconciler.state import Workflow as Workflow

DEFAULT_DB_NAME = "schedules.db"
DEFAULT_DB_URL = f"sqlite:///{DEFAULT_DB_NAME}"  # relative: only for library callers that pass none
LEDGER_TABLE = "reconciler_ledger"

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

# orchestrator-core's own task workflows, seeded into the embedded database so the bundled examples work.
CORE_TASKS: tuple[tuple[str, str], ...] = (
    ("task_clean_up_tasks", "Clean up old tasks"),
    ("task_resume_workflows", "Resume all workflows that are stuck on tasks with the status 'waiting'"),
    ("task_validate_products", "Validate products"),
    ("task_validate_product_type", "Validate all subscriptions of Product Type"),
    ("task_validate_subscriptions", "Validate subscriptions"),
    ("task_validate_awaiting_callbacks", "Validate awaiting callbacks"),
)


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


def redact(message: str, *secrets: str | None) -> str:
    """Remove every password-bearing URL and the given secrets from a message."""
    cleaned = re.sub(r"(\w+://[^:/@\s]*):[^@\s]*@", r"\1:***@", message)
    for secret in secrets:
        if secret:
            cleaned = cleaned.replace(secret, "***")
    return cleaned


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


def default_db_path(directory: Path | None = None) -> Path:
    """Where the embedded database lives: never a function of the current directory alone.

    `schedules.db` at the root of the git repository holding the schedules directory; outside git,
    beside the schedules directory. Commands without one (`run`, `force`) start from the current
    directory's repository. So every command on one schedules directory, from anywhere, plans against
    the same file.
    """
    start = (directory if directory is not None else Path.cwd()).resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate / DEFAULT_DB_NAME
    return (start.parent if directory is not None else start) / DEFAULT_DB_NAME


def absolute_db_url(url: str) -> str:
    """A SQLite URL with its file made absolute (against the current directory, as the user typed it);
    every other URL unchanged. Headers then name the file actually opened."""
    if not url.startswith("sqlite:"):
        return url
    parsed = make_url(url)
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:") or Path(database).is_absolute():
        return url
    return parsed.set(database=str(Path(database).resolve())).render_as_string(hide_password=False)


def resolve_db_url(option: str | None, directory: Path | None = None) -> str:
    """--db, else $DATABASE_URI, else the embedded SQLite database of `directory` (see `default_db_path`)."""
    url = option or os.environ.get("DATABASE_URI")
    if not url:
        return f"sqlite:///{default_db_path(directory)}"
    return absolute_db_url(url)


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
        return _labelled(engine, url)
    return _labelled(
        create_engine(parsed, pool_pre_ping=True, connect_args=_pg_connect_args(parsed.query, read_only)), url
    )


def _pg_connect_args(query: Mapping[str, Any], read_only: bool) -> dict[str, Any]:
    """libpq settings that keep a dead or frozen server from hanging a command (see deadline.py): a bound
    on each connection attempt, TCP keepalives (a vanished host is noticed), and, for a command running
    under --timeout, a statement_timeout of what is left of it (a live but stuck server cancels itself)."""
    args: dict[str, Any] = {
        "connect_timeout": deadline.CONNECT_TIMEOUT,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    args = {k: v for k, v in args.items() if k not in query}  # the URL's own settings win
    options = ["-c default_transaction_read_only=on"] if read_only else []
    left = deadline.remaining()
    if left is not None and "options" not in query:
        options.append(f"-c statement_timeout={max(1, int(left * 1000))}")
    if options and "options" not in query:
        args["options"] = " ".join(options)
    return args


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


_TARGET = "reconciler_target"
_CONNECTING = "reconciler_connecting"


def target_of(conn: Connection | Engine) -> str:
    """The database as the user named it (password masked), for messages."""
    engine = conn.engine if isinstance(conn, Connection) else conn
    return str(getattr(engine, _TARGET, None) or redact_url(engine.url.render_as_string(hide_password=True)))


def missing_tables_message(target: str) -> str:
    """The one line every command that needs orchestrator-core's tables says when they are not there."""
    return (
        f"{target} has no orchestrator-core schedule tables ({', '.join(sorted(SCHEDULE_TABLES))}): "
        "run orchestrator-core's migrations on it first (python main.py db upgrade heads), "
        "or point --db / $DATABASE_URI at orchestrator-core's database"
    )


class MissingScheduleTables(CommandError):
    """A database without orchestrator-core's schedule tables, where a command needs them."""


def require_schedule_tables(conn: Connection, names: Collection[str] | None = None) -> None:
    """Refuse, with the one line, a database that lacks orchestrator-core's schedule tables."""
    present = set(names) if names is not None else table_names(conn)
    if not present >= SCHEDULE_TABLES:
        raise MissingScheduleTables(missing_tables_message(target_of(conn)))


def describe_db_error(exc: Exception) -> str:
    """One line for a database error, with credentials removed: which database, what happened, the fix."""
    original = getattr(exc, "orig", None) or exc
    first = redact((str(original).strip().splitlines() or [type(original).__name__])[0])
    target = getattr(exc, _TARGET, None)
    if target is None:
        return first
    if target.startswith("sqlite:"):
        path = target.removeprefix("sqlite:///")
        if "unable to open database file" in first:
            return (
                f"cannot open the SQLite file {path}: its directory does not exist or is not writable "
                "(create it or make it writable, or pass --db URL)"
            )
        if "readonly database" in first:
            return f"{path} is read-only here: make the file and its directory writable, or use --dry-run"
        return f"{path}: {first}"
    if getattr(exc, _CONNECTING, False):
        return (
            f"cannot connect to {target}: {first} (is the server running and reachable from here? "
            "check --db / $DATABASE_URI)"
        )
    return f"{target}: {first}"


def is_sqlite(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "sqlite"


def table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def is_orchestrator_database(conn: Connection) -> bool:
    """True when orchestrator-core's migrations manage this database (its alembic_version has rows)."""
    if "alembic_version" not in table_names(conn):
        return False
    count: int = conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()
    return count > 0


SCHEDULE_TABLES = frozenset({"workflows", "apscheduler_jobs", "workflows_apscheduler_jobs"})


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
    rows = conn.execute(
        select(
            workflows.c.workflow_id,
            workflows.c.name,
            workflows.c.description,
            workflows.c.is_task,
            workflows.c.deleted_at,
        )
    )
    return [
        Workflow(str(r.workflow_id), r.name, r.description or "", bool(r.is_task), r.deleted_at is not None)
        for r in rows
    ]


def _fetch_all(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    # The DB-API cursor, in the same transaction: SQLAlchemy's per-row Result machinery costs more than
    # the query itself when reading 10,000 rows.
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _uuid_text(value: Any) -> str:
    # psycopg hands back uuid.UUID; SQLite stores SQLAlchemy's Uuid as 32 hex digits without dashes.
    return str(value) if isinstance(value, uuid.UUID) else str(uuid.UUID(str(value)))


def _in_code_point_order(conn: Connection) -> str:
    # Rows come back sorted as Python sorts str, so the planner's own sorts meet sorted input (linear).
    return ' COLLATE "C"' if conn.dialect.name == "postgresql" else ""  # SQLite's default is binary order


def read_jobs(conn: Connection, expected: Mapping[str, ExpectedRow] | None = None) -> list[LiveJob]:
    """Every `apscheduler_jobs` row with the workflow ids linked to it, sorted by id, job_state decoded.

    A row that matches its `expected` entry (what our ledger recorded for an unchanged spec) is listed
    by its digest only: on PostgreSQL its job_state never crosses the wire (the database computes the
    digest), elsewhere it is not unpickled. Every other row is read whole and decoded here.
    """
    links = _links_by_job(conn)
    known = expected or {}
    if known and conn.dialect.name == "postgresql":
        digests = read_row_digests(conn)
        jobs = {i: LiveJob(i, n, links.get(i, ()), d) for i, (n, d) in digests.items()}
        whole = [i for i, job in jobs.items() if not _as_expected(job, known)]
        return list(_with_states(conn, jobs, whole).values())
    order = _in_code_point_order(conn)
    rows = _fetch_all(conn, f"SELECT id, next_run_time, job_state FROM apscheduler_jobs ORDER BY id{order}")
    found = []
    for i, n, b in rows:
        blob = bytes(b)
        job = LiveJob(i, n, links.get(i, ()), state_digest(blob))
        found.append(job if _as_expected(job, known) else _decoded(job, blob))
    return found


def _as_expected(job: LiveJob, expected: Mapping[str, ExpectedRow]) -> bool:
    wanted = expected.get(job.id)
    return wanted is not None and wanted.matches(job.row_hash, job.workflow_ids)


def _decoded(job: LiveJob, blob: bytes) -> LiveJob:
    """`job` with its job_state decoded by the allow-list unpickler; a failure is data (`unreadable`), not an error."""
    try:
        return replace(job, state=load_job_state(blob))
    except UnreadableJobState as exc:
        return replace(job, unreadable=str(exc))


def _links_by_job(conn: Connection) -> dict[str, tuple[str, ...]]:
    """schedule_id → its workflow ids, sorted."""
    by_job = sorted((s, w) for w, s in _link_rows(conn))
    return {s: tuple(w for _, w in pairs) for s, pairs in groupby(by_job, key=itemgetter(0))}


def _live_job(job_id: str, next_run_time: float | None, job_state: bytes, workflow_ids: tuple[str, ...]) -> LiveJob:
    return _decoded(LiveJob(job_id, next_run_time, workflow_ids, state_digest(job_state)), job_state)


def _with_states(conn: Connection, jobs: dict[str, LiveJob], ids: Sequence[str]) -> dict[str, LiveJob]:
    """`jobs` (in their order) with the rows `ids` read whole. Each is rebuilt from this second read alone
    (column, pickle and digest agree even if the scheduler wrote it in between); a row deleted meanwhile
    is dropped. Linker rows are kept from the first read."""
    fetched: dict[str, LiveJob] = {}
    for chunk in _batches(ids):
        found = conn.execute(
            select(apscheduler_jobs.c.id, apscheduler_jobs.c.next_run_time, apscheduler_jobs.c.job_state).where(
                apscheduler_jobs.c.id.in_(chunk)
            )
        )
        for i, n, b in found:
            fetched[i] = _live_job(i, n, bytes(b), jobs[i].workflow_ids)
    wanted = set(ids)
    return {i: fetched.get(i, job) for i, job in jobs.items() if i not in wanted or i in fetched}


def reread_jobs(conn: Connection, live: LiveState, ids: Iterable[str]) -> LiveState:
    """`live` with the rows `ids` read again, whole (a row deleted meanwhile is dropped)."""
    jobs = {j.id: j for j in live.jobs}
    return replace(live, jobs=tuple(_with_states(conn, jobs, [i for i in ids if i in jobs]).values()))


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


SOME_ROWS = 5000  # up to this many ids are looked up by id; beyond, reading the whole table is cheaper


def _batches(values: Iterable[str], size: int = 500) -> Iterator[list[str]]:
    """`values` in lists of `size`: one IN (...) per list keeps every statement within SQLite's parameter limit."""
    listed = list(values)
    for start in range(0, len(listed), size):
        yield listed[start : start + size]


def read_row_digests(conn: Connection, ids: Collection[str] | None = None) -> dict[str, tuple[float | None, str]]:
    """id → (next_run_time column, sha256 hex of job_state) for every job row (in id order), or for the rows `ids`.

    PostgreSQL computes the digests itself, so neither a plan nor the check after an apply moves the pickles.
    """
    pg = conn.dialect.name == "postgresql"
    state = apscheduler_jobs.c.job_state
    columns = (
        apscheduler_jobs.c.id,
        apscheduler_jobs.c.next_run_time,
        func.encode(func.sha256(state), "hex") if pg else state,
    )
    if ids is not None and len(ids) <= SOME_ROWS:
        rows = [
            tuple(row)
            for chunk in _batches(ids)
            for row in conn.execute(select(*columns).where(apscheduler_jobs.c.id.in_(chunk)))
        ]
    else:
        read = "encode(sha256(job_state), 'hex')" if pg else "job_state"
        rows = _fetch_all(
            conn, f"SELECT id, next_run_time, {read} FROM apscheduler_jobs ORDER BY id{_in_code_point_order(conn)}"
        )
    if pg:
        return {i: (n, d) for i, n, d in rows}
    return {i: (n, state_digest(bytes(b))) for i, n, b in rows}


def read_links(conn: Connection, schedule_ids: Collection[str] | None = None) -> set[tuple[str, str]]:
    """Every (workflow_id, schedule_id) linker row, or those of `schedule_ids`; ids as canonical strings."""
    if schedule_ids is not None and len(schedule_ids) <= SOME_ROWS:
        table = workflows_apscheduler_jobs
        return {
            (_uuid_text(w), s)
            for chunk in _batches(schedule_ids)
            for w, s in conn.execute(
                select(table.c.workflow_id, table.c.schedule_id).where(table.c.schedule_id.in_(chunk))
            )
        }
    return set(_link_rows(conn))


def _link_rows(conn: Connection) -> list[tuple[str, str]]:
    """(workflow_id, schedule_id) of every linker row, the id as canonical text."""
    if conn.dialect.name == "postgresql":  # the server's uuid text is canonical: no UUID objects per row
        return _fetch_all(conn, "SELECT workflow_id::text, schedule_id FROM workflows_apscheduler_jobs")
    rows = _fetch_all(conn, "SELECT workflow_id, schedule_id FROM workflows_apscheduler_jobs")
    return [(_uuid_text(w), s) for w, s in rows]


def ledger_exists(conn: Connection) -> bool:
    return LEDGER_TABLE in table_names(conn)


def read_ledger(conn: Connection) -> list[LedgerEntry]:
    """All ledger rows, every namespace (the planner needs to know what others own)."""
    return _ledger_entries(conn) if ledger_exists(conn) else []


def ledger_has_source(conn: Connection) -> bool:
    """Whether the ledger has its `source` column (migration 0003); a dry run never migrates, so it may not."""
    return any(c["name"] == "source" for c in inspect(conn).get_columns(LEDGER_TABLE))


def _ledger_entries(conn: Connection) -> list[LedgerEntry]:
    columns = (
        "namespace, key, schedule_id, workflow_name, spec_hash, row_hash, enabled, protect, "
        "source_path, source_line, applied_commit, applied_author, applied_at, "
    ) + ("source" if ledger_has_source(conn) else "NULL")
    rows = _fetch_all(conn, f"SELECT {columns} FROM {LEDGER_TABLE}")
    if conn.dialect.name == "postgresql":  # booleans and timestamps arrive typed
        return [LedgerEntry(*row) for row in rows]
    entries = []
    for row in rows:  # SQLite hands back 0/1 and text
        ns, key, sid, wf, spec, rh, enabled, protect, path, line, commit, author, at, source = row
        at = datetime.fromisoformat(at) if isinstance(at, str) else at
        entries.append(
            LedgerEntry(
                ns, key, sid, wf, spec, rh, bool(enabled), bool(protect), path, line, commit, author, at, source
            )
        )
    return entries


def absent_keys(conn: Connection, namespace: str) -> frozenset[str]:
    """Ledger keys of `namespace` that are enabled but have no job row (e.g. a `date` job that fired).

    Read before the files are validated, so a fired one-off schedule is "completed", not an error.
    """
    if not ledger_exists(conn) or not has_schedule_tables(conn):
        return frozenset()
    # The anti-join runs in the database: only the (few) absent keys travel, not every id and ledger row.
    rows = conn.execute(
        text(
            f"SELECT l.key FROM {LEDGER_TABLE} l WHERE l.namespace = :ns AND l.enabled "
            "AND NOT EXISTS (SELECT 1 FROM apscheduler_jobs j WHERE j.id = l.schedule_id)"
        ),
        {"ns": namespace},
    )
    return frozenset(row[0] for row in rows)


ExpectRows = Callable[[Sequence[LedgerEntry], Sequence[Workflow]], Mapping[str, ExpectedRow]]


def read_live_state(conn: Connection, *, expect: ExpectRows | None = None) -> LiveState:
    """One read of ledger, workflows and jobs, every job_state decoded (call inside a transaction).

    `expect` (e.g. the planner's `expected_rows` for a desired set) names, from the ledger and workflows,
    the rows expected unchanged: those that match are read as digests only, so a no-op plan of 10,000
    schedules moves and unpickles no job_state.
    """
    names = table_names(conn)  # one catalog query for the three questions below
    has_ledger = LEDGER_TABLE in names
    ledger_rows = tuple(_ledger_entries(conn)) if has_ledger else ()
    if not names >= SCHEDULE_TABLES:
        if not is_sqlite(conn):  # the embedded SQLite default gets its tables on the first apply
            require_schedule_tables(conn, names)
        return LiveState((), ledger_rows, (), has_ledger)
    workflow_rows = tuple(read_workflows(conn))
    expected = expect(ledger_rows, workflow_rows) if expect is not None else None
    return LiveState(tuple(read_jobs(conn, expected)), ledger_rows, workflow_rows, has_ledger)


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
