"""Apply: re-plan under a lock and write the whole plan in ONE transaction, then wake the scheduler.

The plan is always recomputed inside the locked transaction from what the database holds at that
moment; a saved plan only contributes its desired set and its fingerprint (refused when stale).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from reconciler import guard, interrupts, migrate, reads, store, triggers
from reconciler.apply_settings import ApplySettings as ApplySettings  # re-exported: callers say applier.X
from reconciler.apply_settings import Provenance as Provenance
from reconciler.frozen import evolve
from reconciler.jobstate import JobRow, build_job_row
from reconciler.plan import Change, LedgerRecord, Plan, PlanSettings
from reconciler.spec import DesiredSchedule
from reconciler.state import LedgerEntry, LiveJob, LiveState

log = logging.getLogger(__name__)

MAX_HOLD_CHECKS = 10_000  # hold checks of one plan before giving up (each waits, or follows a move)
LOCK_KEY = int.from_bytes(hashlib.sha256(b"reconciler apply").digest()[:8], "big", signed=True)
NOTIFY_CHANNEL = "reconciler_schedules_changed"
SCHEDULER_QUEUE = "scheduler:queue:"  # orchestrator-core's Redis queue, consumed by `scheduler run`


class ApplyError(Exception):
    """The apply did not happen; `exit_code` says why (1 refused/error, 3 lock or stale plan)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    woken: str
    verified: bool
    remaining: int
    waited_seconds: float
    rendered: str | None = None  # `render(plan)`, made by the helper child alongside the writes (else None)


# A helper child (forked.py) builds part of the rows from this many on; below it the fork costs more than it
# saves. The child takes the smaller share because it also renders the plan.
HELPER_ROWS = 1000
HELPER_SHARE = 0.3  # at 10,000: the child 3,000 rows and the rendering, the parent 7,000 rows, each ~0.25 s


@dataclass(frozen=True)
class _Aside:
    """What the helper child made while the parent built the other rows: its rows by id, the rendered plan."""

    rows: dict[str, JobRow]
    rendered: str | None


class _Written(NamedTuple):
    """What `_apply_locked` committed: the plan, its writes, the seconds it waited, `render(plan)` if made."""

    plan: Plan
    writes: _Writes
    waited: float
    rendered: str | None


def _take_lock(conn: Connection, timeout: float) -> None:
    if store.is_sqlite(conn):
        return  # BEGIN IMMEDIATE already holds the write lock
    deadline = time.monotonic() + timeout
    while True:
        if conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}).scalar_one():
            return
        if time.monotonic() >= deadline:
            raise ApplyError(f"another apply holds the lock; gave up after --lock-timeout {timeout:g}s", 3)
        time.sleep(0.1)


def first_fire_time(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The next_run_time of a new job, as APScheduler's add_job computes it (bounded for combinations)."""
    if isinstance(trigger, AndTrigger | OrTrigger | CalendarIntervalTrigger):
        times = triggers.next_fire_times(trigger, 1, now)
        return times[0] if times else None
    moment: datetime | None = trigger.get_next_fire_time(None, now)
    return moment


@dataclass
class _Writes:
    inserts: list[JobRow] = field(default_factory=list)
    updates: list[JobRow] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    add_links: list[tuple[str, str]] = field(default_factory=list)
    drop_links: list[tuple[str, str]] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    ledger_remove: list[tuple[str, str]] = field(default_factory=list)
    woken_candidates: list[tuple[str, str]] = field(default_factory=list)  # (schedule_id, name)


def _collect(
    plan: Plan,
    live: LiveState,
    settings: PlanSettings,
    apply: ApplySettings,
    now: datetime,
    built: dict[str, JobRow] | None = None,
) -> _Writes:
    """The rows, links and ledger entries that carry out the plan's changes, exactly as each Change decided.

    `built`: every row the plan writes, by id, as `_rows` builds them for these `live` rows and this `now`
    (`_collect_helped` shares that work with a child); None builds them here."""
    jobs = {j.id: j for j in live.jobs}
    if built is None:
        built = _rows(_writing(plan), jobs, settings, now)
    out = _Writes()
    for change in plan.changes:
        job = jobs.get(change.schedule_id)
        written: JobRow | None = None
        if change.replaces_job_id:
            out.deletes.append(change.replaces_job_id)  # the decorator's row: one job remains
        if change.remove_row:
            out.deletes.append(change.schedule_id)
        elif change.write_row:
            written = built[change.schedule_id]
            (out.updates if job is not None else out.inserts).append(written)
            assert change.name is not None
            out.woken_candidates.append((written.id, change.name))
        out.add_links.extend((w, change.schedule_id) for w in change.links_add)
        out.drop_links.extend((w, change.schedule_id) for w in change.links_drop)
        out.ledger_remove.extend((settings.namespace, key) for key in change.ledger_drop)
        entry = change.ledger_entry
        if entry is not None and change.ledger in (LedgerRecord.APPLIED, LedgerRecord.KEPT_COMMIT):
            updates: dict[str, Any] = {} if written is None else {"row_hash": written.row_hash}
            if change.ledger is LedgerRecord.APPLIED:
                updates.update(applied_commit=apply.provenance.commit, applied_author=apply.provenance.author)
            entry = evolve(entry, **updates) if updates else entry
            out.ledger.append(entry)
    return out


def _collect_helped(
    plan: Plan,
    live: LiveState,
    settings: PlanSettings,
    apply: ApplySettings,
    now: datetime,
    render: Callable[[Plan], str] | None,
) -> tuple[_Writes, str | None]:
    """`_collect`, and `render(plan)`: with many rows, a helper child (forked.py) renders the plan and
    pickles a share of the rows while this process pickles the rest (pickling is most of a large apply's
    own CPU). Without a usable helper, both happen here, the rendering left to the caller (None)."""
    from reconciler import forked

    writing = _writing(plan)
    if len(writing) < HELPER_ROWS:
        return _collect(plan, live, settings, apply, now), None
    split = len(writing) - int(len(writing) * HELPER_SHARE)
    mine, theirs = writing[:split], writing[split:]
    jobs = {j.id: j for j in live.jobs}

    def aside() -> _Aside:
        return _Aside(_rows(theirs, jobs, settings, now), render(plan) if render is not None else None)

    helper = forked.Forked.start(aside, _Aside)  # None where helpers are off: then all of it here
    try:
        built = _rows(mine, jobs, settings, now)
        got = helper.result() if helper is not None else None
    finally:
        if helper is not None:
            helper.close()
    built |= got.rows if got is not None else _rows(theirs, jobs, settings, now)
    return _collect(plan, live, settings, apply, now, built), got.rendered if got is not None else None


def _writing(plan: Plan) -> list[Change]:
    """The changes that write a row, in plan order (as `_collect` reads them)."""
    return [c for c in plan.changes if c.write_row and not c.remove_row]


def _rows(
    changes: Sequence[Change], jobs: Mapping[str, LiveJob], settings: PlanSettings, now: datetime
) -> dict[str, JobRow]:
    """The rows `changes` write, by id; `jobs`: the live rows by id."""
    first_fires: dict[int, tuple[BaseTrigger, datetime | None]] = {}
    return {c.schedule_id: _build_row(c, jobs.get(c.schedule_id), settings, now, first_fires) for c in changes}


def _build_row(
    change: Change,
    job: LiveJob | None,
    settings: PlanSettings,
    now: datetime,
    first_fires: dict[int, tuple[BaseTrigger, datetime | None]],
) -> JobRow:
    desired = change.desired
    assert desired is not None and change.name is not None, "the plan writes rows only for declared schedules"
    if job is not None and not change.reschedule:
        # Same trigger meaning: keep the live trigger object and next_run_time (the phase).
        assert job.state is not None, "a row the plan rewrites in place was decoded by the edge"
        trigger = job.state["trigger"]
        next_run = job.state["next_run_time"]
    else:
        trigger = triggers.build_trigger(desired.trigger, desired.trigger_kwargs, desired.timezone, now=now)
        # Equal specs share one trigger object: its first fire time is computed once per apply.
        memo = first_fires.get(id(trigger))
        if memo is None or memo[0] is not trigger:
            memo = first_fires[id(trigger)] = (trigger, first_fire_time(trigger, now))
        # A row taking over a decorator's job keeps that job's next run (the plan checked the trigger agrees).
        next_run = change.inherit_next_run or memo[1]
    return build_job_row(
        job_id=change.schedule_id,
        trigger=trigger,
        workflow_name=desired.workflow_name,
        user_inputs=desired.user_inputs if settings.generation >= 5 else None,  # 4.x's task takes none
        name=change.name,
        next_run_time=next_run,
        misfire_grace_time=desired.misfire_grace_time,
        coalesce=desired.coalesce,
        max_instances=desired.max_instances,
        func=settings.func,
    )


def _write(conn: Connection, writes: _Writes) -> None:
    # Deletes first (a rename keeps its id, so nothing collides), then rows before their linker rows.
    store.delete_jobs(conn, writes.deletes)
    store.delete_links(conn, writes.drop_links)
    store.update_jobs(conn, writes.updates)
    store.insert_jobs(conn, writes.inserts, writes.add_links)
    if store.ledger_exists(conn):
        store.write_ledger(conn, writes.ledger, writes.ledger_remove)
    if not store.is_sqlite(conn):
        conn.execute(text("SELECT pg_notify(:c, '')"), {"c": NOTIFY_CHANNEL})


def wake_scheduler(redis_url: str | None, candidates: Sequence[tuple[str, str]]) -> str:
    """Push a harmless same-name update onto orchestrator-core's queue so its scheduler re-reads the table."""
    if not candidates:
        return "scheduler not woken: no job row was written"
    if not redis_url:
        return "scheduler not woken (no --redis / CACHE_URI): it sees the changes at its next wake-up"
    import redis

    schedule_id, name = candidates[0]
    payload = {
        "schedule_id": schedule_id,
        "name": name,
        "trigger": None,
        "trigger_kwargs": None,
        "scheduled_type": "update",
    }
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        client.lpush(SCHEDULER_QUEUE, json.dumps(payload).encode())
    except Exception as exc:
        return store.redact(f"scheduler NOT woken: Redis error: {exc}", redis_url)
    return f"scheduler woken through Redis (same-name update of {schedule_id})"


def prepare(engine: Engine, lock_timeout: float = 30.0) -> None:
    """Create what an apply needs: the embedded tables on an empty SQLite file, and the ledger.

    Under the apply lock: two first applies would otherwise race on CREATE TABLE.
    """
    with store.write_transaction(engine) as conn:
        _take_lock(conn, lock_timeout)
        if store.is_sqlite(conn) and not store.has_schedule_tables(conn) and not store.is_orchestrator_database(conn):
            store.create_compatible_tables(conn)
        if not store.has_schedule_tables(conn):
            raise ApplyError(store.missing_tables_message(store.target_of(conn)))
        migrate.upgrade(conn)


def apply(
    engine: Engine,
    desired: Sequence[DesiredSchedule],
    settings: PlanSettings,
    apply_settings: ApplySettings,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    render: Callable[[Plan], str] | None = None,
) -> ApplyResult:
    """Plan and write under the lock, in one transaction; then wake the scheduler and verify.

    SIGINT/SIGTERM meanwhile raise `interrupts.Interrupted`, whose line says whether the commit happened.
    `render`: how the caller will show the plan; a large apply's helper child renders it meanwhile (the
    result's `rendered`, None when it did not).
    """
    with interrupts.interruptible():
        try:
            prepare(engine, apply_settings.lock_timeout)
            plan, writes, waited, rendered = _apply_locked(
                engine, desired, settings, apply_settings, clock, sleep, render
            )
        except OperationalError as exc:
            if interrupts.phase() is interrupts.Phase.COMMITTING:
                interrupts.commit_failed()
            if "locked" in str(exc).lower():  # SQLite: BEGIN IMMEDIATE waited --lock-timeout in vain
                raise ApplyError(
                    f"another apply holds the lock; gave up after --lock-timeout {apply_settings.lock_timeout:g}s", 3
                ) from exc
            raise
        except BaseException:
            if interrupts.phase() is interrupts.Phase.COMMITTING:
                interrupts.commit_failed()
            raise
        interrupts.committed(len(plan.pending))
        interrupts.pause_point("committed")
        woken = wake_scheduler(apply_settings.redis_url, writes.woken_candidates)
        remaining = _verify(engine, writes, desired, settings, clock)
    return ApplyResult(plan, woken, remaining == 0, remaining, waited, rendered)


def _verify(
    engine: Engine,
    writes: _Writes,
    desired: Sequence[DesiredSchedule],
    settings: PlanSettings,
    clock: Callable[[], datetime],
) -> int:
    """Re-read the database: how many changes are still pending after the commit (0 = it matches).

    The rows just written are compared by digest; only when one differs (the scheduler may have fired a
    job since the commit) is the whole plan recomputed, which compares meaning rather than bytes.
    """
    written = [*writes.inserts, *writes.updates]
    touched = {r.id for r in written} | set(writes.deletes)
    linked = {s for _, s in writes.add_links} | {s for _, s in writes.drop_links}
    with engine.connect() as conn, conn.begin():
        digests = store.read_row_digests(conn, touched)  # only the rows this apply wrote or deleted
        links = store.read_links(conn, linked)
        rows_ok = all(r.id in digests and digests[r.id] == (r.next_run_time, r.state_digest) for r in written)
        links_ok = all(link in links for link in writes.add_links) and not any(
            link in links for link in writes.drop_links
        )
        rewritten = {r.id for r in written}
        deleted_ok = not any(i in digests for i in writes.deletes if i not in rewritten)
        if rows_ok and links_ok and deleted_ok:
            return 0
        _live, check = read_and_plan(conn, desired, settings, clock())
    return len(check.pending)


def _apply_locked(
    engine: Engine,
    desired: Sequence[DesiredSchedule],
    settings: PlanSettings,
    apply_settings: ApplySettings,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    render: Callable[[Plan], str] | None = None,
) -> _Written:
    """Plan under the apply lock, then write once no row the plan touches is held by a scheduler.

    PostgreSQL: each check takes `LOCK TABLE apscheduler_jobs IN ACCESS EXCLUSIVE MODE` in a savepoint,
    so no scheduler can read a row between the check and the commit; the rows are re-read under that
    lock and judged by the hold rule (guard.py). Held: the savepoint is rolled back (the scheduler may
    move its rows), the apply waits as the rule says and checks again, keeping its plan and its apply
    lock. SQLite (whose only scheduler is `schedules run`, which compares before it writes): the check
    is on the plan's reading, and a wait happens outside the transaction, which then plans again.
    """
    rule = guard.HoldRule(bound=apply_settings.guard_seconds)
    waited = 0.0
    previous: guard.Reading | None = None
    while True:
        with store.write_transaction(engine) as conn:
            _take_lock(conn, apply_settings.lock_timeout)
            now = clock()
            live, plan = read_and_plan(conn, desired, settings, now)
            if apply_settings.expected_fingerprint and plan.fingerprint != apply_settings.expected_fingerprint:
                raise ApplyError("stale plan: the database changed since the plan was made; plan again", 3)
            if plan.errors:
                raise ApplyError("plan refused: " + "; ".join(plan.errors))
            interrupts.pause_point("planned")
            touched = _touched_rows(plan, live)
            exclusive = bool(touched) and not store.is_sqlite(conn)
            writes, rendered = _collect_helped(plan, live, settings, apply_settings, now, render)
            basis = live
            for _check in range(MAX_HOLD_CHECKS):
                savepoint = conn.begin_nested() if exclusive else None
                fresh, reading = basis, {i: j.next_run_time for i, j in touched.items()}
                locked = True
                if exclusive:
                    locked = store.lock_job_table(conn, timeout=min(2.0, apply_settings.lock_timeout))
                    if locked:
                        fresh = store.reread_jobs(conn, live, touched)
                        reading = {j.id: j.next_run_time for j in fresh.jobs if j.id in touched}
                verdict = guard.hold(reading, clock().timestamp(), rule, previous)
                previous = reading
                vanished = locked and len(reading) < len(touched)  # deleted meanwhile: plan again
                moved = locked and _moved(basis, fresh, touched)
                if locked and verdict.free and not vanished and not moved:
                    _write(conn, writes)
                    if savepoint is not None:
                        savepoint.commit()
                    interrupts.pause_point("written")
                    interrupts.committing()  # leaving the `with` commits
                    return _Written(plan, writes, waited, rendered)
                if savepoint is not None:
                    savepoint.rollback()  # releases the table lock: the scheduler may move its rows now
                pause = 0.0 if (moved and verdict.free) else verdict.wait if locked else guard.POLL
                if waited + pause > guard.patience(rule):
                    raise ApplyError(
                        f"rows kept falling due for {waited:.1f}s (a scheduler holds each briefly when it runs it); "
                        "nothing was applied: retry, or apply the change in smaller parts"
                    )
                if not exclusive or vanished:
                    break
                if verdict.held:
                    log.info("waiting %.2fs: a scheduler may hold %d row(s)", pause, len(verdict.held))
                sleep(pause)
                waited += pause
                # Rebuild the writes outside the table lock (it blocks the scheduler): from the rows as the
                # scheduler left them (a kept phase must be its new next_run_time), as of now.
                basis = store.reread_jobs(conn, live, touched)
                writes = _collect(plan, basis, settings, apply_settings, clock())
            else:
                raise ApplyError("the rows to write kept changing under the apply; nothing was applied: retry")
        sleep(pause)  # SQLite, or a row vanished: outside the transaction, then plan again
        waited += pause


def _touched_rows(plan: Plan, live: store.LiveState) -> dict[str, store.LiveJob]:
    """The existing rows the plan rewrites or deletes (a new row cannot be in a scheduler's hands)."""
    jobs = {j.id: j for j in live.jobs}
    wanted = {c.schedule_id for c in plan.changes if c.write_row or c.remove_row}
    wanted |= {c.replaces_job_id for c in plan.changes if c.replaces_job_id}  # a decorator's row we delete
    return {i: jobs[i] for i in sorted(wanted) if i in jobs}


def _moved(basis: store.LiveState, fresh: store.LiveState, ids: Collection[str]) -> bool:
    """Whether any of the rows `ids` differs between the two readings (the scheduler moved it)."""
    before = {j.id: (j.next_run_time, j.state_digest) for j in basis.jobs if j.id in ids}
    return any(before.get(j.id) != (j.next_run_time, j.state_digest) for j in fresh.jobs if j.id in ids)


def dry_run(engine: Engine, desired: Sequence[DesiredSchedule], settings: PlanSettings, now: datetime) -> Plan:
    """The plan without writing anything (no migration, no ledger, no lock): safe for a read-only role."""
    with engine.connect() as conn, conn.begin():
        return reads.dry_run_plan(reads.Reader.of(conn), desired, settings, now)


def read_and_plan(
    conn: Connection, desired: Sequence[DesiredSchedule], settings: PlanSettings, now: datetime
) -> tuple[LiveState, Plan]:
    """Read the live state inside `conn`'s transaction and plan it (see `reads.read_and_plan`)."""
    return reads.read_and_plan(reads.Reader.of(conn), desired, settings, now)
