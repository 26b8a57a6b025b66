"""The runner's APScheduler job store on orchestrator-core's `apscheduler_jobs` table.

It differs from APScheduler's SQLAlchemyJobStore where that one hurts a shared table:

- Rows are read with the allow-list unpickler (`jobstate.load_job_state`); the `func` named in a row
  is never imported. Rows whose func is orchestrator-core's scheduler task are runnable (our executor
  starts them through a starter); any other row is logged once and skipped — never deleted.
- A skipped row that is due does not make the scheduler spin: `get_next_run_time` looks past it.
- `update_job` / `remove_job` re-read the row under a write lock and compare it with what was loaded:
  a row deleted by another process is logged and left deleted (no JobLookupError into the scheduler
  thread); a row changed by another process keeps that process's content (only its next_run_time is
  moved past the run just handled, when it still points at it).
- Only `next_run_time` is ever rewritten: the pickle is re-made from the state as it was read, so an
  unknown executor alias, args or kwargs survive byte for byte in meaning.
- Every write is fenced by the leader lock, and each start waits (`StartGate`) until the new
  next_run_time of its job is committed: a runner killed at any moment leaves at most a missed run,
  never a second start of the same run time by its standby.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError
from apscheduler.triggers.combining import AndTrigger
from sqlalchemy import insert, null, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from reconciler import store, triggers
from reconciler.jobstate import ORCHESTRATOR_FUNC, UnreadableJobState, load_job_state, repickle, utc_timestamp

log = structlog.get_logger("reconciler.runner")

MAX_CATCH_UP = 100_000  # run times walked when merging a row another process changed


def _placeholder_func() -> None:
    """The in-memory callable of a restored job; never called (the executor uses a starter)."""


class StoredJob(Job):  # type: ignore[misc]
    """A Job restored from a row, carrying the row as it was read (for compare-and-write)."""

    __slots__ = ("ledger_key", "ledger_namespace", "stored_blob", "stored_state")

    stored_state: dict[str, Any]
    stored_blob: bytes
    ledger_key: str | None
    ledger_namespace: str | None


@dataclass
class _Ticket:
    event: threading.Event = field(default_factory=threading.Event)
    proceed: bool = False
    reason: str = "the job store never confirmed the new next_run_time"


class StartGate:
    """Holds each start until the store has committed its job's next run (or found it gone)."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pending: dict[str, _Ticket] = {}

    def expect(self, job_id: str) -> _Ticket:
        """Called by the executor when it accepts a job, before the store writes it."""
        ticket = _Ticket()
        with self._lock:
            stale = self._pending.pop(job_id, None)
            self._pending[job_id] = ticket
        if stale is not None:  # its write never came (the pass failed): do not start it
            stale.event.set()
        return ticket

    def resolve(self, job_id: str, proceed: bool, reason: str = "") -> None:
        """Called by the store after its transaction: start (or not) the job that waits for this write."""
        with self._lock:
            ticket = self._pending.pop(job_id, None)
        if ticket is not None:
            ticket.proceed = proceed
            ticket.reason = reason
            ticket.event.set()

    def wait(self, ticket: _Ticket) -> tuple[bool, str]:
        """Block until resolved (or the timeout); returns (proceed, reason)."""
        if not ticket.event.wait(self.timeout):
            return False, f"the new next_run_time was not committed within {self.timeout:g}s"
        return ticket.proceed, ticket.reason


def _digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class _Row:
    id: str
    next_run_time: float | None
    job_state: bytes
    key: str | None
    namespace: str | None


class RunnerJobStore(BaseJobStore):  # type: ignore[misc]
    """APScheduler job store over `apscheduler_jobs` that never deletes what it cannot run."""

    def __init__(
        self,
        engine: Engine,
        *,
        gate: StartGate,
        fence: Callable[[Connection], bool],
        runnable_funcs: Collection[str] = (ORCHESTRATOR_FUNC,),
    ) -> None:
        super().__init__()
        self._engine = engine
        self._gate = gate
        self._fence = fence
        self._runnable = frozenset(runnable_funcs)
        self._with_ledger = False
        self._skipped: dict[str, float | None] = {}  # id -> next_run_time of a due row skipped this pass
        self._reported: set[tuple[str, str]] = set()
        self._loaded: dict[str, StoredJob] = {}  # the last pass's due jobs, for remove_job's comparison

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self, scheduler: Any, alias: str) -> None:
        """Attach to the scheduler; the tables must exist already (the runner prepares them, never here)."""
        super().start(scheduler, alias)
        with self._engine.connect() as conn:
            self._with_ledger = store.ledger_exists(conn)

    def shutdown(self) -> None:
        """Nothing to close: the engine belongs to the runner."""

    # -- reading -------------------------------------------------------------------------------------
    def _select(self) -> Any:
        jobs = store.apscheduler_jobs
        if self._with_ledger:
            ledger = store.ledger
            return select(
                jobs.c.id, jobs.c.next_run_time, jobs.c.job_state, ledger.c.key, ledger.c.namespace
            ).select_from(jobs.outerjoin(ledger, ledger.c.schedule_id == jobs.c.id))
        return select(jobs.c.id, jobs.c.next_run_time, jobs.c.job_state, null(), null())

    def _rows(self, statement: Any) -> list[_Row]:
        with self._engine.connect() as conn:
            return [_Row(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in conn.execute(statement)]

    def _report(self, row: _Row, reason: str) -> None:
        digest = _digest(row.job_state)
        self._skipped[row.id] = row.next_run_time
        if (row.id, digest) not in self._reported:  # once per row content, not once per pass
            self._reported.add((row.id, digest))
            log.warning("job skipped, left untouched", schedule_id=row.id, key=row.key, reason=reason)

    def restore(self, row: _Row) -> StoredJob | None:
        """A Job for a runnable row; None (logged once, row untouched) for anything else."""
        try:
            state = load_job_state(row.job_state)
        except UnreadableJobState as exc:
            self._report(row, f"unreadable: {exc}")
            return None
        kwargs = state.get("kwargs")
        if state["func"] not in self._runnable:
            self._report(row, f"not runnable here: func {state['func']} is not orchestrator-core's scheduler task")
            return None
        if not isinstance(kwargs, dict) or not isinstance(kwargs.get("workflow_name"), str):
            self._report(row, "not runnable here: kwargs lack a workflow_name")
            return None
        if _contains_and(state["trigger"]) and not _and_converges(state["trigger"], state["next_run_time"]):
            self._report(row, "not runnable here: its 'and' trigger never converges (it would hang the scheduler)")
            return None
        self._skipped.pop(row.id, None)
        job = StoredJob.__new__(StoredJob)
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        job.id = row.id
        job.func_ref = state["func"]
        job.func = _placeholder_func
        job.trigger = state["trigger"]
        job.executor = "default"  # always ours; the row keeps whatever it says (see update_job)
        job.args = tuple(state.get("args") or ())
        job.kwargs = dict(kwargs)
        job.name = state.get("name") or row.id
        job.misfire_grace_time = state.get("misfire_grace_time")
        job.coalesce = bool(state.get("coalesce", True))
        job.max_instances = int(state.get("max_instances") or 1)
        job.next_run_time = state.get("next_run_time")
        job.stored_state = state
        job.stored_blob = row.job_state
        job.ledger_key = row.key
        job.ledger_namespace = row.namespace
        return job

    def _restore_all(self, rows: list[_Row]) -> list[StoredJob]:
        return [job for job in (self.restore(r) for r in rows) if job is not None]

    def lookup_job(self, job_id: str) -> StoredJob | None:
        """The job with this id, or None when it is missing or not runnable here."""
        rows = self._rows(self._select().where(store.apscheduler_jobs.c.id == job_id))
        return self.restore(rows[0]) if rows else None

    def get_due_jobs(self, now: datetime) -> list[StoredJob]:
        """Runnable jobs due at `now`, earliest first (unrunnable ones are logged and skipped)."""
        jobs = store.apscheduler_jobs
        stamp = now.timestamp()
        # Only rows skipped in *this* pass are looked past afterwards: a row fixed by someone else is
        # tried again when it falls due, even if its next_run_time did not change.
        self._skipped = {}
        rows = self._rows(self._select().where(jobs.c.next_run_time <= stamp).order_by(jobs.c.next_run_time))
        due = self._restore_all(rows)
        self._loaded = {job.id: job for job in due}
        return due

    def get_next_run_time(self) -> datetime | None:
        """The earliest next run of a row that is not known to be skipped (so a stuck row cannot spin us)."""
        jobs = store.apscheduler_jobs
        statement = (
            select(jobs.c.id, jobs.c.next_run_time)
            .where(jobs.c.next_run_time.is_not(None))
            .order_by(jobs.c.next_run_time)
            .limit(len(self._skipped) + 1)
        )
        with self._engine.connect() as conn:
            for job_id, next_run in conn.execute(statement):
                if job_id in self._skipped and self._skipped[job_id] == next_run:
                    continue
                return datetime.fromtimestamp(next_run, UTC)
        return None

    def get_all_jobs(self) -> list[StoredJob]:
        """Every runnable job, paused ones last."""
        jobs = store.apscheduler_jobs
        restored = self._restore_all(self._rows(self._select().order_by(jobs.c.next_run_time)))
        self._fix_paused_jobs_sorting(restored)
        return restored

    def census(self) -> dict[str, int]:
        """How many rows are runnable here and how many are skipped (for the leader's first log line)."""
        rows = self._rows(self._select())
        runnable = len(self._restore_all(rows))
        return {"jobs": len(rows), "runnable": runnable, "skipped": len(rows) - runnable}

    # -- writing -------------------------------------------------------------------------------------
    def add_job(self, job: Job) -> None:
        """INSERT a job row (the runner itself never adds jobs; kept for the interface)."""
        blob = _pickle_job(job)
        try:
            with store.write_transaction(self._engine) as conn:
                conn.execute(
                    insert(store.apscheduler_jobs).values(
                        id=job.id, next_run_time=utc_timestamp(job.next_run_time), job_state=blob
                    )
                )
        except IntegrityError:
            raise ConflictingIdError(job.id) from None

    def update_job(self, job: Job) -> None:
        """Write the job's new next_run_time, unless another process changed or removed the row meanwhile."""
        if not isinstance(job, StoredJob):
            self._plain_update(job)
            return
        self._write_back(job.id, job, job.next_run_time)

    def remove_job(self, job_id: str) -> None:
        """Delete a job whose trigger is exhausted — only if the row is still the one that was run."""
        loaded = self._loaded.get(job_id)
        if loaded is None:
            with store.write_transaction(self._engine) as conn:
                if self._fence(conn):
                    store.delete_jobs(conn, [job_id])
            return
        self._write_back(job_id, loaded, None)

    def remove_all_jobs(self) -> None:
        """Refused: the runner never empties a table it shares with orchestrator-core and the reconciler."""
        raise RuntimeError("the runner's job store never deletes all jobs")

    def _write_back(self, job_id: str, loaded: StoredJob, next_run: datetime | None) -> None:
        proceed, reason = False, "not written"
        try:
            with store.write_transaction(self._engine) as conn:
                proceed, reason = self._write_locked(conn, job_id, loaded, next_run)
        finally:
            self._gate.resolve(job_id, proceed, reason)
        if reason and reason != "written":
            log.info("job row not written as read", schedule_id=job_id, key=loaded.ledger_key, outcome=reason)

    def _write_locked(
        self, conn: Connection, job_id: str, loaded: StoredJob, next_run: datetime | None
    ) -> tuple[bool, str]:
        jobs = store.apscheduler_jobs
        current = conn.execute(select(jobs.c.job_state).where(jobs.c.id == job_id).with_for_update()).first()
        if not self._fence(conn):
            return False, "this runner is no longer the leader; nothing written, not started"
        if current is None:
            return False, "the row was deleted meanwhile; not started"
        blob = bytes(current[0])
        if blob == loaded.stored_blob:
            if next_run is None:
                store.delete_jobs(conn, [job_id])
            else:
                self._store_next_run(conn, job_id, loaded.stored_state, next_run)
            return True, "written"
        return self._merge(conn, job_id, blob)

    def _merge(self, conn: Connection, job_id: str, blob: bytes) -> tuple[bool, str]:
        # The run time we handled was due under the row as we read it, so it still starts; the row
        # itself now belongs to whoever rewrote it: keep their content and only move a next_run_time
        # that still points at (or before) the run we just handled.
        try:
            state = load_job_state(blob)
        except UnreadableJobState:
            return True, "the row was rewritten and is now unreadable; left untouched"
        current: datetime | None = state.get("next_run_time")
        now = datetime.now(UTC)
        if current is None:
            return False, "the row was paused meanwhile; left paused, not started"
        if current > now:
            return True, "the row was rescheduled meanwhile; its new next_run_time is kept"
        following = _next_after(state["trigger"], current, now)
        if following is None:
            store.delete_jobs(conn, [job_id])
            return True, "the row was rewritten meanwhile and has no further run; removed"
        self._store_next_run(conn, job_id, state, following)
        return True, "the row was rewritten meanwhile; kept its content, moved its next_run_time"

    def _store_next_run(self, conn: Connection, job_id: str, state: dict[str, Any], next_run: datetime) -> None:
        # Column and pickle from the same value: a mismatch makes APScheduler busy-loop.
        conn.execute(
            update(store.apscheduler_jobs)
            .where(store.apscheduler_jobs.c.id == job_id)
            .values(next_run_time=utc_timestamp(next_run), job_state=repickle(state, next_run_time=next_run))
        )

    def _plain_update(self, job: Job) -> None:
        jobs = store.apscheduler_jobs
        with store.write_transaction(self._engine) as conn:
            if self._fence(conn):
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job.id)
                    .values(next_run_time=utc_timestamp(job.next_run_time), job_state=_pickle_job(job))
                )


def _pickle_job(job: Job) -> bytes:
    import pickle

    return pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL)


def _contains_and(trigger: Any) -> bool:
    if isinstance(trigger, AndTrigger):
        return True
    return any(_contains_and(sub) for sub in getattr(trigger, "triggers", ()) or ())


def _and_converges(trigger: Any, next_run: datetime | None) -> bool:
    # APScheduler 3.11's AndTrigger can loop forever inside the scheduler thread; ask the bounded
    # evaluator first, from where the scheduler will ask.
    try:
        triggers.next_fire_times(trigger, 1, datetime.now(UTC), previous=next_run)
    except triggers.TriggerError:
        return False
    return True


def _next_after(trigger: Any, current: datetime, now: datetime) -> datetime | None:
    """The first fire time after `now`, walking from `current` as the scheduler would."""
    moment: datetime | None = current
    for _ in range(MAX_CATCH_UP):
        if moment is None or moment > now:
            return moment
        moment = trigger.get_next_fire_time(moment, now)
    return None
