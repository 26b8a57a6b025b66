"""`replaces:` in the pure planner: a migrated decorator's stored row is taken over, so one job remains.

In-memory states and a fixed clock (tests/memory_db.py); test_decorator_takeover.py does the same end to
end with a row APScheduler itself stored.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from apscheduler.triggers.interval import IntervalTrigger

from reconciler.jobstate import build_job_row, load_job_state, repickle, state_digest, utc_timestamp
from reconciler.plan import Action, PlanSettings, compute_plan, schedule_id_for
from reconciler.spec import DesiredSchedule, SourceLocation
from reconciler.state import LedgerEntry, LiveJob, LiveState
from tests.memory_db import EMPTY, NOW, SETTINGS, TASK_A, apply_plan, desired, job, ledger_of, reconcile

OLD_ID = "resume-workflows"
A_ID = schedule_id_for("default", "a")
# The decorator's interval started half an hour ago: its next run (12:30 + 1 h) is not the one a new
# interval would get (now + 1 h), so keeping it is visible.
OLD_NEXT = NOW + timedelta(minutes=30)


def decorator_row(hours: int = 1, *, start: datetime | None = None, next_run: datetime = OLD_NEXT) -> LiveJob:
    begins = start or NOW - timedelta(hours=hours, minutes=-30)
    trigger = IntervalTrigger(hours=hours, timezone="UTC", start_date=begins)
    row = build_job_row(
        job_id=OLD_ID,
        trigger=trigger,
        workflow_name="task_a",
        user_inputs=None,
        name="Resume workflows",
        next_run_time=next_run,
        func="app.schedules:run_resume_workflows",
    )
    return job(row, [])


def rewrite_row(row: LiveJob, **state: object) -> LiveJob:
    """The decorator's row as its own scheduler rewrote it (job_state keys replaced, column kept in step)."""
    assert row.state is not None
    blob = repickle(row.state, **state)
    new_state = load_job_state(blob)
    return LiveJob(row.id, utc_timestamp(new_state["next_run_time"]), row.workflow_ids, state_digest(blob), new_state)


def desired_start(start: datetime) -> DesiredSchedule:
    return taking_over(trigger_kwargs={"hours": 1, "start_date": start.isoformat()})


def taking_over(key: str = "a", **fields: object) -> DesiredSchedule:
    return desired(key, replaces_job_id=OLD_ID, replaces_decorator="app/schedules.py:5", **fields)


def with_decorator(live: LiveState = EMPTY, row: LiveJob | None = None) -> LiveState:
    return replace(live, jobs=(*live.jobs, row or decorator_row()))


def test_the_first_takeover_adopts_the_row_keeping_its_next_run() -> None:
    live = with_decorator()
    plan = compute_plan([taking_over()], live, SETTINGS, NOW)
    (change,) = plan.changes
    assert (change.action, change.replaces_job_id, change.inherit_next_run) == (Action.ADOPT, OLD_ID, OLD_NEXT)
    assert [(f.name, f.before, f.after) for f in change.fields] == [
        ("id", OLD_ID, A_ID),
        ("decorator job", OLD_ID, None),
    ]
    assert change.warnings == (
        f"takes over job {OLD_ID}, stored by the decorator at app/schedules.py:5: one job remains, next run kept",
    )
    assert change.before is not None and change.before["func"] == "app.schedules:run_resume_workflows"
    kept = tuple((OLD_NEXT + timedelta(hours=n)).isoformat() for n in range(3))
    assert change.next_runs_before == kept and change.next_runs_after == kept
    assert plan.unmanaged == ()  # the decorator's row is claimed, not listed as someone else's

    after = apply_plan(plan, live)
    (row,) = after.jobs  # one job remains
    assert (row.id, row.workflow_ids, row.next_run_time) == (A_ID, (TASK_A.workflow_id,), utc_timestamp(OLD_NEXT))
    assert not compute_plan([taking_over()], after, SETTINGS, NOW).has_changes


def test_a_takeover_with_another_trigger_recomputes_the_next_run() -> None:
    live = with_decorator(row=decorator_row(hours=2))
    (change,) = compute_plan([taking_over()], live, SETTINGS, NOW).changes
    assert (change.action, change.replaces_job_id, change.inherit_next_run) == (Action.ADOPT, OLD_ID, None)
    assert change.warnings[-1].endswith("one job remains, next run recomputed (the trigger differs)")
    assert change.next_runs_before[0] == OLD_NEXT.isoformat()
    assert change.next_runs_after[0] == (NOW + timedelta(hours=1)).isoformat()
    (row,) = apply_plan(compute_plan([taking_over()], live, SETTINGS, NOW), live).jobs
    assert row.next_run_time == utc_timestamp(NOW + timedelta(hours=1))


def test_a_decorator_row_that_comes_back_is_removed_again_and_named() -> None:
    live = with_decorator(reconcile([taking_over()]))  # taken over before; the decorator's scheduler wrote it again
    plan = compute_plan([taking_over()], live, SETTINGS, NOW)
    (change,) = plan.changes
    assert (change.action, change.replaces_job_id, change.inherit_next_run) == (Action.UPDATE, OLD_ID, None)
    assert [(f.name, f.before, f.after) for f in change.fields] == [("decorator job", OLD_ID, None)]
    assert change.warnings == (
        f"job {OLD_ID} is back: the decorator at app/schedules.py:5 is still in the orchestrator's code and its "
        "scheduler writes the row again on every start; delete the decorator (this apply removes the row again)",
    )
    assert plan.unmanaged == ()
    after = apply_plan(plan, live)
    assert [j.id for j in after.jobs] == [A_ID]
    assert after.jobs[0].next_run_time == live.jobs[0].next_run_time  # our row is not rewritten


def test_without_a_decorator_name_the_note_says_its_decorator() -> None:
    (change,) = compute_plan([desired("a", replaces_job_id=OLD_ID)], with_decorator(), SETTINGS, NOW).changes
    assert change.warnings[-1].startswith(f"takes over job {OLD_ID}, stored by the decorator at its decorator:")


def test_a_row_already_gone_is_a_plain_create() -> None:
    (change,) = compute_plan([taking_over()], EMPTY, SETTINGS, NOW).changes
    assert (change.action, change.replaces_job_id, change.fields, change.warnings) == (Action.CREATE, None, (), ())


def test_a_row_the_reconciler_owns_is_never_taken_over() -> None:
    # `replaces:` naming the row of another key of ours, or of another namespace: left to its owner.
    ours = reconcile([desired("b")])
    b_id = schedule_id_for("default", "b")
    mine = desired("a", replaces_job_id=b_id)
    plan = compute_plan([mine, desired("b")], ours, SETTINGS, NOW)
    change = next(c for c in plan.changes if c.key == "a")
    assert (change.action, change.replaces_job_id) == (Action.CREATE, None)
    assert change.warnings == (f"replaces: job {b_id} is a reconciler schedule, not a decorator's job; left alone",)
    assert [j.id for j in apply_plan(plan, ours).jobs] == sorted([A_ID, b_id])

    elsewhere = replace(ours, ledger=tuple(replace(e, namespace="team-b") for e in ours.ledger))
    plan = compute_plan([mine], elsewhere, SETTINGS, NOW)
    (change,) = plan.changes
    assert change.replaces_job_id is None and change.warnings[-1].endswith("not a decorator's job; left alone")
    assert [u.source for u in plan.unmanaged] == ["gitops:team-b"]


def test_an_unreadable_decorator_row_is_left_alone() -> None:
    unreadable = replace(decorator_row(), state=None, unreadable="cannot unpickle job_state: boom")
    plan = compute_plan([taking_over()], with_decorator(row=unreadable), SETTINGS, NOW)
    (change,) = plan.changes
    assert (change.action, change.replaces_job_id) == (Action.CREATE, None)
    assert change.warnings == (f"replaces: job {OLD_ID} is unreadable (cannot unpickle job_state: boom); left alone",)
    assert [(u.id, u.source) for u in plan.unmanaged] == [(OLD_ID, "unreadable")]


def test_a_takeover_is_recorded_in_the_ledger_like_a_create() -> None:
    live = with_decorator()
    after = apply_plan(compute_plan([taking_over()], live, SETTINGS, NOW), live, commit="c1")
    entry: LedgerEntry = ledger_of(after)["a"]
    assert (entry.schedule_id, entry.applied_commit, entry.row_hash) == (A_ID, "c1", after.jobs[0].row_hash)


def test_user_inputs_on_a_4x_database_are_an_error_naming_the_schedule() -> None:
    settings = PlanSettings(generation=4)
    with_inputs = desired("a", user_inputs=[{"x": 1}], source=SourceLocation("schedules.d/main.yaml", 3))
    plan = compute_plan([with_inputs], EMPTY, settings, NOW)
    assert plan.errors == (
        'schedules.d/main.yaml:3: a: user_inputs [{"x": 1}] cannot reach the workflow: '
        "orchestrator-core 4.x's scheduler task takes no "
        "user_inputs (every run would fail); remove them, or upgrade orchestrator-core to 5.x",
    )
    for no_input in ([{}], [], [{}, {}]):
        assert compute_plan([desired("a", user_inputs=no_input)], EMPTY, settings, NOW).errors == ()
    (unplaced,) = compute_plan([replace(with_inputs, source=None)], EMPTY, settings, NOW).errors
    assert unplaced.startswith('a: user_inputs [{"x": 1}] cannot reach the workflow: ')  # no file to name
    assert compute_plan([with_inputs], EMPTY, SETTINGS, NOW).errors == ()  # 5.x passes them on


def test_an_unread_decorator_row_says_so() -> None:
    # The edge hands over rows undecoded only when they match what our ledger expects: never a decorator's
    # row, but if it did, the plan must still not touch it.
    unread = replace(decorator_row(), state=None, unreadable=None)
    (change,) = compute_plan([taking_over()], with_decorator(row=unread), SETTINGS, NOW).changes
    assert change.warnings == (f"replaces: job {OLD_ID} is unreadable (job_state not read); left alone",)


def test_a_plan_that_takes_over_is_stale_once_the_decorator_row_changes_but_not_once_it_fired() -> None:
    live = with_decorator()
    planned = compute_plan([taking_over()], live, SETTINGS, NOW).fingerprint
    fired = replace(
        live, jobs=(rewrite_row(live.jobs[0], next_run_time=OLD_NEXT + timedelta(hours=1)),)
    )  # its scheduler ran it and moved it on
    assert compute_plan([taking_over()], fired, SETTINGS, NOW).fingerprint == planned
    renamed = replace(live, jobs=(rewrite_row(live.jobs[0], name="Resume them all"),))
    assert compute_plan([taking_over()], renamed, SETTINGS, NOW).fingerprint != planned


def test_an_explicit_start_date_decides_whether_the_next_run_is_kept() -> None:
    # With a start_date in the files the phase is declared: the decorator's next run is kept only when the
    # decorator's interval started at that same moment.
    start = NOW - timedelta(minutes=30)
    same = desired_start(start)
    (change,) = compute_plan([same], with_decorator(row=decorator_row(start=start)), SETTINGS, NOW).changes
    assert change.inherit_next_run == OLD_NEXT and change.warnings[-1].endswith("next run kept")
    other = desired_start(start + timedelta(minutes=10))
    (change,) = compute_plan([other], with_decorator(row=decorator_row(start=start)), SETTINGS, NOW).changes
    assert change.inherit_next_run is None and change.warnings[-1].endswith("(the trigger differs)")
    assert change.next_runs_after[0] == (NOW + timedelta(minutes=40)).isoformat()


def test_an_overdue_decorator_row_shows_and_keeps_its_stored_next_run() -> None:
    # No scheduler ran while the code was migrated: the row's next run is in the past, and stays so
    # (the scheduler runs it once when it starts, as it would have run the decorator's).
    overdue = NOW - timedelta(minutes=30)
    live = with_decorator(row=decorator_row(next_run=overdue))
    (change,) = compute_plan([taking_over()], live, SETTINGS, NOW).changes
    assert change.inherit_next_run == overdue
    assert change.next_runs_before[:2] == (overdue.isoformat(), (overdue + timedelta(hours=1)).isoformat())
    (row,) = apply_plan(compute_plan([taking_over()], live, SETTINGS, NOW), live).jobs
    assert row.next_run_time == utc_timestamp(overdue)


def test_a_renamed_key_that_takes_over_stays_a_rename_of_its_own_row() -> None:
    earlier = NOW - timedelta(minutes=10)
    live = with_decorator(reconcile([desired("old")], now=earlier))
    own = live.jobs[0]
    plan = compute_plan([taking_over("new", moved_from="old")], live, SETTINGS, NOW)
    (change,) = plan.changes
    assert (change.action, change.schedule_id, change.replaces_job_id) == (Action.RENAME, own.id, OLD_ID)
    assert change.inherit_next_run is None  # our own row is kept as it is: its phase, not the decorator's
    assert change.next_runs_after[0] == (earlier + timedelta(hours=1)).isoformat()
    after = apply_plan(plan, live)
    assert after.jobs == (own,)
