"""Reading the live state with plain SQL over a DB-API connection: one set of reads for every command.

An apply reads through SQLAlchemy's connection, inside its transaction (`Reader.of(conn)`); a dry run reads
through a bare read-only `sqlite3` or `psycopg` connection (`open_read_only`), so it never imports
SQLAlchemy, whose import alone takes longer than validating a small directory. The SQL is the same either
way; only the placeholders differ (`?` here, `%s` for psycopg).

Rows of `apscheduler_jobs` are read raw (never through APScheduler's SQLAlchemyJobStore, which deletes rows
it cannot restore) and decoded here by the allow-list unpickler of `jobstate`.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from reconciler import deadline
from reconciler.database_url import TARGET_ATTRIBUTE, absolute_db_url, label_error, redact_url
from reconciler.exit_codes import CommandError
from reconciler.jobstate import UnreadableJobState, load_job_state, state_digest
from reconciler.state import ExpectedRow, LedgerEntry, LiveJob, LiveState, Workflow

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from reconciler.plan import Plan, PlanSettings
    from reconciler.spec import DesiredSchedule

LEDGER_TABLE = "reconciler_ledger"
SCHEDULE_TABLES = frozenset({"workflows", "apscheduler_jobs", "workflows_apscheduler_jobs"})
SOME_ROWS = 5000  # up to this many ids are looked up by id; beyond, reading the whole table is cheaper

# orchestrator-core's own task workflows, seeded into the embedded database so the bundled examples work.
CORE_TASKS: tuple[tuple[str, str], ...] = (
    ("task_clean_up_tasks", "Clean up old tasks"),
    ("task_resume_workflows", "Resume all workflows that are stuck on tasks with the status 'waiting'"),
    ("task_validate_products", "Validate products"),
    ("task_validate_product_type", "Validate all subscriptions of Product Type"),
    ("task_validate_subscriptions", "Validate subscriptions"),
    ("task_validate_awaiting_callbacks", "Validate awaiting callbacks"),
)

# The DB-API errors a read can raise, by dotted path: only the drivers already imported can have raised one.
DATABASE_ERRORS = ("sqlalchemy.exc.SQLAlchemyError", "sqlite3.Error", "psycopg.Error")


def is_database_error(exc: BaseException) -> bool:
    """Whether `exc` came from the database (through SQLAlchemy or straight from a driver)."""
    for dotted in DATABASE_ERRORS:
        module, _, name = dotted.rpartition(".")
        kind = getattr(sys.modules.get(module), name, None)
        if isinstance(kind, type) and isinstance(exc, kind):
            return True
    return False


class Reader:
    """A DB-API connection (opened on first use) and its dialect: all the reads below need."""

    def __init__(self, dialect: str, connect: Callable[[], Any], target: str) -> None:
        self.dialect = dialect  # "sqlite" | "postgresql"
        self.target = target  # the database as the user named it (password masked), for messages
        self._connect = connect
        self._connection: Any = None

    @classmethod
    def of(cls, conn: Connection) -> Reader:
        """The driver connection under a SQLAlchemy connection: reads run inside its transaction."""
        driver = conn.connection.driver_connection
        engine = conn.engine
        target = getattr(engine, TARGET_ATTRIBUTE, None) or redact_url(engine.url.render_as_string(hide_password=True))
        return cls(conn.dialect.name, lambda: driver, str(target))

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgresql"

    @property
    def connection(self) -> Any:
        if self._connection is None:
            try:
                self._connection = self._connect()
            except Exception as exc:
                label_error(exc, self.target, connecting=True)
                raise
        return self._connection

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows of one statement; `?` marks a parameter. A database error names this database."""
        cursor = self.connection.cursor()
        try:
            if params is None:
                cursor.execute(sql)
            else:
                cursor.execute(sql.replace("?", "%s") if self.postgres else sql, tuple(params))
            return list(cursor.fetchall())
        except Exception as exc:
            if getattr(exc, TARGET_ATTRIBUTE, None) is None:
                label_error(exc, self.target, connecting=False)
            raise
        finally:
            cursor.close()

    @contextmanager
    def transaction(self) -> Iterator[Reader]:
        """One read transaction (one snapshot) on a connection of our own; rolled back, it wrote nothing."""
        if not self.postgres:
            self.rows("BEGIN")  # sqlite3 with isolation_level=None: we say where the transaction is
        try:
            yield self
        finally:
            if self._connection is not None:
                self._connection.rollback() if self.postgres else self.rows("ROLLBACK")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def open_read_only(url: str, *, timeout: float = 30.0) -> Reader | None:
    """A read-only reader for `url` without SQLAlchemy; None for a URL only SQLAlchemy's engine understands.

    As `store.connect(read_only=True)`: SQLite opens the file with mode=ro (a file that does not exist reads
    as empty, it is not created); PostgreSQL runs read-only transactions.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "?" in rest:
        return None  # no scheme, or query options: SQLAlchemy's own URL rules decide those
    target = redact_url(absolute_db_url(url))
    if scheme in ("sqlite", "sqlite+pysqlite"):
        return _sqlite_reader(rest.removeprefix("/"), timeout, target)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        conninfo = f"postgresql://{rest}"

        def connect_postgres() -> Any:
            import psycopg

            connection = psycopg.connect(conninfo, **deadline.pg_connect_args({}, read_only=True))
            deadline.track(connection)
            return connection

        return Reader("postgresql", connect_postgres, target)
    return None


def _sqlite_reader(database: str, timeout: float, target: str) -> Reader:
    import sqlite3

    def connect_sqlite() -> Any:
        if database in ("", ":memory:") or not Path(database).exists():
            return sqlite3.connect(":memory:", isolation_level=None)
        target = f"file:{quote(str(Path(database).resolve()))}?mode=ro"
        connection = sqlite3.connect(target, uri=True, timeout=timeout, isolation_level=None)
        deadline.track(connection)
        return connection

    return Reader("sqlite", connect_sqlite, target)


def missing_tables_message(target: str) -> str:
    """The one line every command that needs orchestrator-core's tables says when they are not there."""
    return (
        f"{target} has no orchestrator-core schedule tables ({', '.join(sorted(SCHEDULE_TABLES))}): "
        "run orchestrator-core's migrations on it first (python main.py db upgrade heads), "
        "or point --db / $DATABASE_URI at orchestrator-core's database"
    )


class MissingScheduleTables(CommandError):
    """A database without orchestrator-core's schedule tables, where a command needs them."""


# -- the reads -----------------------------------------------------------------------------------------------


def table_names(reader: Reader) -> set[str]:
    """The tables of the default schema (as SQLAlchemy's inspector lists them)."""
    if reader.postgres:
        sql = (
            "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite~_%' ESCAPE '~'"
    return {row[0] for row in reader.rows(sql)}


def is_orchestrator_database(reader: Reader) -> bool:
    """True when orchestrator-core's migrations manage this database (its alembic_version has rows)."""
    if "alembic_version" not in table_names(reader):
        return False
    return int(reader.rows("SELECT count(*) FROM alembic_version")[0][0]) > 0


def _uuid_text(value: Any) -> str:
    # psycopg hands back uuid.UUID; SQLite stores SQLAlchemy's Uuid as 32 hex digits without dashes.
    return str(value) if isinstance(value, uuid.UUID) else str(uuid.UUID(str(value)))


def _in_code_point_order(reader: Reader) -> str:
    # Rows come back sorted as Python sorts str, so the planner's own sorts meet sorted input (linear).
    return ' COLLATE "C"' if reader.postgres else ""  # SQLite's default is binary order


def _batches(values: Iterable[str], size: int = 500) -> Iterator[list[str]]:
    """`values` in lists of `size`: one IN (...) per list keeps every statement within SQLite's parameter limit."""
    listed = list(values)
    for start in range(0, len(listed), size):
        yield listed[start : start + size]


def _marks(chunk: Sequence[Any]) -> str:
    return ", ".join("?" * len(chunk))


def read_workflows(reader: Reader) -> list[Workflow]:
    """Every row of `workflows` (soft-deleted ones flagged)."""
    workflow_id = "workflow_id::text" if reader.postgres else "workflow_id"
    rows = reader.rows(f"SELECT {workflow_id}, name, description, is_task, deleted_at IS NOT NULL FROM workflows")
    return [Workflow(_uuid_text(w), name, d or "", bool(task), bool(deleted)) for w, name, d, task, deleted in rows]


def read_jobs(reader: Reader, expected: Mapping[str, ExpectedRow] | None = None) -> list[LiveJob]:
    """Every `apscheduler_jobs` row with the workflow ids linked to it, sorted by id, job_state decoded.

    A row that matches its `expected` entry (what our ledger recorded for an unchanged spec) is listed
    by its digest only: on PostgreSQL its job_state never crosses the wire (the database computes the
    digest), elsewhere it is not unpickled. Every other row is read whole and decoded here.
    """
    links = _links_by_job(reader)
    known = expected or {}
    if known and reader.postgres:
        return jobs_from_hashes(reader, read_row_hashes(reader), links, known)
    return _read_whole(reader, links, known)


def _read_whole(
    reader: Reader, links: Mapping[str, tuple[str, ...]], expected: Mapping[str, ExpectedRow]
) -> list[LiveJob]:
    """Every job row read whole, in id order; those that match `expected` are not unpickled."""
    order = _in_code_point_order(reader)
    found = []
    for i, n, b in reader.rows(f"SELECT id, next_run_time, job_state FROM apscheduler_jobs ORDER BY id{order}"):
        blob = bytes(b)
        job = LiveJob(i, n, links.get(i, ()), state_digest(blob))
        found.append(job if _as_expected(job, expected) else _decoded(job, blob))
    return found


RowHashes = list[tuple[str, float | None, str, str | None]]  # id, next_run_time, job_state digest, row hash


def read_row_hashes(reader: Reader) -> RowHashes:
    """PostgreSQL: (id, next_run_time, job_state digest, row hash or None) of every job row, in id order,
    all computed by the server: no job_state crosses the wire."""
    return reader.rows(f"{PG_ROW_HASHES} ORDER BY id{_in_code_point_order(reader)}")


def jobs_from_hashes(
    reader: Reader, hashes: RowHashes, links: Mapping[str, tuple[str, ...]], expected: Mapping[str, ExpectedRow]
) -> list[LiveJob]:
    """The job rows of `read_row_hashes`: those that match `expected` by their digests only, every other
    one read again whole through `reader` and decoded."""
    jobs: dict[str, LiveJob] = {}
    whole = []
    for i, n, d, h in hashes:
        # A hash the server spelled differently only misses: the row is then read whole and rebuilt.
        job = LiveJob(i, n, links.get(i, ()), d) if h is None else LiveJob.hashed(i, n, links.get(i, ()), d, h)
        jobs[i] = job
        if not _as_expected(job, expected):
            whole.append(i)
    return list(_with_states(reader, jobs, whole).values())


def _as_expected(job: LiveJob, expected: Mapping[str, ExpectedRow]) -> bool:
    wanted = expected.get(job.id)
    return wanted is not None and wanted.matches(job.row_hash, job.workflow_ids)


def _decoded(job: LiveJob, blob: bytes) -> LiveJob:
    """`job` with its job_state decoded by the allow-list unpickler; a failure is data (`unreadable`), not an error."""
    try:
        return replace(job, state=load_job_state(blob))
    except UnreadableJobState as exc:
        return replace(job, unreadable=str(exc))


def _links_by_job(reader: Reader) -> dict[str, tuple[str, ...]]:
    """schedule_id → its workflow ids, sorted."""
    by_job: dict[str, list[str]] = {}
    for w, s in _link_rows(reader):
        linked = by_job.get(s)
        if linked is None:
            by_job[s] = [w]
        else:
            linked.append(w)
    # Nearly every row has one link: only the others need a sort.
    return {s: (ws[0],) if len(ws) == 1 else tuple(sorted(ws)) for s, ws in by_job.items()}


def _with_states(reader: Reader, jobs: dict[str, LiveJob], ids: Sequence[str]) -> dict[str, LiveJob]:
    """`jobs` (in their order) with the rows `ids` read whole. Each is rebuilt from this second read alone
    (column, pickle and digest agree even if the scheduler wrote it in between); a row deleted meanwhile
    is dropped. Linker rows are kept from the first read."""
    if not ids:  # a no-op plan: every row matched by its digest
        return jobs
    fetched: dict[str, LiveJob] = {}
    for chunk in _batches(ids):
        sql = f"SELECT id, next_run_time, job_state FROM apscheduler_jobs WHERE id IN ({_marks(chunk)})"
        for i, n, b in reader.rows(sql, chunk):
            blob = bytes(b)
            fetched[i] = _decoded(LiveJob(i, n, jobs[i].workflow_ids, state_digest(blob)), blob)
    wanted = set(ids)
    return {i: fetched.get(i, job) for i, job in jobs.items() if i not in wanted or i in fetched}


def reread_jobs(reader: Reader, live: LiveState, ids: Iterable[str]) -> LiveState:
    """`live` with the rows `ids` read again, whole (a row deleted meanwhile is dropped)."""
    jobs = {j.id: j for j in live.jobs}
    return replace(live, jobs=tuple(_with_states(reader, jobs, [i for i in ids if i in jobs]).values()))


# Python's repr() of a next_run_time, spelled by PostgreSQL: 'None'; an integral value below 1e15 as float8's
# text (plain digits, '-0' too) and '.0'; else float8's text, the shortest exact spelling as repr's is (with
# extra_float_digits >= 1, the default). Where the spellings differ (inf, nan, exponents) the hash misses and
# the row is read whole: a miss costs time, never a wrong verdict. Lossy output (extra_float_digits < 1): NULL.
PG_FLOAT_REPR = (
    "CASE WHEN next_run_time IS NULL THEN 'None' "
    "WHEN current_setting('extra_float_digits')::int < 1 THEN NULL "
    "WHEN next_run_time = trunc(next_run_time) AND abs(next_run_time) < 1e15 "
    "THEN next_run_time::text || '.0' "
    "ELSE next_run_time::text END"
)
# id, next_run_time, sha256 hex of job_state and `state.row_hash` of the two, all computed by the server.
PG_ROW_HASHES = (
    "SELECT id, next_run_time, d, encode(sha256(convert_to(d || '|' || repr, 'UTF8')), 'hex') FROM ("
    f"SELECT id, next_run_time, encode(sha256(job_state), 'hex') AS d, {PG_FLOAT_REPR} AS repr "
    "FROM apscheduler_jobs) AS hashed"
)


def read_row_digests(reader: Reader, ids: Collection[str] | None = None) -> dict[str, tuple[float | None, str]]:
    """id → (next_run_time column, sha256 hex of job_state) for every job row (in id order), or for the rows `ids`.

    PostgreSQL computes the digests itself, so neither a plan nor the check after an apply moves the pickles.
    """
    state = "encode(sha256(job_state), 'hex')" if reader.postgres else "job_state"
    if ids is not None and len(ids) <= SOME_ROWS:
        rows = [
            row
            for chunk in _batches(ids)
            for row in reader.rows(
                f"SELECT id, next_run_time, {state} FROM apscheduler_jobs WHERE id IN ({_marks(chunk)})", chunk
            )
        ]
    else:
        order = _in_code_point_order(reader)
        rows = reader.rows(f"SELECT id, next_run_time, {state} FROM apscheduler_jobs ORDER BY id{order}")
    if reader.postgres:
        return {i: (n, d) for i, n, d in rows}
    return {i: (n, state_digest(bytes(b))) for i, n, b in rows}


def read_links(reader: Reader, schedule_ids: Collection[str] | None = None) -> set[tuple[str, str]]:
    """Every (workflow_id, schedule_id) linker row, or those of `schedule_ids`; ids as canonical strings."""
    if schedule_ids is not None and len(schedule_ids) <= SOME_ROWS:
        workflow_id = "workflow_id::text" if reader.postgres else "workflow_id"
        return {
            (_uuid_text(w), s)
            for chunk in _batches(schedule_ids)
            for w, s in reader.rows(
                f"SELECT {workflow_id}, schedule_id FROM workflows_apscheduler_jobs "
                f"WHERE schedule_id IN ({_marks(chunk)})",
                chunk,
            )
        }
    return set(_link_rows(reader))


def _link_rows(reader: Reader) -> list[tuple[str, str]]:
    """(workflow_id, schedule_id) of every linker row, the id as canonical text."""
    if reader.postgres:  # the server's uuid text is canonical: no UUID objects per row
        return [(w, s) for w, s in reader.rows("SELECT workflow_id::text, schedule_id FROM workflows_apscheduler_jobs")]
    rows = reader.rows("SELECT workflow_id, schedule_id FROM workflows_apscheduler_jobs")
    return [(_uuid_text(w), s) for w, s in rows]


def read_ledger(reader: Reader) -> list[LedgerEntry]:
    """All ledger rows, every namespace (the planner needs to know what others own)."""
    return _ledger_entries(reader) if LEDGER_TABLE in table_names(reader) else []


def ledger_has_source(reader: Reader) -> bool:
    """Whether the ledger has its `source` column (migration 0003); a dry run never migrates, so it may not."""
    if reader.postgres:
        sql = (
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_schema = current_schema() AND table_name = '{LEDGER_TABLE}'"
        )
        names = {row[0] for row in reader.rows(sql)}
    else:
        names = {row[1] for row in reader.rows(f"PRAGMA table_info({LEDGER_TABLE})")}
    return "source" in names


def _ledger_entries(reader: Reader) -> list[LedgerEntry]:
    columns = (
        "namespace, key, schedule_id, workflow_name, spec_hash, row_hash, enabled, protect, "
        "source_path, source_line, applied_commit, applied_author, applied_at, "
    ) + ("source" if ledger_has_source(reader) else "NULL")
    order = _in_code_point_order(reader)  # as the plan's fingerprint sorts them: its sort then only checks
    rows = reader.rows(f"SELECT {columns} FROM {LEDGER_TABLE} ORDER BY namespace{order}, key{order}")
    if reader.postgres:  # booleans and timestamps arrive typed
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


def absent_keys(reader: Reader, namespace: str) -> frozenset[str]:
    """Ledger keys of `namespace` that are enabled but have no job row (e.g. a `date` job that fired).

    Read before the files are validated, so a fired one-off schedule is "completed", not an error.
    """
    names = table_names(reader)
    if LEDGER_TABLE not in names or not names >= SCHEDULE_TABLES:
        return frozenset()
    # The anti-join runs in the database: only the (few) absent keys travel, not every id and ledger row.
    rows = reader.rows(
        f"SELECT l.key FROM {LEDGER_TABLE} l WHERE l.namespace = ? AND l.enabled "
        "AND NOT EXISTS (SELECT 1 FROM apscheduler_jobs j WHERE j.id = l.schedule_id)",
        (namespace,),
    )
    return frozenset(row[0] for row in rows)


ExpectRows = Callable[[Sequence[LedgerEntry], Sequence[Workflow]], Mapping[str, ExpectedRow]]


def read_live_state(reader: Reader, *, expect: ExpectRows | None = None) -> LiveState:
    """One read of ledger, workflows and jobs, every job_state decoded (call inside a transaction).

    `expect` (e.g. the planner's `expected_rows` for a desired set) names, from the ledger and workflows,
    the rows expected unchanged: those that match are read as digests only, so a no-op plan of 10,000
    schedules moves and unpickles no job_state.
    """
    has_ledger, ledger_rows, workflow_rows = _ledger_and_workflows(reader)
    if workflow_rows is None:
        return LiveState((), ledger_rows, (), has_ledger)
    expected = expect(ledger_rows, workflow_rows) if expect is not None else None
    return LiveState(tuple(read_jobs(reader, expected)), ledger_rows, workflow_rows, has_ledger)


def _ledger_and_workflows(reader: Reader) -> tuple[bool, tuple[LedgerEntry, ...], tuple[Workflow, ...] | None]:
    """(whether the ledger exists, its rows, the workflows); no workflows (None) in an embedded SQLite
    database without orchestrator-core's tables yet, which get made on its first apply. On PostgreSQL,
    tables missing are an error: orchestrator-core's migrations make them."""
    names = table_names(reader)  # one catalog query for both questions
    has_ledger = LEDGER_TABLE in names
    ledger_rows = tuple(_ledger_entries(reader)) if has_ledger else ()
    if not names >= SCHEDULE_TABLES:
        if reader.postgres:
            raise MissingScheduleTables(missing_tables_message(reader.target))
        return has_ledger, ledger_rows, None
    return has_ledger, ledger_rows, tuple(read_workflows(reader))


@dataclass(frozen=True)
class LiveSnapshot:
    """PostgreSQL's live state as one read returns it before any desired schedule is known: ledger,
    workflows, linker rows and every job row's digests. `live_state_of` finishes it for a desired set.

    Plain values (it crosses a pipe: see read_ahead.py)."""

    ledger_exists: bool
    ledger: tuple[LedgerEntry, ...]
    workflows: tuple[Workflow, ...]
    links: dict[str, tuple[str, ...]]
    row_hashes: RowHashes


def read_snapshot(reader: Reader) -> LiveSnapshot:
    """PostgreSQL: ledger, workflows, links and row digests in one transaction (call inside one)."""
    if not reader.postgres:
        raise ValueError("a snapshot reads PostgreSQL only (its row digests are the server's)")
    has_ledger, ledger_rows, workflows = _ledger_and_workflows(reader)
    assert workflows is not None  # PostgreSQL without the tables has raised
    return LiveSnapshot(has_ledger, ledger_rows, workflows, _links_by_job(reader), read_row_hashes(reader))


def live_state_of(reader: Reader, snapshot: LiveSnapshot, expect: ExpectRows) -> LiveState:
    """The live state from `snapshot`: rows that match `expect` as digests, every other one read whole
    through `reader` (a connection is opened only then)."""
    expected = expect(snapshot.ledger, snapshot.workflows)
    if expected:
        jobs = jobs_from_hashes(reader, snapshot.row_hashes, snapshot.links, expected)
    else:  # nothing to keep as digests: one read of every row beats looking each up by id
        jobs = _read_whole(reader, snapshot.links, expected)
    return LiveState(tuple(jobs), snapshot.ledger, snapshot.workflows, snapshot.ledger_exists)


# -- reading to plan -----------------------------------------------------------------------------------------


def read_and_plan(
    reader: Reader,
    desired: Sequence[DesiredSchedule],
    settings: PlanSettings,
    now: datetime,
    snapshot: LiveSnapshot | None = None,
) -> tuple[LiveState, Plan]:
    """Read the live state (or finish `snapshot`, read ahead) and plan it. Rows still as our ledger recorded
    them for an unchanged spec are read as digests only (the planner's own `expected_rows` names them);
    every other row arrives decoded."""
    from reconciler.plan import compute_plan, expected_rows  # the planner: only a plan needs it, not `health`

    def expect(ledger: Sequence[LedgerEntry], workflows: Sequence[Workflow]) -> Mapping[str, ExpectedRow]:
        return expected_rows(desired, ledger, workflows, settings)

    live = read_live_state(reader, expect=expect) if snapshot is None else live_state_of(reader, snapshot, expect)
    return live, compute_plan(desired, live, settings, now)


def dry_run_plan(
    reader: Reader,
    desired: Sequence[DesiredSchedule],
    settings: PlanSettings,
    now: datetime,
    snapshot: LiveSnapshot | None = None,
) -> Plan:
    """The plan without writing anything (no migration, no ledger, no lock): safe for a read-only role.

    `snapshot`: PostgreSQL's live state already read (read_ahead.py). An embedded SQLite database without
    tables yet is planned as the apply will find it: with core's tasks.
    """
    if snapshot is not None:
        return read_and_plan(reader, desired, settings, now, snapshot)[1]
    if not reader.postgres and not table_names(reader) >= SCHEDULE_TABLES:
        from reconciler.plan import compute_plan

        live = replace(read_live_state(reader), workflows=embedded_workflows())
        return compute_plan(desired, live, settings, now)
    return read_and_plan(reader, desired, settings, now)[1]


def embedded_workflows() -> tuple[Workflow, ...]:
    """What the apply seeds into an empty embedded database, so its dry run plans honestly."""
    return tuple(
        Workflow(f"00000000-0000-0000-0000-{i:012d}", n, d, True, False) for i, (n, d) in enumerate(CORE_TASKS)
    )
