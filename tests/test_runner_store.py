"""The runner's job store, scheduler guard and leader lock, in-process against real SQLite and PostgreSQL.

Races with "another process" are reproduced deterministically: a store subclass changes or deletes
the row through a separate engine (its own connection, committed) right before the scheduler's
update_job / remove_job, which is exactly the window that kills APScheduler's own scheduler thread.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.jobstores.base import JobLookupError
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine

from reconciler import store
from reconciler.apply import prepare
from reconciler.jobstate import ORCHESTRATOR_FUNC, build_job_row, load_job_state, repickle, utc_timestamp
from reconciler.runner.job_store import RunnerJobStore, StartGate, StoredJob
from reconciler.runner.leader import LeadershipLost, PostgresLeader, SqliteLeader, make_leader
from reconciler.runner.runner import Runner, RunnerOptions
from reconciler.runner.starters import StartRequest, StartResult


@dataclass
class RecordingStarter:
    """A starter that remembers every request (optionally taking `delay` seconds per start)."""

    delay: float = 0.0
    kind: str = "test"
    requests: list[StartRequest] = field(default_factory=list)
    finished: list[StartRequest] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)

    def start(self, request: StartRequest) -> StartResult:
        self.requests.append(request)
        self.started.set()
        time.sleep(self.delay)
        self.finished.append(request)
        return StartResult("p-1")

    def of(self, schedule_id: str) -> list[StartRequest]:
        return [r for r in list(self.requests) if r.schedule_id == schedule_id]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = store.connect(db_url)
    prepare(engine)  # tables (SQLite), ledger and lease migrations
    yield engine
    engine.dispose()


def add_job(
    engine: Engine,
    job_id: str,
    *,
    due_in: float | None = 0.5,
    seconds: float = 0.5,
    date: bool = False,
    func: str | None = None,
    inputs: list[dict[str, Any]] | None = None,
) -> None:
    now = datetime.now(UTC)
    first = now + timedelta(seconds=due_in) if due_in is not None else None
    trigger = (
        DateTrigger(run_date=first or now, timezone="UTC")
        if date
        else IntervalTrigger(seconds=seconds, start_date=first or now, timezone="UTC")
    )
    row = build_job_row(
        job_id=job_id,
        trigger=trigger,
        workflow_name="task_clean_up_tasks",
        user_inputs=inputs or [{}],
        name=job_id,
        next_run_time=first,
        func=func or ORCHESTRATOR_FUNC,
    )
    with store.write_transaction(engine) as conn:
        store.insert_jobs(conn, [row], [])


def raw_rows(engine: Engine) -> dict[str, tuple[float | None, bytes]]:
    with engine.connect() as conn:
        return {r.id: (r.next_run_time, bytes(r.job_state)) for r in conn.execute(select(store.apscheduler_jobs))}


class RunnerThread:
    """A Runner (leader lock, scheduler, executor) in a thread, as `schedules run` builds it."""

    def __init__(self, db_url: str, engine: Engine, starter: Any, store_factory: Any = RunnerJobStore) -> None:
        leader = make_leader(db_url, engine, lease_seconds=5)
        options = RunnerOptions(db_url=db_url, poll_interval=0.1, max_wait=0.5)
        self.runner = Runner(options, starter, engine, leader)
        self.runner.store_factory = store_factory
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = self.runner.run()

    def stop(self) -> int | None:
        self.runner.request_stop()
        self.thread.join(20)
        assert not self.thread.is_alive(), "the runner did not stop"
        return self.code


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


@pytest.mark.slow
def test_rows_deleted_by_another_process_mid_processing_do_not_stop_the_runner(db_url: str, engine: Engine) -> None:
    other = store.connect(db_url)  # "another process": its own connections
    victim, date_victim, bystander = "victim-interval", "victim-date", "bystander"
    raced: dict[str, float] = {}

    class DeletingStore(RunnerJobStore):
        def _vanish(self, job_id: str) -> None:
            if job_id in (victim, date_victim) and job_id not in raced:
                with store.write_transaction(other) as conn:
                    store.delete_jobs(conn, [job_id])
                raced[job_id] = time.time()

        def update_job(self, job: Any) -> None:
            self._vanish(job.id)
            super().update_job(job)

        def remove_job(self, job_id: str) -> None:
            self._vanish(job_id)
            super().remove_job(job_id)

    for job_id in (victim, bystander):
        add_job(engine, job_id)
    add_job(engine, date_victim, date=True)
    add_job(engine, "once", date=True)  # the normal path: a fired date job starts once and is removed
    starter = RecordingStarter()
    runner = RunnerThread(db_url, engine, starter, DeletingStore)
    try:
        assert wait_for(lambda: len(raced) == 2, 6), raced
        race_time = max(raced.values())
        assert wait_for(lambda: len([r for r in starter.of(bystander) if _at(r) > race_time]) >= 2, 6)
    finally:
        code = runner.stop()
    other.dispose()
    assert code == 0
    # the rows another process deleted stay deleted, and their due run was not started
    assert victim not in raw_rows(engine) and date_victim not in raw_rows(engine)
    assert starter.of(victim) == [] and starter.of(date_victim) == []
    assert len(starter.of("once")) == 1 and "once" not in raw_rows(engine)


def _at(request: StartRequest) -> float:
    assert request.scheduled_time is not None
    return request.scheduled_time.timestamp()


@pytest.mark.slow
def test_scheduler_thread_survives_a_store_that_raises(db_url: str, engine: Engine) -> None:
    """The second layer: even a JobLookupError out of the store (APScheduler's own store raises it)
    does not kill the scheduler thread."""
    raised: list[float] = []

    class RaisingStore(RunnerJobStore):
        def update_job(self, job: Any) -> None:
            if job.id == "victim" and not raised:
                raised.append(time.time())
                raise JobLookupError(job.id)
            super().update_job(job)

    add_job(engine, "victim")
    add_job(engine, "bystander")
    starter = RecordingStarter()
    runner = RunnerThread(db_url, engine, starter, RaisingStore)
    try:
        assert wait_for(lambda: bool(raised), 6)
        assert wait_for(lambda: len([r for r in starter.of("bystander") if _at(r) > raised[0]]) >= 2, 6)
    finally:
        assert runner.stop() == 0


@pytest.mark.slow  # a runner thread on the real clock (APScheduler takes no injected one)
def test_row_changed_by_another_process_mid_processing_keeps_its_content(db_url: str, engine: Engine) -> None:
    """reconcile changes user_inputs (next_run_time kept) while the runner handles that very run: the
    runner must neither overwrite the change nor run the same scheduled time twice."""
    other = store.connect(db_url)
    raced: list[float] = []

    class ChangingStore(RunnerJobStore):
        def update_job(self, job: Any) -> None:
            if job.id == "victim" and not raced:
                with store.write_transaction(other) as conn:
                    blob = conn.execute(
                        select(store.apscheduler_jobs.c.job_state).where(store.apscheduler_jobs.c.id == "victim")
                    ).scalar_one()
                    state = load_job_state(bytes(blob))
                    changed = repickle(state, kwargs={**state["kwargs"], "user_inputs": [{"v": 2}]})
                    conn.execute(
                        update(store.apscheduler_jobs)
                        .where(store.apscheduler_jobs.c.id == "victim")
                        .values(job_state=changed)
                    )
                raced.append(time.time())
            super().update_job(job)

    add_job(engine, "victim", inputs=[{"v": 1}])
    starter = RecordingStarter()
    runner = RunnerThread(db_url, engine, starter, ChangingStore)
    try:
        assert wait_for(lambda: bool(raced), 6)
        assert wait_for(lambda: any(r.user_inputs == [{"v": 2}] for r in starter.of("victim")), 6)
    finally:
        assert runner.stop() == 0
    other.dispose()
    next_run, blob = raw_rows(engine)["victim"]
    state = load_job_state(blob)
    assert state["kwargs"]["user_inputs"] == [{"v": 2}]  # the other process's change survived
    assert next_run == utc_timestamp(state["next_run_time"])  # column and pickle agree
    times = Counter(_at(r) for r in starter.of("victim"))
    assert times and max(times.values()) == 1  # no scheduled time started twice
    assert starter.of("victim")[0].user_inputs == [{"v": 1}]  # the raced run itself started as read


@pytest.mark.slow  # a runner thread on the real clock (APScheduler takes no injected one)
def test_unrestorable_rows_are_never_deleted_and_do_not_spin(db_url: str, engine: Engine) -> None:
    past = time.time() - 60
    with store.write_transaction(engine) as conn:
        conn.execute(
            store.apscheduler_jobs.insert().values(id="garbage", next_run_time=past, job_state=b"\x80\x05junk")
        )
    add_job(engine, "decorator", due_in=-60, func="myproject.jobs:nightly")
    add_job(engine, "paused", due_in=None)
    add_job(engine, "bystander")
    before = {k: v for k, v in raw_rows(engine).items() if k != "bystander"}
    passes: list[float] = []

    class CountingStore(RunnerJobStore):
        def get_due_jobs(self, now: datetime) -> list[StoredJob]:
            passes.append(time.monotonic())
            due: list[StoredJob] = super().get_due_jobs(now)
            return due

    starter = RecordingStarter()
    runner = RunnerThread(db_url, engine, starter, CountingStore)
    try:
        assert wait_for(lambda: len(starter.of("bystander")) >= 2, 6)
    finally:
        assert runner.stop() == 0
    after = raw_rows(engine)
    assert {k: after[k] for k in before} == before  # byte for byte: never deleted, never rewritten
    assert {r.schedule_id for r in starter.requests} == {"bystander"}
    # a due row that is skipped must not make the scheduler wake continuously (APScheduler would spin)
    span = passes[-1] - passes[0]
    assert len(passes) < 20 * max(span, 1.0), (len(passes), span)


@pytest.mark.slow
def test_graceful_stop_lets_the_start_under_way_finish(sqlite_url: str) -> None:
    engine = store.connect(sqlite_url)
    prepare(engine)
    add_job(engine, "slow", seconds=0.5, due_in=0.5)
    starter = RecordingStarter(delay=1.5)
    runner = RunnerThread(sqlite_url, engine, starter)
    assert starter.started.wait(6)
    stop_at = time.time()
    assert runner.stop() == 0
    stopped_at = time.time()
    engine.dispose()
    assert len(starter.finished) == len(starter.requests) == 1  # the start under way finished; none after
    assert stopped_at - stop_at >= 1.0  # stop waited for it


def test_start_gate_releases_only_after_the_write() -> None:
    gate = StartGate(timeout=0.2)
    ticket = gate.expect("a")
    assert gate.wait(ticket) == (False, "the new next_run_time was not committed within 0.2s")
    ticket = gate.expect("a")
    gate.resolve("a", True, "written")
    assert gate.wait(ticket) == (True, "written")
    ticket = gate.expect("b")
    gate.resolve("b", False, "the row was deleted meanwhile; not started")
    assert gate.wait(ticket)[0] is False


def test_update_of_a_vanished_row_does_not_raise(db_url: str, engine: Engine) -> None:
    add_job(engine, "gone", due_in=-0.5)
    gate = StartGate(timeout=1)
    job_store = RunnerJobStore(engine, gate=gate, fence=lambda conn: True)
    job_store.start(None, "default")
    (job,) = job_store.get_due_jobs(datetime.now(UTC))
    with store.write_transaction(engine) as conn:
        store.delete_jobs(conn, ["gone"])
    ticket = gate.expect("gone")
    job.next_run_time = datetime.now(UTC) + timedelta(seconds=5)
    job_store.update_job(job)  # APScheduler's own store raises JobLookupError here
    assert gate.wait(ticket) == (False, "the row was deleted meanwhile; not started")
    assert "gone" not in raw_rows(engine)


@pytest.mark.slow
def test_sqlite_lease_is_exclusive_and_expires(sqlite_url: str) -> None:
    engine = store.connect(sqlite_url)
    prepare(engine)
    first, second = SqliteLeader(sqlite_url, lease_seconds=1), SqliteLeader(sqlite_url, lease_seconds=1)
    assert first.try_acquire()
    assert not second.try_acquire()
    time.sleep(1.1)  # the first stops renewing (as a killed process would): the lease runs out
    assert not first.valid()
    assert second.try_acquire()
    with pytest.raises(LeadershipLost):
        first.watch(0.01)
    with engine.connect() as conn:
        assert not first.fence(conn)
        assert second.fence(conn)
    second.release()
    third = SqliteLeader(sqlite_url, lease_seconds=1)
    assert third.try_acquire()  # released: no need to wait for expiry
    third.release()
    first.release()
    engine.dispose()


def test_postgres_lock_is_exclusive_and_dies_with_its_session(pg_url: str) -> None:
    engine = store.connect(pg_url)
    first, second = PostgresLeader(engine), PostgresLeader(engine)
    assert first.try_acquire()
    assert not second.try_acquire()
    with engine.connect() as conn:
        assert first.fence(conn) and not second.fence(conn)
        # the leader's session ends (a killed process): the server drops its lock
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first._backend_pid})
    with pytest.raises(LeadershipLost):
        for _ in range(20):
            first.watch(0.05)
            first._last_beat = 0.0  # force the heartbeat query
    assert not first.valid()
    assert second.try_acquire()
    second.release()
    first.release()
    engine.dispose()


def test_store_reports_ledger_key_of_due_jobs(sqlite_url: str) -> None:
    engine = store.connect(sqlite_url)
    prepare(engine)
    add_job(engine, "owned", due_in=-0.2)
    with store.write_transaction(engine) as conn:
        store.write_ledger(
            conn,
            [
                store.LedgerEntry(
                    namespace="default",
                    key="nightly",
                    schedule_id="owned",
                    workflow_name="task_clean_up_tasks",
                    spec_hash="x",
                    row_hash=None,
                    enabled=True,
                    protect=False,
                )
            ],
            [],
        )
    job_store = RunnerJobStore(engine, gate=StartGate(), fence=lambda conn: True)
    job_store.start(None, "default")
    (job,) = job_store.get_due_jobs(datetime.now(UTC))
    assert (job.ledger_key, job.kwargs["workflow_name"]) == ("nightly", "task_clean_up_tasks")
    assert job.func_ref == "orchestrator.core.schedules.service:run_start_workflow_scheduler_task"
    engine.dispose()
