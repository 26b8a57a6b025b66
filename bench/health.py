"""`schedules health` on N schedules over 24 h, on PostgreSQL: how long one report takes.

    python bench/health.py                  # N = 10,000, window 24h
    python bench/health.py --n 2000 --since 6h

The database: orchestrator-compatible tables plus `processes` and `engine_settings` shaped like
orchestrator-core's (its columns and its indexes: none on started_at, so the window is a sequential scan).
N job rows as orchestrator-core's API writes them (bench/run.py's mix of cron, crontab, interval, date,
calendarinterval and `or` triggers, several zones), over N/10 workflows (ten schedules per workflow, so
attribution has to choose), each interval started 48 h ago. One `processes` row per fire of the last 48 h
(the window's and the day before, which the window must skip), 0.1-3 s after it, 2% of fires left out
(missed) and 1% failed.

Timed, median of three: the whole command in a subprocess (`schedules health --format json`, Python start-up
included; wall-clock and CPU seconds) and, in this process, the read (one read-only transaction) and the
judging (pure) separately.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import database, schedule_spec
from reconciler import reads, store, triggers
from reconciler.commands.health import HealthOptions, parse_duration
from reconciler.health.core import assess
from reconciler.health.reading import read_health_data
from reconciler.jobstate import build_job_row

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


def timed_in_process(url: str, since: timedelta) -> tuple[float, float, dict[str, Any]]:
    now = datetime.now(UTC)
    options = HealthOptions(db_url=url, since=since)
    reader = reads.open_read_only(url)
    assert reader is not None
    start = time.perf_counter()
    with reader.transaction():
        data, _ = read_health_data(reader, since=now - since, now=now, early=options.tolerance.early)
    read = time.perf_counter() - start
    reader.close()
    start = time.perf_counter()
    report = assess(data.schedules, data.seen, now=now, since=now - since, tolerance=options.tolerance)
    judged = time.perf_counter() - start
    summary = {
        "expected": sum(s.expected for s in report.schedules),
        "started": sum(s.started or 0 for s in report.schedules),
        "missed": sum(len(s.missed) for s in report.schedules),
        "failed": sum(len(s.failures) for s in report.schedules),
        "ambiguous": sum(s.ambiguous for s in report.schedules),
        "runs_read": len(data.seen.runs or ()),
    }
    return read, judged, summary


def timed_command(url: str, since: str) -> tuple[float, float, int]:
    """Wall-clock and CPU seconds (user + system) of one `schedules health` process, and its exit code.

    CPU time is what the command itself costs; on a machine shared with other work, wall-clock time also
    holds the waiting for a core.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler",
            "health",
            "/nonexistent",
            "--db",
            url,
            "--since",
            since,
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 2):
        raise SystemExit(f"health failed: {done.stderr}")
    json.loads(done.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--since", default="24h")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    since = parse_duration(args.since)
    with tempfile.TemporaryDirectory() as tmp, database("postgres", Path(tmp)) as url:
        start = time.perf_counter()
        counts = populate(url, args.n, datetime.now(UTC))
        print(f"populated in {time.perf_counter() - start:.1f}s: {counts}", file=sys.stderr)
        commands = [timed_command(url, args.since) for _ in range(args.repeat)]
        parts = [timed_in_process(url, since) for _ in range(args.repeat)]
    result = {
        "n": args.n,
        "since": args.since,
        **counts,
        "command_s": statistics.median(c[0] for c in commands),
        "command_cpu_s": statistics.median(c[1] for c in commands),
        "exit_code": commands[0][2],
        "load_average": os.getloadavg()[0],
        "read_s": statistics.median(p[0] for p in parts),
        "judge_s": statistics.median(p[1] for p in parts),
        "report": parts[0][2],
    }
    print(
        f"health, {args.n:,} schedules, {args.since} on PostgreSQL: command {result['command_s']:.2f} s wall, "
        f"{result['command_cpu_s']:.2f} s CPU (read {result['read_s']:.2f} s, judge {result['judge_s']:.2f} s; "
        f"median of {args.repeat}; load average {result['load_average']:.1f})"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
