"""Benchmarks: N schedules across N/10 files, on PostgreSQL and SQLite, against baselines run in the same process.

    python -m bench                     # N = 1,000 10,000 50,000 on postgres and sqlite
    python -m bench --n 10000 --backend postgres

Each (backend, N) runs in a child process so its peak RSS is its own. In that process, in order:
  1. validate of the tree            (load + check every file)
  2. create-apply into an empty DB   (the whole `reconcile` command: parse, plan, one transaction, verify)
  3. no-op plan                      (`reconcile --dry-run` end to end, YAML parsing included)
  4. plan + apply after 1% changed   (names and triggers of 1% of the schedules)
  5. baselines: orchestrator-core's write path (APScheduler add_job per schedule into SQLAlchemyJobStore,
     scheduler paused) and the floor (one executemany INSERT of the same pre-pickled rows)
For context it also times "our writes alone": the job, linker and ledger rows our create-apply wrote, pre-built,
written as we write them (the database's share of our work), and the floor including building and pickling.
Our phases and validate are each run three times (create-apply into a fresh database each time); the median is shown.
It prints a table (seconds, rows/s, peak RSS) with the ratios ours ÷ floor and add_job ÷ ours, and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

PG_ADMIN = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ZONES = ("UTC", "Europe/Amsterdam", "America/New_York", "Asia/Tokyo")
TASKS = ("task_clean_up_tasks", "task_resume_workflows", "task_validate_products", "task_validate_subscriptions")


def bench_noop_job(workflow_name: str, user_inputs: list[dict[str, Any]] | None = None) -> None:
    """The callable the add_job baseline schedules: the signature of orchestrator-core's starter."""


def schedule_spec(i: int, rng: random.Random) -> dict[str, Any]:
    """Schedule number i: every trigger type, several zones, realistic field mixes."""
    kind = i % 10
    spec: dict[str, Any] = {"key": f"s{i:06d}", "workflow_name": TASKS[i % len(TASKS)], "name": f"Schedule {i}"}
    if kind in (0, 1, 2, 3):
        spec.update(trigger="cron", trigger_kwargs={"hour": i % 24, "minute": (i * 7) % 60})
        spec["timezone"] = "UTC" if kind != 3 else ZONES[i % len(ZONES)]
    elif kind == 4:
        spec.update(trigger="cron", trigger_kwargs={"crontab": f"{i % 60} {(i // 60) % 24} * * 1-5"})
    elif kind in (5, 6):
        spec.update(trigger="interval", trigger_kwargs={"minutes": 5 + i % 600})
    elif kind == 7:
        run = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
        spec.update(trigger="date", trigger_kwargs={"run_date": run.isoformat()})
    elif kind == 8:
        spec.update(trigger="calendarinterval", trigger_kwargs={"days": 1 + i % 7, "hour": i % 24, "minute": 5})
        spec["timezone"] = "Europe/Amsterdam"
    else:
        spec.update(
            trigger="or",
            trigger_kwargs={
                "triggers": [
                    {"trigger": "cron", "trigger_kwargs": {"day_of_week": "mon-fri", "hour": 9 + i % 8}},
                    {"trigger": "cron", "trigger_kwargs": {"day_of_week": "sat", "hour": 12}},
                ]
            },
        )
    if rng.random() < 0.1:
        spec["user_inputs"] = [{"note": f"run {i}"}]
    return spec


def write_tree(root: Path, n: int, *, changed: set[int] | None = None) -> None:
    """N schedules across N/10 files (JSON is valid YAML flow style, and fast to write)."""
    rng = random.Random(42)
    changed = changed or set()
    if root.exists():
        shutil.rmtree(root)
    per_file = 10
    for f in range(0, n, per_file):
        folder = root / f"team{(f // per_file) % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = ["# yaml-language-server: $schema=../../schema/schedules.schema.json", "schedules:"]
        for i in range(f, min(f + per_file, n)):
            spec = schedule_spec(i, rng)
            if i in changed:
                spec["name"] += " (changed)"
                if spec["trigger"] == "cron" and "hour" in spec["trigger_kwargs"]:
                    spec["trigger_kwargs"]["hour"] = (spec["trigger_kwargs"]["hour"] + 1) % 24
            lines.append("  - " + json.dumps(spec))
        (folder / f"schedules_{f // per_file:05d}.yaml").write_text("\n".join(lines) + "\n")


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    """A fresh database with orchestrator-compatible tables and the task workflows."""
    from reconciler import store

    if backend == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
    else:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    engine = store.connect(url)
    with store.write_transaction(engine) as conn:
        store.create_compatible_tables(conn)
    engine.dispose()
    try:
        yield url
    finally:
        if backend == "postgres":
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


REPEAT = 3  # each phase is measured this many times; the table shows the median


def median_time(fn: Callable[[], Any], repeat: int = REPEAT) -> tuple[float, Any]:
    """Median wall time of `repeat` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeat):
        secs, result = timed(fn)
        times.append(secs)
    return statistics.median(times), result


def scenario(backend: str, n: int) -> dict[str, Any]:
    """One (backend, N): our four phases, then both baselines, in this one process."""
    from reconciler import apply as applier
    from reconciler import store
    from reconciler.apply import ApplySettings
    from reconciler.cli import tune_gc
    from reconciler.commands.reconcile import ReconcileOptions, run
    from reconciler.commands.validate import load_desired
    from reconciler.plan import PlanSettings

    tune_gc()  # as the `schedules` entry point does
    results: dict[str, Any] = {"backend": backend, "n": n, "repeat": REPEAT}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tree = work / "schedules.d"
        write_tree(tree, n)
        now = datetime.now(UTC)
        secs, desired = median_time(lambda: load_desired(tree, now=now))
        assert desired.ok, desired.problems[:3]
        results["validate"] = secs

        settings = PlanSettings(max_deletes=n)
        apply_settings = ApplySettings(guard_seconds=0)

        def options(db: str, dry: bool) -> ReconcileOptions:
            return ReconcileOptions(
                directory=tree, db_url=db, dry_run=dry, settings=settings, apply=apply_settings, detailed_exitcode=True
            )

        # create-apply: plan + one-transaction write + verify, from the parsed files (parsing is
        # "validate" above), each time into a fresh database; the whole command is reported beside it.
        create_times = []
        for _ in range(REPEAT):
            with database(backend, work) as url:
                fresh_engine = store.connect(url)
                secs, applied = timed(
                    lambda e=fresh_engine: applier.apply(e, desired.schedules, settings, apply_settings)
                )
                fresh_engine.dispose()
                assert applied.plan.summary["create"] == n and applied.verified, applied.plan.summary
                create_times.append(secs)
        results["create_apply"] = statistics.median(create_times)

        with database(backend, work) as url:
            secs, out = timed(lambda: run(options(url, False)))
            assert out.exit_code == 0 and out.plan is not None and out.plan.summary["create"] == n, out.err
            results["create_apply_e2e"] = secs

            def noop() -> Any:
                out = run(options(url, True))
                assert out.exit_code == 0 and not out.plan.has_changes, out.err
                return out

            results["noop_plan"], _ = median_time(noop)
            changed: set[int] = set()
            change_times = []
            for round_ in range(REPEAT):  # each round changes another 1% (the earlier rounds stay changed)
                fresh = set(range(round_, n, 100))
                changed |= fresh
                write_tree(tree, n, changed=changed)
                secs, out = timed(lambda: run(options(url, False)))
                assert out.exit_code == 0 and out.plan.summary["update"] == len(fresh), out.plan.summary
                change_times.append(secs)
            results["change_1pct_apply"] = statistics.median(change_times)
            results["peak_rss_mb_ours"] = peak_rss_mb()

            engine = store.connect(url)
            with engine.connect() as conn:
                rows = [dict(r._mapping) for r in conn.execute(store.apscheduler_jobs.select())]
                links = [dict(r._mapping) for r in conn.execute(store.workflows_apscheduler_jobs.select())]
                ledger = [dict(r._mapping) for r in conn.execute(store.ledger.select())]
                names = {w.workflow_id: w.name for w in store.read_workflows(conn)}
            engine.dispose()

        with database(backend, work) as url:
            results["floor_insert"] = floor_insert(url, rows)
        with database(backend, work) as url:
            results["our_writes_alone"] = our_writes_alone(url, rows, links, ledger, names)
        with database(backend, work) as url:
            results["floor_build_pickle_insert"] = floor_build_pickle_insert(url, desired.schedules, now)
        with database(backend, work) as url:
            results["add_job"] = add_job_baseline(url, tree, now)
    results["peak_rss_mb_process"] = peak_rss_mb()
    return results


def floor_insert(url: str, rows: list[dict[str, Any]]) -> float:
    """The floor: one executemany INSERT of the same pre-pickled rows, one transaction."""
    from reconciler import store

    engine = store.connect(url)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # connect outside the timing
        conn.commit()
        start = time.perf_counter()
        with conn.begin():
            conn.execute(store.apscheduler_jobs.insert(), rows)
        secs = time.perf_counter() - start
    engine.dispose()
    return secs


def our_writes_alone(
    url: str,
    rows: list[dict[str, Any]],
    links: list[dict[str, Any]],
    ledger: list[dict[str, Any]],
    names: dict[str, str],
) -> float:
    """For context: what our create-apply writes (job rows, linker rows, ledger rows), pre-built, written
    by the same store functions the apply calls, in one transaction: the database's share."""
    from reconciler import migrate, store
    from reconciler.jobstate import JobRow

    engine = store.connect(url)
    with engine.connect() as conn:
        migrate.upgrade(conn)  # the ledger table
        ids = {w.name: w.workflow_id for w in store.read_workflows(conn)}  # this database's workflow ids
        conn.commit()
        job_rows = [JobRow(r["id"], r["next_run_time"], r["job_state"]) for r in rows]
        link_rows = [(ids[names[str(r["workflow_id"])]], r["schedule_id"]) for r in links]
        entries = [store.LedgerEntry(**r) for r in ledger]
        start = time.perf_counter()
        with conn.begin():
            store.insert_jobs(conn, job_rows, link_rows)
            store.write_ledger(conn, entries, ())
        secs = time.perf_counter() - start
    engine.dispose()
    return secs


def floor_build_pickle_insert(url: str, desired: list[Any], now: datetime) -> float:
    """For context: the same floor including the work a writer cannot skip, building triggers and pickling.

    This is the "bulk total" of the APScheduler research (build + pickle + one executemany INSERT).
    """
    from reconciler import store, triggers
    from reconciler.jobstate import build_job_row

    engine = store.connect(url)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.commit()
        start = time.perf_counter()
        rows = []
        for d in desired:
            trigger = triggers.build_trigger(d.trigger, d.trigger_kwargs, d.timezone, now=now)
            row = build_job_row(
                job_id=str(uuid.uuid4()), trigger=trigger, workflow_name=d.workflow_name, user_inputs=d.user_inputs,
                name=d.name or d.workflow_name, next_run_time=triggers.next_fire_times(trigger, 1, now)[0],
            )  # fmt: skip
            rows.append({"id": row.id, "next_run_time": row.next_run_time, "job_state": row.job_state})
        with conn.begin():
            conn.execute(store.apscheduler_jobs.insert(), rows)
        secs = time.perf_counter() - start
    engine.dispose()
    return secs


def add_job_baseline(url: str, tree: Path, now: datetime) -> float:
    """orchestrator-core's write path: add_job per schedule into SQLAlchemyJobStore, scheduler paused."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from reconciler import store, triggers
    from reconciler.commands.validate import load_desired

    desired = load_desired(tree, now=now).schedules
    engine = store.connect(url)
    scheduler = BackgroundScheduler(job_defaults={"coalesce": True})
    scheduler.add_jobstore(SQLAlchemyJobStore(engine=engine), "default")
    scheduler.start(paused=True)
    try:
        start = time.perf_counter()
        for d in desired:
            # orchestrator-core builds the trigger inside add_job; the spec → trigger step is the same work.
            trigger = triggers.build_trigger(d.trigger, d.trigger_kwargs, d.timezone, now=now)
            scheduler.add_job(
                "bench.run:bench_noop_job",
                trigger=trigger,
                id=str(uuid.uuid4()),
                name=d.name,
                kwargs={"workflow_name": d.workflow_name, "user_inputs": d.user_inputs},
            )
        secs = time.perf_counter() - start
    finally:
        scheduler.remove_all_jobs()
        scheduler.shutdown(wait=False)
        engine.dispose()
    return secs


def help_startup(repeat: int = 7) -> dict[str, float]:
    """Median wall time of `schedules --help`, and of a bare interpreter start as the baseline."""

    def median_of(cmd: list[str]) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return {
        "schedules_help": median_of([sys.executable, "-m", "reconciler", "--help"]),
        "python_baseline": median_of([sys.executable, "-c", "pass"]),
    }


def print_table(all_results: list[dict[str, Any]], startup: dict[str, float]) -> None:
    phases = (
        "validate",
        "create_apply",
        "create_apply_e2e",
        "noop_plan",
        "change_1pct_apply",
        "floor_insert",
        "our_writes_alone",
        "add_job",
    )
    print(f"{'backend':<9} {'N':>7} {'phase':<18} {'seconds':>9} {'rows/s':>10}")
    for r in all_results:
        for phase in phases:
            secs = r[phase]
            print(f"{r['backend']:<9} {r['n']:>7} {phase:<18} {secs:>9.3f} {r['n'] / secs:>10.0f}")
        print(f"{r['backend']:<9} {r['n']:>7} {'peak RSS (ours)':<18} {r['peak_rss_mb_ours']:>8.0f}M")
        print(
            f"{'':<9} {'':>7} ratios: create-apply ÷ floor = {r['create_apply'] / r['floor_insert']:.2f}×, "
            f"add_job ÷ create-apply = {r['add_job'] / r['create_apply']:.2f}×, "
            f"create-apply ÷ (build+pickle+insert) = {r['create_apply'] / r['floor_build_pickle_insert']:.2f}×, "
            f"our writes alone ÷ floor = {r['our_writes_alone'] / r['floor_insert']:.2f}×"
        )
    by = {(r["backend"], r["n"]): r for r in all_results}
    for backend in sorted({r["backend"] for r in all_results}):
        if (backend, 10_000) in by and (backend, 50_000) in by:
            small, big = by[(backend, 10_000)], by[(backend, 50_000)]
            growth = ", ".join(
                f"{p} {big[p] / small[p]:.2f}×" for p in ("validate", "create_apply", "noop_plan", "change_1pct_apply")
            )
            rss = big["peak_rss_mb_ours"] / small["peak_rss_mb_ours"]
            print(f"{backend}: growth 50,000 ÷ 10,000: {growth}, RSS {rss:.2f}×")
    print(
        f"startup: schedules --help {startup['schedules_help']:.3f}s (python -c pass {startup['python_baseline']:.3f}s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="schedule counts (default 1000 10000 50000)")
    parser.add_argument("--backend", action="append", choices=("postgres", "sqlite"))
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results.json")
    parser.add_argument("--child", nargs=2, metavar=("BACKEND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(scenario(args.child[0], int(args.child[1]))))
        return
    all_results = []
    for backend in args.backend or ["postgres", "sqlite"]:
        for n in args.n or [1_000, 10_000, 50_000]:
            print(f"running {backend} N={n} ...", file=sys.stderr, flush=True)
            child = subprocess.run(
                [sys.executable, "-m", "bench", "--child", backend, str(n)],
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parent.parent,
            )
            if child.returncode != 0:
                sys.exit(f"bench child {backend} N={n} failed:\n{child.stderr[-3000:]}")
            all_results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    startup = help_startup()
    print_table(all_results, startup)
    args.json.write_text(json.dumps({"results": all_results, "startup": startup}, indent=2))
    print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
