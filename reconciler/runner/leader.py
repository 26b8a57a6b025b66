"""One active runner per database, and how the active one hears about changes.

PostgreSQL: a session advisory lock on a dedicated connection. The server drops it the moment that
connection ends (a killed process included), so a standby polling `pg_try_advisory_lock` takes over
within one poll. The same connection LISTENs on `reconciler_schedules_changed` (apply NOTIFYs after
its commit), so a change reaches the scheduler in milliseconds; a broken connection means the lock
is gone too, and the runner stops starting workflows at once.

SQLite: a lease row in `reconciler_runner_lease`, renewed every lease/4 seconds in a BEGIN IMMEDIATE
transaction. A standby takes the row over once it has expired. The leader trusts its lease only until
`renewal start + lease - margin` on its own monotonic clock, so a stalled leader stops before anyone
else can start. Changes are seen by polling `PRAGMA data_version` on the same dedicated connection
(it moves when any *other* connection commits), which costs no table read.

Either way, `fence(conn)` re-checks leadership inside the job store's write transaction, so a runner
that lost the lock cannot advance a job (and so cannot start it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine, make_url

from reconciler.apply import NOTIFY_CHANNEL
from reconciler.store import LEASE_TABLE, runner_lease

LEASE_NAME = "runner"
RUNNER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"reconciler runner").digest()[:8], "big", signed=True)


class LeadershipLost(Exception):
    """The lock or lease is gone: stop starting workflows now."""


def holder_id() -> str:
    """This process, as named in the lease: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leader(Protocol):
    """The leader lock of one database, and the change signal that comes with it."""

    holder: str

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never blocks for long."""

    def watch(self, timeout: float) -> bool:
        """Wait up to `timeout` for a change; True when something changed. Raises LeadershipLost."""

    def valid(self) -> bool:
        """Whether this runner may still start workflows (cheap; called before every start)."""

    def fence(self, conn: Connection) -> bool:
        """Inside a write transaction on `conn`: is this runner still the leader?"""

    def release(self) -> None:
        """Give the lock up (a standby takes over at once) and close the dedicated connection."""


class PostgresLeader:
    """Session advisory lock + LISTEN on one dedicated autocommit connection."""

    def __init__(self, engine: Engine, heartbeat: float = 2.0) -> None:
        self.holder = holder_id()
        self._engine = engine
        self._heartbeat = heartbeat
        self._raw: Any = None  # the pool's wrapper: keeps the connection checked out while we lead
        self._conn: Any = None  # psycopg.Connection
        self._backend_pid: int | None = None
        self._healthy = False
        self._last_beat = 0.0

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._raw = self._engine.raw_connection()
            conn = self._raw.driver_connection
            conn.rollback()
            conn.autocommit = True
            self._conn = conn
        return self._conn

    def try_acquire(self) -> bool:
        """pg_try_advisory_lock on the dedicated connection; then LISTEN."""
        try:
            conn = self._connection()
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (RUNNER_LOCK_KEY,)).fetchone()[0]
            if not got:
                return False
            self._backend_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except Exception:
            self._discard()
            raise
        self._healthy = True
        self._last_beat = time.monotonic()
        return True

    def watch(self, timeout: float) -> bool:
        """Wait for NOTIFYs; a dead connection means the lock is gone."""
        if not self._healthy or self._conn is None:
            raise LeadershipLost("the lock connection is closed")
        changed = False
        try:
            for _ in self._conn.notifies(timeout=timeout):
                changed = True
                break  # one is enough: the scheduler re-reads everything
            if changed:  # drain the burst an apply can produce without waking twice
                for _ in self._conn.notifies(timeout=0):
                    pass
            if time.monotonic() - self._last_beat >= self._heartbeat:
                self._conn.execute("SELECT 1")
                self._last_beat = time.monotonic()
        except Exception as exc:
            self._healthy = False
            self._discard()
            raise LeadershipLost(f"the lock connection failed: {type(exc).__name__}") from None
        return changed

    def valid(self) -> bool:
        """True while the lock connection has not failed."""
        return self._healthy

    def fence(self, conn: Connection) -> bool:
        """Our lock session still holds the advisory lock (pg_locks), seen from the writing session."""
        if not self._healthy or self._backend_pid is None:
            return False
        held = conn.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = :pid"),
            {"pid": self._backend_pid},
        ).scalar_one()
        return bool(held)

    def release(self) -> None:
        """Unlock and close; the standby's next poll gets the lock."""
        if self._conn is not None and not self._conn.closed and self._healthy:
            with contextlib.suppress(Exception):  # closing the session releases it anyway
                self._conn.execute("SELECT pg_advisory_unlock_all()")
        self._healthy = False
        self._discard()

    def _discard(self) -> None:
        raw, self._raw, self._conn = self._raw, None, None
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.invalidate()  # never hand a session that may hold the lock back to the pool


def sqlite_path(url: str) -> Path:
    """The file of a sqlite:/// URL; the runner needs a file other processes can share."""
    database = make_url(url).database or ""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise ValueError("the runner needs a SQLite file shared with `schedules reconcile`, not an in-memory database")
    return Path(database)


class SqliteLeader:
    """A lease row renewed on a dedicated sqlite3 connection, which also polls PRAGMA data_version."""

    def __init__(self, url: str, lease_seconds: float = 10.0) -> None:
        if lease_seconds < 1:
            raise ValueError("the lease must be at least 1 second")
        self.holder = holder_id()
        self.lease = lease_seconds
        self._path = sqlite_path(url)
        self._conn: sqlite3.Connection | None = None
        self._valid_until = 0.0  # monotonic
        self._next_renewal = 0.0  # monotonic
        self._data_version: int | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # A short busy timeout: waiting longer than the lease's margin would be pointless.
            self._conn = sqlite3.connect(
                str(self._path), timeout=max(0.5, self.lease / 4), isolation_level=None, check_same_thread=False
            )
        return self._conn

    def _margin(self) -> float:
        return max(0.5, self.lease / 4)

    def try_acquire(self) -> bool:
        """Take the lease row when it is missing, expired, or already ours."""
        conn = self._connection()
        started = time.monotonic()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False  # someone is writing; try again at the next poll
        try:
            now = time.time()
            row = conn.execute(f"SELECT holder, expires_at FROM {LEASE_TABLE} WHERE name = ?", (LEASE_NAME,)).fetchone()
            if row is not None and row[0] != self.holder and row[1] > now:
                conn.execute("ROLLBACK")
                return False
            conn.execute(
                f"INSERT INTO {LEASE_TABLE} (name, holder, acquired_at, renewed_at, expires_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at, "
                "renewed_at = excluded.renewed_at, expires_at = excluded.expires_at",
                (LEASE_NAME, self.holder, now, now, now + self.lease),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._valid_until = started + self.lease - self._margin()
        self._next_renewal = started + self.lease / 4
        self._data_version = self._read_data_version()
        return True

    def _renew(self) -> None:
        conn = self._connection()
        started = time.monotonic()
        try:
            conn.execute("BEGIN IMMEDIATE")
            now = time.time()
            cursor = conn.execute(
                f"UPDATE {LEASE_TABLE} SET renewed_at = ?, expires_at = ? WHERE name = ? AND holder = ?",
                (now, now + self.lease, LEASE_NAME, self.holder),
            )
            conn.execute("COMMIT")
        except sqlite3.OperationalError:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._next_renewal = time.monotonic() + 0.2  # busy: retry soon, the validity window decides
            return
        if cursor.rowcount != 1:
            self._valid_until = 0.0
            raise LeadershipLost("the lease was taken over by another runner")
        self._valid_until = started + self.lease - self._margin()
        self._next_renewal = started + self.lease / 4

    def _read_data_version(self) -> int:
        value = self._connection().execute("PRAGMA data_version").fetchone()[0]
        return int(value)

    def watch(self, timeout: float) -> bool:
        """Sleep `timeout`, renew the lease when due, and report whether another connection committed."""
        time.sleep(timeout)
        if time.monotonic() >= self._next_renewal:
            self._renew()
        if not self.valid():
            raise LeadershipLost("the lease could not be renewed in time")
        version = self._read_data_version()
        changed = version != self._data_version
        self._data_version = version
        return changed

    def valid(self) -> bool:
        """True until the lease, as last renewed, is about to run out."""
        return time.monotonic() < self._valid_until

    def fence(self, conn: Connection) -> bool:
        """The lease row still names this runner and has not expired (inside the writer's transaction)."""
        if not self.valid():
            return False
        row = conn.execute(
            select(runner_lease.c.holder, runner_lease.c.expires_at).where(runner_lease.c.name == LEASE_NAME)
        ).first()
        return row is not None and row.holder == self.holder and row.expires_at > time.time()

    def release(self) -> None:
        """Delete our lease row so a standby takes over at its next poll."""
        conn = self._conn
        self._valid_until = 0.0
        if conn is None:
            return
        try:
            conn.execute(f"DELETE FROM {LEASE_TABLE} WHERE name = ? AND holder = ?", (LEASE_NAME, self.holder))
        except sqlite3.Error:
            pass  # it expires on its own
        finally:
            conn.close()
            self._conn = None


def make_leader(url: str, engine: Engine, *, lease_seconds: float) -> Leader:
    """The leader lock that fits the database behind `engine`."""
    if engine.dialect.name == "sqlite":
        return SqliteLeader(url, lease_seconds)
    if engine.dialect.name == "postgresql":
        return PostgresLeader(engine)
    raise ValueError(f"the runner supports SQLite and PostgreSQL, not {engine.dialect.name}")
