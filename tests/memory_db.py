"""An in-memory stand-in for the three tables, so the pure planner and the ledger decisions can be tested
without a database: apply's own `_collect` builds the writes, `execute` carries them out with the same
constraints the real schema has (the linker row's foreign key, the ledger's primary key).

Real databases are tested elsewhere (test_reconcile, test_ledger_decisions); this is for fast, exhaustive
unit and property tests of the decisions themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from reconciler.apply import ApplySettings, Provenance, _collect, _Writes
from reconciler.jobstate import JobRow, build_job_row, load_job_state, repickle, state_digest, utc_timestamp
from reconciler.plan import Plan, PlanSettings, compute_plan, expected_rows
from reconciler.spec import DesiredSchedule
from reconciler.state import LedgerEntry, LiveJob, LiveState, Workflow

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TASK_A = Workflow("00000000-0000-0000-0000-00000000000a", "task_a", "Task A", True, False)
TASK_B = Workflow("00000000-0000-0000-0000-00000000000b", "task_b", "Task B", True, False)
NOT_A_TASK = Workflow("00000000-0000-0000-0000-00000000000c", "wf_c", "Workflow C", False, False)
WORKFLOWS = (TASK_A, TASK_B, NOT_A_TASK)
SETTINGS = PlanSettings()
EMPTY = LiveState((), (), WORKFLOWS, True)


class ConstraintViolation(AssertionError):
    """What the real database would refuse (and roll back)."""


def desired(key: str, **fields: object) -> DesiredSchedule:
    """A declared schedule: hourly interval on task_a in UTC unless told otherwise."""
    spec: dict[str, object] = {
        "key": key,
        "workflow_name": "task_a",
        "trigger": "interval",
        "trigger_kwargs": {"hours": 1},
        "timezone": "UTC",
    }
    spec.update(fields)
    return DesiredSchedule(**spec)  # type: ignore[arg-type]


def job(row: JobRow, workflow_ids: Sequence[str]) -> LiveJob:
    """A row as the edge hands it over when read whole: decoded."""
    return LiveJob(
        row.id,
        row.next_run_time,
        tuple(sorted(workflow_ids)),
        state_digest(row.job_state),
        load_job_state(row.job_state),
    )


def execute(live: LiveState, writes: _Writes) -> LiveState:
    """`writes` carried out on `live` in _write's order, with the schema's constraints checked."""
    rows = {j.id: j for j in live.jobs}
    links = {j.id: set(j.workflow_ids) for j in live.jobs}
    for i in writes.deletes:
        rows.pop(i, None)
        links.pop(i, None)
    for w, s in writes.drop_links:
        links.get(s, set()).discard(w)
    for row in [*writes.updates, *writes.inserts]:
        if (row in writes.inserts) == (row.id in rows):
            raise ConstraintViolation(f"{'insert of an existing' if row.id in rows else 'update of a missing'} row")
        rows[row.id] = job(row, ())
        links.setdefault(row.id, set())
    known = {w.workflow_id for w in live.workflows}
    for w, s in writes.add_links:
        if s not in rows or w not in known:
            raise ConstraintViolation(f"linker row ({w}, {s}) points at nothing: foreign key violated")
        if w in links[s]:
            raise ConstraintViolation(f"linker row ({w}, {s}) twice: unique constraint violated")
        links[s].add(w)
    ledger = {(e.namespace, e.key): e for e in live.ledger}
    for key in writes.ledger_remove:
        ledger.pop(key, None)
    for entry in writes.ledger:
        if (entry.namespace, entry.key) in ledger:
            raise ConstraintViolation(f"ledger entry {entry.key} twice: primary key violated")
        ledger[(entry.namespace, entry.key)] = replace(entry, applied_at=entry.applied_at or NOW)
    jobs = tuple(replace(j, workflow_ids=tuple(sorted(links[i]))) for i, j in sorted(rows.items()))
    return LiveState(jobs, tuple(sorted(ledger.values(), key=lambda e: e.key)), live.workflows, True)


def apply_plan(plan: Plan, live: LiveState, now: datetime = NOW, commit: str | None = "c0mm17") -> LiveState:
    """What apply writes for `plan` (its own `_collect`), carried out in memory."""
    return execute(live, _collect(plan, live, SETTINGS, ApplySettings(provenance=Provenance(commit, "a")), now))


def reconcile(schedules: Sequence[DesiredSchedule], live: LiveState = EMPTY, now: datetime = NOW) -> LiveState:
    plan = compute_plan(schedules, live, SETTINGS, now)
    assert not plan.errors, plan.errors
    return apply_plan(plan, live, now)


def as_edge_reads(live: LiveState, schedules: Sequence[DesiredSchedule]) -> LiveState:
    """`live` as the store hands it to the planner: rows matching `expected_rows` as digests only."""
    expected = expected_rows(schedules, live.ledger, live.workflows, SETTINGS)
    jobs = tuple(
        replace(j, state=None, unreadable=None)
        if j.id in expected and expected[j.id].matches(j.row_hash, j.workflow_ids)
        else j
        for j in live.jobs
    )
    return replace(live, jobs=jobs)


def without_row_hashes(live: LiveState) -> LiveState:
    """The ledger without row hashes: every row is then compared in full."""
    return replace(live, ledger=tuple(replace(e, row_hash=None) for e in live.ledger))


def rewrite(live: LiveState, job_id: str, *, column: float | str | None = "same", **state: object) -> LiveState:
    """A row changed behind the reconciler's back: job_state keys replaced and/or the column set."""
    jobs = []
    for j in live.jobs:
        if j.id == job_id:
            assert j.state is not None
            blob = repickle(j.state, **state)
            new_state = load_job_state(blob)
            value = utc_timestamp(new_state["next_run_time"]) if column == "same" else column
            j = LiveJob(j.id, value, j.workflow_ids, state_digest(blob), new_state)  # type: ignore[arg-type]
        jobs.append(j)
    return replace(live, jobs=tuple(jobs))


def with_links(live: LiveState, job_id: str, workflow_ids: Sequence[str]) -> LiveState:
    return replace(
        live,
        jobs=tuple(replace(j, workflow_ids=tuple(sorted(workflow_ids))) if j.id == job_id else j for j in live.jobs),
    )


def without_row(live: LiveState, job_id: str) -> LiveState:
    return replace(live, jobs=tuple(j for j in live.jobs if j.id != job_id))


def foreign_row(job_id: str, *, workflow: Workflow | None = TASK_B, func: str | None = None) -> LiveJob:
    """A row the reconciler did not write (API-made with a link, or a decorator job without one)."""
    from apscheduler.triggers.interval import IntervalTrigger

    trigger = IntervalTrigger(hours=2, timezone="UTC", start_date=NOW)
    row = build_job_row(
        job_id=job_id,
        trigger=trigger,
        workflow_name=workflow.name if workflow else "x",
        user_inputs=[{}],
        name="Made elsewhere",
        next_run_time=trigger.get_next_fire_time(None, NOW),
        **({"func": func} if func else {}),
    )
    return job(row, [workflow.workflow_id] if workflow else [])


def ledger_of(live: LiveState) -> dict[str, LedgerEntry]:
    return {e.key: e for e in live.ledger}
