"""`schedules health` on N schedules over 24 h, on PostgreSQL: the whole process, its phases, and baselines.

    python bench/health.py                          # N = 10,000, window 24h, 5 alternating runs of each
    python bench/health.py --n 2000 --since 6h --repeat 3
    python bench/health.py --compare-with /tmp/before   # also that checkout's `health`, alternating with ours

The database: orchestrator-compatible tables plus `processes` and `engine_settings` shaped like
orchestrator-core's (its columns and its indexes: none on started_at, so the window is a sequential scan).
N job rows as orchestrator-core's API writes them (bench/run.py's mix of cron, crontab, interval, date,
calendarinterval and `or` triggers, several zones), over N/10 workflows (ten schedules per workflow, so
attribution has to choose), each interval started 48 h ago. One `processes` row per fire of the last 48 h
(the window's and the day before, which the window must skip), 0.1-3 s after it, 2% of fires left out
(missed) and 1% failed.

Whole processes, as a user runs them, alternating (A B C ... A B C ...) after one untimed run of each, median
wall-clock and CPU seconds (user + system; on a shared machine wall-clock also holds the wait for a core):
`health --format json` and `health` (text), each judged at one fixed `--until` so every run judges the same
window; the floor, a process that only fetches the same job rows and window of `processes` with psycopg and
`pickle.loads` each job_state (what any reader of these tables pays: start-up, driver, unpickling);
`schedules --help` (our start-up) and `python -c pass`. With --compare-with, that checkout's `health
--format json` runs in the same rotation.

Phases, in this process (median of the runs), with the command's collector settings: the imports of a fresh
process, the read (one read-only transaction; its job rows and its processes also timed alone), the judging
(pure), each rendering. It prints the tables, then one JSON line of all figures (also written to
bench/results-health.json).
Not a test: nothing here runs under pytest, and no speed is asserted anywhere.
"""

from __future__ import annotations

import argparse
import functools
import gc
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import database, schedule_spec
from bench.whole import SCHEDULES, Run, alternate, run_process
from reconciler import reads, store, triggers
from reconciler.cli import tune_gc
from reconciler.commands.health import HealthOptions, collector_paused, rendered
from reconciler.health.core import assess
from reconciler.health.reading import read_health_data, read_processes
from reconciler.jobstate import build_job_row

T = TypeVar("T")
TARGET_SECONDS = 3.0  # issue 16: the whole `health` on 10,000 schedules over 24 h, on PostgreSQL

PROCESSES_DDL = """
CREATE TABLE processes (
    pid uuid PRIMARY KEY,
    workflow_id uuid NOT NULL REFERENCES workflows (workflow_id),
    assignee varchar(50) NOT NULL DEFAULT 'SYSTEM',
    last_status varchar(50) NOT NULL,
    last_step varchar(255),
    started_at timestamptz NOT NULL DEFAULT current_timestamp,
    last_modified_at timestamptz NOT NULL DEFAULT current_timestamp,
    failed_reason text,
    traceback text,
    created_by varchar(255),
    is_task boolean NOT NULL DEFAULT false
);
CREATE INDEX ix_processes_is_task ON processes (is_task);
CREATE INDEX ix_processes_pid ON processes (pid);
CREATE TABLE engine_settings (global_lock boolean NOT NULL PRIMARY KEY);
INSERT INTO engine_settings VALUES (false);
"""


def populate(url: str, n: int, now: datetime) -> dict[str, int]:
    rng = random.Random(16)
    workflows = [(str(uuid.uuid4()), f"task_bench_{w:05d}") for w in range(max(1, n // 10))]
    rows, links, process_rows = [], [], []
    origin = now - timedelta(hours=48)
    for i in range(n):
        spec = schedule_spec(i, rng)
        kwargs = dict(spec["trigger_kwargs"])
        if spec["trigger"] == "interval":  # created at different moments, so their phases differ
            kwargs["start_date"] = (origin + timedelta(seconds=rng.uniform(0, 3600))).isoformat()
        trigger = triggers.build_trigger(spec["trigger"], kwargs, spec.get("timezone", "UTC"), now=origin)
        workflow_id, workflow = workflows[i % len(workflows)]
        upcoming = triggers.next_fire_times(trigger, 1, now)
        job_id = str(uuid.uuid4())
        rows.append(
            build_job_row(
                job_id=job_id,
                trigger=trigger,
                workflow_name=workflow,
                user_inputs=[{}],
                name=spec["name"],
                next_run_time=upcoming[0] if upcoming else None,
            )
        )
        links.append((workflow_id, job_id))
        fires, _ = triggers.fire_times_between(trigger, origin, now - timedelta(seconds=60))
        for fire in fires:
            roll = rng.random()
            if roll < 0.02:
                continue
            started = fire + timedelta(seconds=rng.uniform(0.1, 3.0))
            status = "failed" if roll < 0.03 else "completed"
            reason = "RuntimeError: bench failure\nTraceback ..." if status == "failed" else None
            process_rows.append((str(uuid.uuid4()), workflow_id, status, started, reason))
    engine = store.connect(url)
    with store.write_transaction(engine) as conn:
        conn.execute(text("DELETE FROM workflows"))
        conn.execute(
            text(
                "INSERT INTO workflows (workflow_id, name, target, description, is_task)"
                " VALUES (:i, :n, 'SYSTEM', :n, true)"
            ),
            [{"i": i, "n": name} for i, name in workflows],
        )
        store.insert_jobs(conn, rows, links)
        conn.exec_driver_sql(PROCESSES_DDL)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        buffer = io.StringIO()
        for pid, wid, status, started, reason in process_rows:
            escaped = "\\N" if reason is None else reason.replace("\\", "\\\\").replace("\n", "\\n")
            buffer.write(
                f"{pid}\t{wid}\t{status}\t{started.isoformat()}\t{started.isoformat()}\t{escaped}\tSYSTEM\ttrue\n"
            )
        with cursor.copy(
            "COPY processes (pid, workflow_id, last_status, started_at, last_modified_at, failed_reason, created_by,"
            " is_task) FROM STDIN"
        ) as copy:
            copy.write(buffer.getvalue())
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return {"workflows": len(workflows), "jobs": len(rows), "processes": len(process_rows)}


def floor_script(url: str, since: datetime, until: datetime) -> str:
    """A process reading what `health` reads at the least: the job rows (each job_state unpickled) and the window."""
    conninfo = "postgresql://" + url.partition("://")[2]
    return f"""
import gc, pickle, psycopg
gc.disable()  # a floor: no collection at all (the command itself only makes them rare)
with psycopg.connect({conninfo!r}) as conn:
    rows = conn.execute("SELECT id, next_run_time, job_state FROM apscheduler_jobs").fetchall()
    states = [pickle.loads(blob) for _, _, blob in rows]
    runs = conn.execute(
        "SELECT p.pid, w.name, p.last_status, p.started_at, p.last_modified_at, p.failed_reason FROM processes p "
        "JOIN workflows w ON w.workflow_id = p.workflow_id WHERE p.created_by = 'SYSTEM' "
        "AND p.started_at >= %s AND p.started_at <= %s", ({since.isoformat()!r}, {until.isoformat()!r})
    ).fetchall()
assert len(states) > 0 and len(runs) > 0
"""


IMPORTS_PROBE = """
import time
wall, cpu = time.perf_counter(), time.process_time()
import reconciler.cli, reconciler.commands.health, reconciler.health.render, psycopg
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def phases(url: str, since: timedelta, until: datetime, repeat: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each phase, in this process (the imports in a fresh one)."""
    gc.collect()
    tune_gc()  # as the command's main() does (and run_health's pause below): without them, unpickling takes 3×
    times: dict[str, list[tuple[float, float]]] = {}
    for _ in range(repeat):
        imports = subprocess.run([sys.executable, "-c", IMPORTS_PROBE], capture_output=True, text=True, check=True)
        wall, cpu = (float(value) for value in imports.stdout.split())
        times.setdefault("imports (a fresh process)", []).append((wall, cpu))
        with collector_paused():  # as run_health reads, judges and renders
            found = one_round(url, since, until)
        for name, seconds in found.items():
            times.setdefault(name, []).append(seconds)
    return {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in times.items()
    }


class Stopwatch:
    """Wall-clock and CPU seconds of each step (CPU: this process's own; the database server's is not in it)."""

    def __init__(self) -> None:
        self.found: dict[str, tuple[float, float]] = {}

    def __call__(self, name: str, step: Callable[[], T]) -> T:
        wall, cpu = time.perf_counter(), time.process_time()
        result = step()
        self.found[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        return result


def one_round(url: str, since: timedelta, until: datetime) -> dict[str, tuple[float, float]]:
    """Each phase once: read, its two big reads alone, judge, and each rendering of its own fresh report."""
    tolerance = HealthOptions(db_url=url, since=since).tolerance
    timed = Stopwatch()
    reader = reads.open_read_only(url)
    assert reader is not None
    with reader.transaction():
        data, _ = timed(
            "read: everything, one transaction",
            functools.partial(read_health_data, reader, since=until - since, now=until, early=tolerance.early),
        )
    with reader.transaction():
        timed("  of it: job rows, fetched and unpickled", functools.partial(reads.read_jobs, reader))
    with reader.transaction():
        window = functools.partial(read_processes, reader, until - since - tolerance.early, until)
        timed("  of it: the window of processes", window)
    reader.close()
    judge = functools.partial(assess, data.schedules, data.seen, now=until, since=until - since, tolerance=tolerance)
    for fmt in ("json", "text"):  # each rendering of a report of its own: a report computes its verdicts once
        report = timed("judge (pure)", judge)
        timed(f"render {fmt}", functools.partial(rendered, report, fmt))
    return timed.found


def whole_processes(
    url: str, since: str, until: datetime, repeat: int, compare_with: Path | None
) -> dict[str, list[Run]]:
    """Each command `repeat` times, alternating, after one untimed run of each."""
    here = Path(__file__).resolve().parent.parent
    health = [*SCHEDULES, "health", "/nonexistent", "--db", url, "--since", since, "--until", until.isoformat()]
    problems = (0, 2)  # healthy or problems found: the bench data has missed and failed runs by design
    window_start = until - parse_window(since)
    commands: dict[str, Callable[[], Run]] = {
        "health_json": lambda: run_process([*health, "--format", "json"], here, problems),
        "health_text": lambda: run_process(health, here, problems),
        "floor": lambda: run_process([sys.executable, "-c", floor_script(url, window_start, until)], here),
        "help": lambda: run_process([*SCHEDULES, "--help"], here),
        "python": lambda: run_process([sys.executable, "-c", "pass"], here),
    }
    if compare_with is not None:  # `python -m reconciler` from that directory imports its own package first
        commands["compared_json"] = lambda: run_process([*health, "--format", "json"], compare_with, problems)
    return alternate(commands, repeat)


def parse_window(since: str) -> timedelta:
    from reconciler.commands.health import parse_duration

    return parse_duration(since)


def report_rows(runs: dict[str, list[Run]]) -> list[tuple[str, float, float, str]]:
    """(what, median wall s, median CPU s, comparison) for the table."""
    wall = {name: statistics.median(r.seconds for r in rs) for name, rs in runs.items()}
    cpu = {name: statistics.median(r.cpu for r in rs) for name, rs in runs.items()}
    rows = []
    for name, what in (("health_json", "`health --format json`"), ("health_text", "`health` (text)")):
        met = "yes" if wall[name] < TARGET_SECONDS else "**no**"
        ratio = wall[name] / wall["floor"]
        rows.append((what, wall[name], cpu[name], f"target < {TARGET_SECONDS:.0f} s: {met}; {ratio:.2f}× the floor"))
    if "compared_json" in wall:
        ratio = wall["compared_json"] / wall["health_json"]
        rows.append(("`health --format json`, the compared checkout", wall["compared_json"], cpu["compared_json"],
                     f"{ratio:.2f}× this checkout's"))  # fmt: skip
    rows.append(("floor: fetch the same rows, `pickle.loads` each (psycopg)", wall["floor"], cpu["floor"], "1.00×"))
    rows.append(("`schedules --help` (start-up)", wall["help"], cpu["help"], f"{wall['help'] / wall['floor']:.2f}×"))
    rows.append(("`python -c pass`", wall["python"], cpu["python"], f"{wall['python'] / wall['floor']:.2f}×"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--since", default="24h")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command and phase; the median is shown")
    parser.add_argument("--compare-with", type=Path, help="another checkout of this repository, run alternating")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results-health.json")
    args = parser.parse_args()
    since = parse_window(args.since)
    with tempfile.TemporaryDirectory() as tmp, database("postgres", Path(tmp)) as url:
        start = time.perf_counter()
        now = datetime.now(UTC)
        counts = populate(url, args.n, now)
        print(f"populated in {time.perf_counter() - start:.1f}s: {counts}", file=sys.stderr)
        until = now - timedelta(seconds=30)  # one fixed window for every run
        print("running: whole processes ...", file=sys.stderr, flush=True)
        load_before = os.getloadavg()[0]
        runs = whole_processes(url, args.since, until, args.repeat, args.compare_with)
        print("running: phases ...", file=sys.stderr, flush=True)
        parts = phases(url, since, until, args.repeat)
        load_after = os.getloadavg()[0]
    print(
        f"`schedules health --since {args.since}` on {args.n:,} schedules ({counts['workflows']:,} workflows, "
        f"{counts['processes']:,} processes rows) on PostgreSQL; median of {args.repeat} alternating runs each; "
        f"load average {load_before:.1f} before, {load_after:.1f} after"
    )
    print()
    print("| whole process | wall s | CPU s | against |")
    print("|---|---|---|---|")
    for what, wall, cpu, against in report_rows(runs):
        print(f"| {what} | {wall:.2f} | {cpu:.2f} | {against} |")
    print()
    print("| phase (in one process, median) | wall s | CPU s |")
    print("|---|---|---|")
    for name, (wall, cpu) in parts.items():
        print(f"| {name} | {wall:.3f} | {cpu:.3f} |")
    result = {
        "n": args.n,
        "since": args.since,
        "repeat": args.repeat,
        **counts,
        "load_average": [load_before, load_after],
        "whole": {name: [[r.seconds, r.cpu] for r in rs] for name, rs in runs.items()},  # wall, CPU
        "phases_s": parts,
    }
    print(json.dumps(result))
    args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
