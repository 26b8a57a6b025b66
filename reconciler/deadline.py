"""`--timeout`: a command that touches the database ends within its bound, even against a frozen server.

A server stopped by SIGSTOP still has a kernel that accepts connections and acknowledges TCP keepalives,
and it cannot enforce its own statement_timeout: only the client can give up. So each bounded command
runs with a watchdog thread. When the bound expires it shuts down the socket of every database connection
the process opened (the blocked call in the main thread fails at once, and the server, when it resumes,
sees a closed connection and rolls the transaction back) and interrupts SQLite connections; the command
then fails with `DatabaseTimeout`: `database did not answer within 300 s; nothing was applied` (the end
of the line follows how far an apply got, see interrupts.py). Should the main thread still not come back
(blocked where no socket reaches it, e.g. in a connection attempt), the watchdog prints that line itself
and exits 1: at once when there was no connection to sever, else after `GRACE` seconds. Connection
attempts also have their own bound, `CONNECT_TIMEOUT` (libpq's connect_timeout, set by store.connect),
and live servers get a statement_timeout of what is left of the bound.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from reconciler import interrupts
from reconciler.exit_codes import CommandError

ENV = "RECONCILER_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
CONNECT_TIMEOUT = 10  # seconds, per connection attempt
GRACE = 2.0  # seconds the main thread gets to fail by itself once the sockets are shut


class DatabaseTimeout(CommandError):
    """The database did not answer within --timeout; the message says what was applied (exit 1)."""


_connections: weakref.WeakSet[Any] = weakref.WeakSet()
_plain: list[Any] = []  # DBAPI connections that cannot be weakly referenced
_bound: list[float] = []  # the deadline (monotonic) of the command running now, if any


def remaining() -> float | None:
    """Seconds left of the running command's bound (None: unbounded); store.connect reads it."""
    return max(0.0, _bound[-1] - time.monotonic()) if _bound else None


def track(dbapi_connection: Any, _record: Any = None) -> None:
    """Watch a DB-API connection: a bound that expires severs it. Every engine of `store.connect` calls this
    for each connection it opens (a SQLAlchemy "connect" listener); the bare connections of a dry run
    (reads.open_read_only) call it themselves, so a bound never needs SQLAlchemy imported."""
    try:
        _connections.add(dbapi_connection)
    except TypeError:
        _plain.append(dbapi_connection)


def pg_connect_args(query: Mapping[str, Any], read_only: bool) -> dict[str, Any]:
    """libpq settings that keep a dead or frozen server from hanging a command: a bound on each connection
    attempt, TCP keepalives (a vanished host is noticed), and, for a command running under --timeout, a
    statement_timeout of what is left of it (a live but stuck server cancels itself). `query` holds the
    URL's own settings, which win."""
    args: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    args = {k: v for k, v in args.items() if k not in query}
    options = ["-c default_transaction_read_only=on"] if read_only else []
    left = remaining()
    if left is not None and "options" not in query:
        options.append(f"-c statement_timeout={max(1, int(left * 1000))}")
    if options and "options" not in query:
        args["options"] = " ".join(options)
    return args


def _sever(dbapi_connection: Any) -> None:
    """Make whatever the connection is blocked in fail now."""
    pgconn = getattr(dbapi_connection, "pgconn", None)  # psycopg 3
    if pgconn is not None:
        fd = pgconn.socket
        dup = socket.socket(fileno=os.dup(fd))
        try:
            dup.shutdown(socket.SHUT_RDWR)
        finally:
            dup.close()
        return
    interrupt = getattr(dbapi_connection, "interrupt", None)  # sqlite3
    if interrupt is not None:
        interrupt()


def message(seconds: float) -> str:
    """The one line (without `error: `) for a bound of `seconds` that expired now."""
    phase = interrupts.phase()
    if phase is interrupts.Phase.COMMITTING:
        return f"database did not answer within {seconds:g} s while committing: {interrupts.outcome()}"
    if phase is interrupts.Phase.COMMITTED:
        return f"database did not answer within {seconds:g} s after the commit: {interrupts.outcome()}"
    return f"database did not answer within {seconds:g} s; nothing was applied"


@contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Run the block within `seconds` (0 or less: unbounded); raises DatabaseTimeout when it took longer."""
    if seconds <= 0:
        yield
        return
    done = threading.Event()
    expired: list[str] = []

    def watch() -> None:
        if done.wait(seconds):
            return
        expired.append(message(seconds))
        severed = 0
        for connection in [*_connections, *_plain]:
            try:
                _sever(connection)
                severed += 1
            except Exception:  # already closed, or not a socket any more: nothing to wake
                continue
        # A severed connection makes the main thread fail by itself (and report through exit_codes);
        # with none (blocked in a connection attempt, or not in the database at all) there is nothing to wait for.
        if severed and done.wait(GRACE):
            return
        os.write(2, f"error: {expired[0]}\n".encode())
        os._exit(1)

    _bound.append(time.monotonic() + seconds)
    watchdog = threading.Thread(target=watch, name="reconciler-timeout", daemon=True)
    watchdog.start()
    try:
        yield
    except BaseException as exc:
        done.set()
        if expired:
            raise DatabaseTimeout(expired[0]) from exc
        raise
    finally:
        done.set()
        _bound.pop()
    if expired:  # the command caught the severed connection's error and reported it: the bound is the cause
        raise DatabaseTimeout(expired[0])
