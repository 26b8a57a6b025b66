"""`schedules health`: expected vs started runs per schedule, missed / failed / overdue, engine paused, liveness.

Read-only (a read-only connection, no ledger migration, no lock), like `status`. How starts are attributed
to fires, and with what tolerance, is in ``reconciler.health.core``.

Exit codes: 0 healthy; 2 problems (a missed, failed or overdue run, an unreadable row, a workflow missing or
soft-deleted, the engine paused); 1 error (database unreachable, bad option).
"""

from __future__ import annotations

import gc
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler import reads
from reconciler.database_url import describe_db_error, redact_url
from reconciler.exit_codes import CommandError, CommandResult, ExitCode
from reconciler.health import render
from reconciler.health.core import HealthReport, Tolerance, assess
from reconciler.health.reading import HealthData, read_health_data

FORMATS = ("text", "json", "markdown", "prometheus")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
SINCE_MAX = timedelta(days=366)  # a window longer than this is almost surely a typo, and slow


class HealthError(CommandError):
    """A bad option or an unreachable database: one line, exit 1 (through `exit_codes`)."""


def parse_duration(text: str) -> timedelta:
    """'24h', '1m', '90s', '1h30m', '7d' → timedelta; raises HealthError with the accepted form."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not cleaned or "".join(a + u for a, u in parts) != cleaned:
        raise HealthError(f"--since {text!r}: use a duration such as 90s, 15m, 24h, 7d or 1h30m")
    total = timedelta(seconds=sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in parts))
    if total <= timedelta(0) or total > SINCE_MAX:
        raise HealthError(f"--since {text!r}: the window must be longer than 0 and at most 366d")
    return total


def parse_instant(text: str) -> datetime:
    """'2026-06-10T12:00:00Z' (ISO 8601; without an offset: UTC) → an aware datetime; raises HealthError."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise HealthError(f"--until {text!r}: use an ISO 8601 instant such as 2026-06-10T12:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:9108' or ':9108' (loopback) → (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise HealthError(f"--serve {text!r}: use HOST:PORT, e.g. 127.0.0.1:9108")
    return (host.strip("[]") or "127.0.0.1"), int(port)


@dataclass(frozen=True)
class HealthOptions:
    db_url: str
    since: timedelta = timedelta(hours=24)
    directory: Path | None = None  # schedules directory: the trigger of managed `date` jobs that fired
    fmt: str = "text"
    tolerance: Tolerance = field(default_factory=Tolerance)
    until: datetime | None = None  # the window's end; None: now (a past window re-judges, e.g., yesterday)


def collect(options: HealthOptions, *, now: datetime | None = None) -> tuple[HealthReport, list[str]]:
    """One read-only look at the database, judged at `now` (default: `--until`, else the clock); with notes."""
    moment = (now or options.until or datetime.now(UTC)).astimezone(UTC)
    since = moment - options.since
    try:
        data, notes = _read(options, since=since, now=moment)
    except Exception as exc:  # the database edge: one line (a driver's error, or SQLAlchemy's)
        if not reads.is_database_error(exc):
            raise
        raise HealthError(f"database {redact_url(options.db_url)}: {describe_db_error(exc)}") from exc
    report = assess(data.schedules, data.seen, now=moment, since=since, tolerance=options.tolerance)
    if data.seen.runs is None and data.schedules:
        notes.append("no processes table (not an orchestrator-core database): liveness only, starts not checked")
    return report, notes


def _read(options: HealthOptions, *, since: datetime, now: datetime) -> tuple[HealthData, list[str]]:
    """One read transaction over a bare read-only connection, as a dry run reads (no SQLAlchemy imported);
    a URL only SQLAlchemy understands (query options, other drivers) reads through its read-only engine."""
    reader = reads.open_read_only(options.db_url)
    if reader is not None:
        try:
            with reader.transaction():
                return read_health_data(
                    reader, since=since, now=now, directory=options.directory, early=options.tolerance.early
                )
        finally:
            reader.close()
    from reconciler import store

    engine = store.connect(options.db_url, read_only=True)
    try:
        with engine.connect() as conn, conn.begin():
            return read_health_data(
                reads.Reader.of(conn), since=since, now=now, directory=options.directory, early=options.tolerance.early
            )
    finally:
        engine.dispose()


def rendered(report: HealthReport, fmt: str) -> list[str]:
    if fmt == "json":
        return render.render_json(report)
    if fmt == "markdown":
        return render.render_markdown(report)
    if fmt == "prometheus":
        from reconciler.health import metrics  # prometheus_client, only when asked for

        return [metrics.exposition(report).rstrip("\n")]
    return render.render_text(report)


def exit_code(report: HealthReport) -> int:
    return ExitCode.OK if report.healthy else ExitCode.CHANGES  # 2: problems found


def run_health(options: HealthOptions, *, now: datetime | None = None) -> CommandResult:
    """The command: the report in the asked format on stdout, notes on stderr; raises HealthError."""
    if options.fmt not in FORMATS:
        raise HealthError(f"--format {options.fmt!r}: use one of {', '.join(FORMATS)}")
    with collector_paused():
        report, notes = collect(options, now=now)
        code, out = exit_code(report), rendered(report, options.fmt)
        del report  # freed while the collector is off: when it resumes, it has next to nothing to scan
    # The text report says "no processes table" itself; the other formats carry it as data.
    err = [f"note: {n}" for n in notes if options.fmt != "text" or "processes table" not in n]
    return CommandResult(code, out, err)


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while one report is read, judged and rendered.

    A report of 10,000 schedules allocates about two million containers (decoded jobs, runs, fires,
    verdicts, the rendered dicts), nearly all of them alive until the report is printed and freed by
    reference counting after it; the collector only scanned them, 0.15 s of a 1.6 s command even with
    `cli.tune_gc`'s thresholds. Free the report inside the block: what is still alive when the collector
    resumes is scanned at once. Cycles a report leaves are collected later, as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def serve_health(options: HealthOptions, listen: str, *, stop: threading.Event | None = None) -> int:
    """`--serve HOST:PORT`: /metrics until SIGTERM / SIGINT (or `stop`); each scrape reads the database."""
    from reconciler.health import metrics

    try:
        host, port = parse_listen(listen)
        server, thread = metrics.serve(host, port, lambda: collect(options)[0])
    except OSError as exc:  # the address is taken or not ours: one line, like any other error
        raise HealthError(f"--serve {listen}: {exc.strerror or exc}") from exc
    done = stop or threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        done.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    print(f"serving /metrics on http://{host}:{server.server_port}/metrics", file=sys.stderr, flush=True)
    done.wait()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    return 0
