"""How long APScheduler 3.11 holds a due row: the span the apply's guard (reconciler/guard.py) must respect.

    python bench/hold_span.py                      # 1, 10 and 50 due rows at once, 15 s each, PostgreSQL
    python bench/hold_span.py --jobs 1 --seconds 30

A scheduler configured as orchestrator-core 5.5.0 configures its own (`BackgroundScheduler`, one
`ThreadPoolExecutor(1)`, `coalesce=True`, APScheduler's `SQLAlchemyJobStore`) runs N interval jobs of 1 s,
all due at the same instant (the worst case: one pass handles them all). The job store is wrapped to
timestamp, for every row of every pass, the three moments of `_process_jobs` that matter:

- lateness: the row's next_run_time → the start of `get_due_jobs` (waking up, clock, GIL);
- hold: the start of `get_due_jobs` → the commit of that row's `update_job` (the row is in the
  scheduler's hands: a write in between is overwritten, a delete kills the thread with JobLookupError);
- due→moved: next_run_time → that commit (what the guard sees from outside: how long after a row falls
  due it is still unmoved while a scheduler runs).

Prints median / p99 / max in milliseconds per N.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from apscheduler.executors.pool import ThreadPoolExecutor  # noqa: E402
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # noqa: E402
from apscheduler.schedulers.background import BackgroundScheduler  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from bench.run import database  # noqa: E402


def noop() -> None:
    """The job: nothing (the span measured is the scheduler's, not the job's)."""


class TimedStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's own store, with the moments of each pass recorded."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.lock = threading.Lock()
        self.samples: list[tuple[float, float, float]] = []  # (next_run_time, due query start, update commit)
        self._pending: dict[str, tuple[float, float]] = {}

    def get_due_jobs(self, now: datetime) -> Any:
        started = time.time()
        jobs = super().get_due_jobs(now)
        with self.lock:
            for job in jobs:
                self._pending[job.id] = (job.next_run_time.timestamp(), started)
        return jobs

    def update_job(self, job: Any) -> None:
        super().update_job(job)
        committed = time.time()
        with self.lock:
            due, started = self._pending.pop(job.id)
            self.samples.append((due, started, committed))


def measure(url: str, jobs: int, seconds: float) -> list[tuple[float, float, float]]:
    engine = create_engine(url)
    store = TimedStore(engine=engine)
    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(1)}, job_defaults={"coalesce": True})
    scheduler.add_jobstore(store)
    scheduler.start(paused=True)
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    for i in range(jobs):
        scheduler.add_job(
            "bench.hold_span:noop", "interval", seconds=1, start_date=first, id=f"j{i}", misfire_grace_time=30
        )
    scheduler.resume()
    time.sleep(seconds + 2)
    scheduler.shutdown(wait=True)
    engine.dispose()
    return [s for s in store.samples if s[0] >= first.timestamp()]


def row(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{name:<11} {statistics.median(ordered) * 1000:8.1f} {p99 * 1000:8.1f} {ordered[-1] * 1000:8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, action="append", help="due rows per pass (repeatable)")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    for jobs in args.jobs or [1, 10, 50]:
        with tempfile.TemporaryDirectory() as tmp, database("postgres", Path(tmp)) as url:
            samples = measure(url, jobs, args.seconds)
        print(f"\n{jobs} due row(s) per pass, {len(samples)} rows handled   median      p99      max (ms)")
        print(row("lateness", [s[1] - s[0] for s in samples]))
        print(row("hold", [s[2] - s[1] for s in samples]))
        print(row("due→moved", [s[2] - s[0] for s in samples]))


if __name__ == "__main__":
    main()
