"""The pure planner and its ledger decisions, on in-memory states with a fixed clock (no database, no sleeps).

Each test pins one behaviour that a one-line bug in plan.py would break; apply's own `_collect` turns the
plan into writes, and tests/memory_db.py carries them out with the real schema's constraints.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler import triggers
from reconciler.apply import ApplySettings, Provenance, _collect
from reconciler.jobstate import ORCHESTRATOR_4_FUNC, ORCHESTRATOR_FUNC, build_job_row, utc_timestamp
from reconciler.plan import (
    FORMAT_UPGRADE,
    Action,
    LedgerRecord,
    PlanSettings,
    compute_plan,
    namespace_uuid,
    schedule_id_for,
)
from reconciler.spec import DesiredSchedule, SourceLocation
from reconciler.state import LiveJob, LiveState
from tests.memory_db import (
    EMPTY,
    NOW,
    SETTINGS,
    TASK_A,
    TASK_B,
    apply_plan,
    as_edge_reads,
    desired,
    execute,
    foreign_row,
    job,
    ledger_of,
    reconcile,
    rewrite,
    with_links,
    without_row,
    without_row_hashes,
)

A_ID = schedule_id_for("default", "a")


def plan_of(schedules, live, now=NOW, settings=SETTINGS):  # type: ignore[no-untyped-def]
    return compute_plan(schedules, as_edge_reads(live, schedules), settings, now)


def only(plan, key="a"):  # type: ignore[no-untyped-def]
    (change,) = [c for c in plan.changes if c.key == key]
    return change


# --- creating, and doing nothing ------------------------------------------------------------------------


def test_a_create_writes_row_link_and_an_entry_naming_this_apply() -> None:
    plan = compute_plan([desired("a", name="A")], EMPTY, SETTINGS, NOW)
    change = only(plan)
    assert (change.action, change.write_row, change.reschedule, change.drift) == (Action.CREATE, True, True, False)
    assert change.after is not None and (change.after["name"], change.after["trigger"]) == ("A", "every 1 hour")
    assert change.previous_key is None and change.source is None
    assert change.links_add == (TASK_A.workflow_id,) and change.links_drop == ()
    assert change.ledger is LedgerRecord.APPLIED and change.ledger_drop == ()  # a new key needs no DELETE
    live = apply_plan(plan, EMPTY, commit="abc")
    (row,) = live.jobs
    assert row.id == A_ID and row.workflow_ids == (TASK_A.workflow_id,)
    assert row.state is not None and row.state["name"] == "A"
    assert row.next_run_time == utc_timestamp(row.state["next_run_time"])
    entry = ledger_of(live)["a"]
    assert (entry.applied_commit, entry.row_hash, entry.schedule_id) == ("abc", row.row_hash, A_ID)


def test_an_unchanged_schedule_writes_nothing_and_keeps_its_entry() -> None:
    live = reconcile([desired("a")])
    plan = plan_of([desired("a")], live)
    change = only(plan)
    assert change.action is Action.NOOP and not plan.has_changes
    assert change.ledger is LedgerRecord.KEEP and change.ledger_entry is None and change.ledger_drop == ()
    assert (change.links_add, change.links_drop, change.write_row, change.remove_row) == ((), (), False, False)
    assert apply_plan(plan, live) == live


def test_the_name_defaults_to_the_workflow_description() -> None:
    live = reconcile([desired("a")])
    assert live.jobs[0].state is not None and live.jobs[0].state["name"] == TASK_A.description


# --- what a change rewrites -------------------------------------------------------------------------------


def test_a_name_change_keeps_the_fire_times_and_the_phase() -> None:
    live = reconcile([desired("a")])
    plan = plan_of([desired("a", name="Renamed")], live)
    change = only(plan)
    assert (change.action, change.write_row, change.reschedule, change.drift) == (Action.UPDATE, True, False, False)
    assert [f.name for f in change.fields] == ["name"]
    assert change.next_runs_after == change.next_runs_before and len(change.next_runs_before) == 3
    after = apply_plan(plan, live, now=NOW + timedelta(minutes=5))
    assert after.jobs[0].next_run_time == live.jobs[0].next_run_time  # the interval keeps its phase
    assert after.jobs[0].state is not None and after.jobs[0].state["name"] == "Renamed"


def test_a_trigger_change_shows_and_writes_the_new_fire_times() -> None:
    live = reconcile([desired("a", trigger="cron", trigger_kwargs={"hour": 1})])
    new = desired("a", trigger="cron", trigger_kwargs={"hour": 2})
    change = only(plan_of([new], live))
    assert (change.write_row, change.reschedule) == (True, True)
    assert [(f.name, f.before, f.after) for f in change.fields] == [
        ("trigger", "at 01:00 every day (UTC)", "at 02:00 every day (UTC)")
    ]
    assert change.next_runs_before[0].startswith("2026-06-02T01:00")
    assert change.next_runs_after == (
        "2026-06-02T02:00:00+00:00",
        "2026-06-03T02:00:00+00:00",
        "2026-06-04T02:00:00+00:00",
    )
    after = apply_plan(plan_of([new], live), live)
    assert after.jobs[0].state is not None
    assert after.jobs[0].state["next_run_time"].isoformat() == "2026-06-02T02:00:00+00:00"


def test_a_key_only_rename_moves_the_entry_and_leaves_the_row_alone() -> None:
    live = reconcile([desired("a")])
    plan = plan_of([desired("b", moved_from="a")], live)
    (change,) = plan.changes  # the old key is not planned as a delete
    assert (change.key, change.action, change.schedule_id, change.previous_key) == ("b", Action.RENAME, A_ID, "a")
    assert [(f.name, f.before, f.after) for f in change.fields] == [("key", "a", "b")]
    assert (change.write_row, change.remove_row, change.links_add, change.links_drop) == (False, False, (), ())
    assert change.ledger is LedgerRecord.APPLIED and change.ledger_drop == ("a",)
    after = apply_plan(plan, live)
    assert after.jobs == live.jobs  # same id, same bytes, same phase
    assert set(ledger_of(after)) == {"b"} and ledger_of(after)["b"].schedule_id == A_ID
    assert not plan_of([desired("b", moved_from="a")], after).has_changes


def test_a_rename_with_a_new_name_rewrites_the_row_in_place() -> None:
    live = reconcile([desired("a")])
    change = only(plan_of([desired("b", moved_from="a", name="B")], live), "b")
    assert change.action is Action.RENAME and change.write_row and not change.reschedule
    assert [f.name for f in change.fields] == ["key", "name"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("user_inputs", [{"x": 1}]), ("misfire_grace_time", 30), ("coalesce", False), ("max_instances", 2)],
)
def test_each_job_option_is_compared(field: str, value: object) -> None:
    live = reconcile([desired("a")])
    change = only(plan_of([desired("a", **{field: value})], live))
    assert [f.name for f in change.fields] == [field] and change.write_row and not change.reschedule
    after = apply_plan(plan_of([desired("a", **{field: value})], live), live)
    state = after.jobs[0].state
    assert state is not None
    assert (state["kwargs"]["user_inputs"] if field == "user_inputs" else state[field]) == value


def test_a_new_workflow_rewrites_the_row_and_moves_the_link() -> None:
    live = reconcile([desired("a")])
    change = only(plan_of([desired("a", workflow_name="task_b")], live))
    assert [f.name for f in change.fields] == ["name", "workflow_name", "linked workflow"]
    assert change.links_add == (TASK_B.workflow_id,) and change.links_drop == (TASK_A.workflow_id,)
    after = apply_plan(plan_of([desired("a", workflow_name="task_b")], live), live)
    assert after.jobs[0].workflow_ids == (TASK_B.workflow_id,)


def test_a_func_change_is_planned() -> None:
    live = reconcile([desired("a")])
    settings = replace(SETTINGS, func="other.module:run")
    change = only(compute_plan([desired("a")], live, settings, NOW))
    assert "func" in [f.name for f in change.fields] and change.write_row


def test_an_equivalent_respelling_is_a_noop_that_records_the_new_spec() -> None:
    live = reconcile([desired("a", trigger_kwargs={"hours": 24})])
    change = only(plan_of([desired("a", trigger_kwargs={"days": 1})], live))
    assert change.action is Action.NOOP and not change.write_row
    assert change.ledger is LedgerRecord.APPLIED and change.ledger_drop == ("a",)
    assert change.ledger_entry is not None and change.ledger_entry.row_hash == live.jobs[0].row_hash


# --- drift ---------------------------------------------------------------------------------------------


def test_a_column_that_disagrees_with_the_pickle_is_repaired_keeping_the_pickled_time() -> None:
    live = reconcile([desired("a")])
    moved = rewrite(live, A_ID, column=1.0)
    change = only(plan_of([desired("a")], moved))
    assert [(f.name, f.before, f.after) for f in change.fields] == [
        ("next_run_time column", 1.0, live.jobs[0].next_run_time)
    ]
    assert (change.action, change.drift, change.write_row, change.reschedule) == (Action.UPDATE, True, True, False)
    after = apply_plan(plan_of([desired("a")], moved), moved)
    assert after.jobs[0].next_run_time == live.jobs[0].next_run_time  # column = pickle again, same time


def test_a_row_changed_behind_our_back_is_drift_and_restored() -> None:
    live = reconcile([desired("a")])
    changed = rewrite(live, A_ID, name="by hand")
    change = only(plan_of([desired("a")], changed))
    assert (change.action, change.drift, change.write_row) == (Action.UPDATE, True, True)
    assert any("drift" in w for w in change.warnings)
    assert change.ledger is LedgerRecord.APPLIED  # the repair is this apply's doing
    after = apply_plan(plan_of([desired("a")], changed), changed, commit="repair")
    assert after.jobs[0].state is not None and after.jobs[0].state["name"] == TASK_A.description
    assert ledger_of(after)["a"].applied_commit == "repair"


def test_an_unchanged_schedule_keeps_its_warnings_and_its_place_in_the_files() -> None:
    # compared in full (no row hash in the ledger) and on the fast path alike
    at = SourceLocation("main.yaml", 4)
    on_c = desired("c", workflow_name="wf_c", source=at)
    live = reconcile([on_c])
    for seen in (live, without_row_hashes(live)):
        change = only(plan_of([on_c], seen), "c")
        assert change.action is Action.NOOP and change.source == "main.yaml:4"
        assert change.warnings == ("workflow 'wf_c' is not a task (is_task is false)",)
    assert only(plan_of([desired("a")], reconcile([desired("a")])), "a").source is None


def test_a_deleted_row_is_drift_and_recreated_with_its_link() -> None:
    live = without_row(reconcile([desired("a")]), A_ID)
    change = only(plan_of([desired("a")], live))
    assert (change.action, change.drift, change.write_row, change.reschedule) == (Action.UPDATE, True, True, True)
    assert change.links_add == (TASK_A.workflow_id,)
    assert change.next_runs_after and not change.next_runs_before
    after = apply_plan(plan_of([desired("a")], live), live)
    assert [j.workflow_ids for j in after.jobs] == [(TASK_A.workflow_id,)]


@pytest.mark.parametrize("links", [[TASK_A.workflow_id, TASK_B.workflow_id], [], [TASK_B.workflow_id]])
def test_wrong_linker_rows_are_drift_on_the_fast_path_too(links: list[str]) -> None:
    live = with_links(reconcile([desired("a")]), A_ID, links)
    fast = only(plan_of([desired("a")], live))
    full = only(plan_of([desired("a")], without_row_hashes(live)))
    for change in (fast, full):
        assert (change.action, change.drift, change.write_row) == (Action.UPDATE, True, False)
        assert [(f.name, f.before, f.after) for f in change.fields] == [
            ("linked workflow", sorted(links), [TASK_A.workflow_id])
        ]
        assert change.links_add == (() if TASK_A.workflow_id in links else (TASK_A.workflow_id,))
        assert change.links_drop == tuple(w for w in sorted(links) if w != TASK_A.workflow_id)
    after = apply_plan(plan_of([desired("a")], live), live)
    assert after.jobs[0].workflow_ids == (TASK_A.workflow_id,)
    assert not plan_of([desired("a")], after).has_changes


def test_a_row_the_scheduler_moved_is_unchanged_and_its_entry_keeps_its_commit() -> None:
    live = reconcile([desired("a")])
    state = live.jobs[0].state
    assert state is not None
    fired = rewrite(live, A_ID, next_run_time=state["next_run_time"] + timedelta(hours=1))
    plan = plan_of([desired("a")], fired)
    change = only(plan)
    assert change.action is Action.NOOP and not plan.has_changes
    assert change.ledger is LedgerRecord.KEPT_COMMIT and change.ledger_drop == ("a",)
    assert change.ledger_entry is not None and change.ledger_entry.row_hash == fired.jobs[0].row_hash
    after = apply_plan(plan, fired, commit="later")
    assert after.jobs == fired.jobs
    entry, before = ledger_of(after)["a"], ledger_of(live)["a"]
    assert (entry.applied_commit, entry.applied_at, entry.row_hash) == (
        before.applied_commit,
        before.applied_at,
        fired.jobs[0].row_hash,
    )
    assert plan.fingerprint == plan_of([desired("a")], live).fingerprint  # firing does not make a plan stale


def test_a_moved_source_line_is_learnt_keeping_the_commit() -> None:
    at = SourceLocation("main.yaml", 3, 5)
    first = reconcile([desired("a", source=at)])
    applied = NOW - timedelta(days=3)
    live = replace(first, ledger=tuple(replace(e, applied_author="ann", applied_at=applied) for e in first.ledger))
    plan = plan_of([desired("a", source=replace(at, line=9))], live)
    change = only(plan)
    assert change.action is Action.NOOP and change.ledger is LedgerRecord.KEPT_COMMIT
    assert change.source == "main.yaml:9"
    assert change.ledger_entry is not None
    kept = change.ledger_entry
    assert (kept.applied_commit, kept.applied_author, kept.applied_at) == ("c0mm17", "ann", applied)
    after = apply_plan(plan, live, commit="later")
    assert ledger_of(after)["a"].source_line == 9 and ledger_of(after)["a"].applied_commit == "c0mm17"


def test_a_changed_schedule_records_this_applys_commit() -> None:
    live = reconcile([desired("a")])
    plan = plan_of([desired("a", name="New")], live)
    assert only(plan).ledger is LedgerRecord.APPLIED and only(plan).ledger_drop == ("a",)
    after = apply_plan(plan, live, commit="later")
    entry = ledger_of(after)["a"]
    assert entry.applied_commit == "later" and entry.row_hash == after.jobs[0].row_hash


# --- fired dates, disabled and protected schedules -------------------------------------------------------


def test_a_fired_date_is_completed_writes_no_row_no_link_and_keeps_its_entry() -> None:
    once = desired("once", trigger="date", trigger_kwargs={"run_date": (NOW + timedelta(minutes=1)).isoformat()})
    live = reconcile([once, desired("a")])
    fired = without_row(live, schedule_id_for("default", "once"))
    later = NOW + timedelta(minutes=10)
    plan = plan_of([once, desired("a", name="other change")], fired, now=later)
    change = only(plan, "once")
    assert change.completed and change.action is Action.NOOP and not change.drift
    assert (change.links_add, change.links_drop, change.write_row, change.ledger) == ((), (), False, LedgerRecord.KEEP)
    after = apply_plan(plan, fired, now=later)  # raises ConstraintViolation if a link for the gone row were written
    assert ledger_of(after)["once"] == ledger_of(live)["once"]
    assert [j.id for j in after.jobs] == [A_ID]


def test_a_new_date_schedule_in_the_past_is_refused_naming_it() -> None:
    past = desired("late", trigger="date", trigger_kwargs={"run_date": (NOW - timedelta(days=1)).isoformat()})
    plan = compute_plan([past], EMPTY, SETTINGS, NOW)
    assert plan.errors == ("late: the trigger has no future fire time; nothing would run",)


def test_a_date_due_this_instant_whose_row_is_gone_has_fired() -> None:
    # The scheduler deletes a date job's row when it runs it, at its run date: from that instant on.
    run_date = NOW + timedelta(minutes=1)
    once = desired("once", trigger="date", trigger_kwargs={"run_date": run_date.isoformat()}, workflow_name="wf_c")
    fired = without_row(reconcile([once]), schedule_id_for("default", "once"))
    change = only(plan_of([once], fired, now=run_date), "once")
    assert (change.completed, change.action, change.write_row) == (True, Action.NOOP, False)
    assert change.warnings == ("workflow 'wf_c' is not a task (is_task is false)",)  # its warnings kept


def test_a_fired_date_schedule_renamed_is_unchanged() -> None:
    once = desired("once", trigger="date", trigger_kwargs={"run_date": (NOW + timedelta(minutes=1)).isoformat()})
    fired = without_row(reconcile([once]), schedule_id_for("default", "once"))
    renamed = replace(once, key="one-off", moved_from="once")
    plan = plan_of([renamed], fired, now=NOW + timedelta(minutes=10))
    change = only(plan, "one-off")
    assert (change.completed, change.action) == (True, Action.NOOP) and not plan.has_changes
    assert plan.errors == ()  # it was refused: "the trigger has no future fire time"
    assert apply_plan(plan, fired) == fired


def test_a_renamed_key_whose_row_vanished_is_recreated_as_drift() -> None:
    gone = without_row(reconcile([desired("a")]), A_ID)
    change = only(plan_of([desired("b", moved_from="a")], gone), "b")
    assert (change.action, change.schedule_id, change.write_row, change.drift) == (Action.RENAME, A_ID, True, True)
    assert change.warnings == ("job row was deleted outside reconciler (drift); apply recreates it",)
    after = apply_plan(plan_of([desired("b", moved_from="a")], gone), gone)
    assert [j.id for j in after.jobs] == [A_ID] and set(ledger_of(after)) == {"b"}


def test_each_new_schedule_shows_its_own_fire_times() -> None:
    hourly, daily = desired("a"), desired("b", trigger="cron", trigger_kwargs={"hour": 3})
    plan = compute_plan([hourly, daily], EMPTY, SETTINGS, NOW)
    assert only(plan, "a").next_runs_after[0] == (NOW + timedelta(hours=1)).isoformat()
    assert only(plan, "b").next_runs_after[0] == "2026-06-02T03:00:00+00:00"


def test_a_date_not_yet_due_whose_row_vanished_is_drift() -> None:
    once = desired("once", trigger="date", trigger_kwargs={"run_date": (NOW + timedelta(hours=1)).isoformat()})
    live = without_row(reconcile([once]), schedule_id_for("default", "once"))
    change = only(plan_of([once], live), "once")
    assert not change.completed and change.drift and change.write_row


def test_disabling_removes_the_row_and_records_enabled_false() -> None:
    live = reconcile([desired("a")])
    plan = plan_of([desired("a", enabled=False)], live)
    change = only(plan)
    assert (change.action, change.remove_row, change.write_row, change.links_add) == (Action.UPDATE, True, False, ())
    assert [(f.name, f.before, f.after) for f in change.fields] == [("enabled", True, False)]
    after = apply_plan(plan, live)
    assert after.jobs == () and ledger_of(after)["a"].enabled is False and ledger_of(after)["a"].row_hash is None
    assert not plan_of([desired("a", enabled=False)], after).has_changes
    again = only(plan_of([desired("a")], after))
    assert [(f.name, f.before, f.after) for f in again.fields] == [("enabled", False, True)]
    assert again.write_row and again.links_add == (TASK_A.workflow_id,) and not again.drift
    assert [j.id for j in apply_plan(plan_of([desired("a")], after), after).jobs] == [A_ID]


def test_disabling_shows_the_row_it_removes_and_when_it_would_have_run() -> None:
    live = reconcile([desired("a", workflow_name="wf_c")])
    state = live.jobs[0].state
    assert state is not None
    later = NOW + timedelta(minutes=150)  # overdue: its stored next run still comes first
    change = only(plan_of([desired("a", workflow_name="wf_c", enabled=False)], live, now=later))
    assert change.before is not None and change.before["name"] == "Workflow C"
    assert change.after is not None and change.after["enabled"] is False
    assert change.next_runs_before[0] == state["next_run_time"].isoformat() and len(change.next_runs_before) == 3
    assert change.warnings == ("workflow 'wf_c' is not a task (is_task is false)",)


def test_a_renamed_key_disabled_at_once_stays_a_rename() -> None:
    change = only(plan_of([desired("b", moved_from="a", enabled=False)], reconcile([desired("a")])), "b")
    assert (change.action, change.remove_row) == (Action.RENAME, True)
    assert [f.name for f in change.fields] == ["key", "enabled"]


def test_an_explicit_start_date_is_compared_as_the_phase_it_sets() -> None:
    start = {"hours": 1, "start_date": "2026-06-01T11:30:00+00:00"}
    live = without_row_hashes(reconcile([desired("a", trigger_kwargs=start)]))  # compared in full
    assert not plan_of([desired("a", trigger_kwargs=start)], live).has_changes
    moved = {"hours": 1, "start_date": "2026-06-01T11:45:00+00:00"}
    change = only(plan_of([desired("a", trigger_kwargs=moved)], live))
    assert (change.reschedule, [f.name for f in change.fields]) == (True, ["trigger"])


def test_a_new_disabled_schedule_is_recorded_without_a_row() -> None:
    plan = compute_plan([desired("a", enabled=False)], EMPTY, SETTINGS, NOW)
    change = only(plan)
    assert change.action is Action.CREATE and not change.write_row and change.links_add == ()
    after = apply_plan(plan, EMPTY)
    assert after.jobs == () and ledger_of(after)["a"].enabled is False


def test_a_removed_key_is_deleted_and_forgotten() -> None:
    live = reconcile([desired("a"), desired("b")])
    plan = plan_of([desired("b")], live)
    change = only(plan)
    assert (change.action, change.remove_row, change.ledger, change.ledger_drop) == (
        Action.DELETE,
        True,
        LedgerRecord.FORGET,
        ("a",),
    )
    assert change.before is not None and change.next_runs_before
    after = apply_plan(plan, live)
    assert set(ledger_of(after)) == {"b"} and [j.id for j in after.jobs] == [schedule_id_for("default", "b")]


def test_a_removed_key_whose_row_is_gone_only_leaves_the_ledger() -> None:
    live = without_row(reconcile([desired("a"), desired("b")]), A_ID)
    change = only(plan_of([desired("b")], live))
    assert change.action is Action.DELETE and not change.remove_row and change.ledger_drop == ("a",)


def test_a_protected_removed_key_is_kept() -> None:
    live = reconcile([desired("a", protect=True), desired("b")])
    plan = plan_of([desired("b")], live)
    change = only(plan)
    assert (change.action, change.remove_row, change.ledger) == (Action.NOOP, False, LedgerRecord.KEEP)
    assert any("protect" in w for w in change.warnings)
    assert apply_plan(plan, live) == live


# --- safety limits -------------------------------------------------------------------------------------


def test_max_deletes_allows_exactly_the_limit() -> None:
    live = reconcile([desired(k) for k in "abcd"])
    settings = replace(SETTINGS, max_deletes=2)
    assert not compute_plan([desired("a"), desired("b")], live, settings, NOW).errors
    refused = compute_plan([desired("a")], live, settings, NOW)
    assert refused.errors == (
        "the plan deletes 3 schedules, more than --max-deletes 2 (pass --max-deletes 3 if that is intended)",
    )


def test_an_empty_desired_set_is_refused_unless_allowed() -> None:
    live = reconcile([desired("a")])
    assert compute_plan([], live, SETTINGS, NOW).errors == (
        "the schedules directory declares nothing but the ledger owns 1 schedule(s): "
        "refusing to delete them all (pass --allow-empty if that is intended)",
    )
    assert not compute_plan([], live, replace(SETTINGS, allow_empty=True), NOW).errors
    assert not compute_plan([], EMPTY, SETTINGS, NOW).errors  # nothing owned, nothing refused


def test_a_plan_names_its_namespace_time_and_orchestrator_core_generation() -> None:
    settings = replace(SETTINGS, namespace="team-x", orchestrator="orchestrator-core 4.x (alembic_version)")
    plan = compute_plan([desired("a")], EMPTY, settings, NOW)
    assert (plan.namespace, plan.computed_at, plan.orchestrator) == (
        "team-x",
        "2026-06-01T12:00:00+00:00",
        "orchestrator-core 4.x (alembic_version)",
    )


def test_a_moved_from_naming_a_key_that_is_still_its_own_is_no_rename() -> None:
    # b exists already: its moved_from a is stale, and a (gone from the files) is deleted as any other key
    live = reconcile([desired("a"), desired("b")])
    plan = plan_of([desired("b", moved_from="a")], live)
    assert [(c.key, c.action) for c in plan.changes] == [("a", Action.DELETE), ("b", Action.NOOP)]


def test_a_missing_or_soft_deleted_workflow_is_an_error() -> None:
    plan = compute_plan([desired("a", workflow_name="task_c")], EMPTY, SETTINGS, NOW)
    assert plan.errors == ("a: workflow 'task_c' does not exist (did you mean 'task_b', 'task_a'?)",)
    gone = replace(EMPTY, workflows=(replace(TASK_A, deleted=True),))
    assert compute_plan([desired("a")], gone, SETTINGS, NOW).errors == ("a: workflow 'task_a' is soft-deleted",)
    # and with its row still there: refused the same way, the row's link left as it is
    live = reconcile([desired("a", name="A")])
    with_gone = replace(live, workflows=(replace(TASK_A, deleted=True), TASK_B))
    plan = compute_plan([desired("a", name="A")], without_row_hashes(with_gone), SETTINGS, NOW)
    assert plan.errors == ("a: workflow 'task_a' is soft-deleted",)
    assert "linked workflow" not in [f.name for f in only(plan).fields]


def test_a_workflow_that_is_not_a_task_is_a_warning() -> None:
    change = only(compute_plan([desired("a", workflow_name="wf_c")], EMPTY, SETTINGS, NOW))
    assert change.warnings == ("workflow 'wf_c' is not a task (is_task is false)",)


# --- ownership and adoption ------------------------------------------------------------------------------


def test_adopting_a_row_links_it_to_its_workflow_only() -> None:
    live = replace(EMPTY, jobs=(foreign_row(A_ID, workflow=TASK_B),))
    plan = compute_plan([desired("a")], live, SETTINGS, NOW)
    change = only(plan)
    assert change.action is Action.ADOPT and change.ledger is LedgerRecord.APPLIED
    assert change.links_add == (TASK_A.workflow_id,) and change.links_drop == (TASK_B.workflow_id,)
    after = apply_plan(plan, live)
    assert after.jobs[0].workflow_ids == (TASK_A.workflow_id,) and ledger_of(after)["a"].schedule_id == A_ID
    assert not plan_of([desired("a")], after).has_changes


def test_rows_we_do_not_own_are_listed_and_left_alone() -> None:
    api = foreign_row("api-job")
    decorator = foreign_row("deco-job", workflow=None, func="my.module:job")
    garbage = LiveJob("garbage", None, (), "0" * 64, unreadable="cannot unpickle job_state: boom")
    live = replace(reconcile([desired("a")]), jobs=(*reconcile([desired("a")]).jobs, api, decorator, garbage))
    plan = plan_of([desired("a")], live)
    assert not plan.has_changes
    assert [(u.id, u.source) for u in plan.unmanaged] == [
        ("api-job", "api"),
        ("deco-job", "decorator"),
        ("garbage", "unreadable"),
    ]
    assert plan.unmanaged[1].detail == "func my.module:job"
    assert plan.unmanaged[2].detail == "cannot unpickle job_state: boom"


def test_two_keys_cannot_adopt_one_row() -> None:
    api = replace(EMPTY, jobs=(foreign_row("api-job"),))
    plan = compute_plan([desired("a", schedule_id="api-job"), desired("b", schedule_id="api-job")], api, SETTINGS, NOW)
    assert plan.errors == ("b: schedule_id api-job is claimed by another schedule too",)
    assert only(plan, "a").action is Action.ADOPT


def test_a_schedule_id_for_a_key_that_owns_a_row_already_is_ignored_with_a_warning() -> None:
    live = reconcile([desired("a")])
    change = only(plan_of([desired("a", schedule_id="api-job")], live))
    assert (change.action, change.schedule_id) == (Action.NOOP, A_ID)
    assert change.warnings == (f"schedule_id api-job ignored: the key already owns {A_ID}",)
    assert only(plan_of([desired("a", schedule_id=A_ID)], live)).warnings == ()  # its own id: nothing to say


@pytest.mark.parametrize(
    ("changed", "field"),
    [({"executor": "threads"}, ("executor", "threads", "default")), ({"args": (1,)}, ("args", (1,), ()))],
)
def test_the_executor_and_args_apscheduler_keeps_are_compared_too(
    changed: dict[str, object], field: tuple[object, ...]
) -> None:
    change = only(plan_of([desired("a")], rewrite(reconcile([desired("a")]), A_ID, **changed)))
    assert [(f.name, f.before, f.after) for f in change.fields] == [field]
    assert (change.drift, change.write_row) == (True, True)


def test_an_update_planned_late_shows_the_rows_own_next_runs_first() -> None:
    live = reconcile([desired("a")])
    state = live.jobs[0].state
    assert state is not None
    change = only(plan_of([desired("a", name="New")], live, now=NOW + timedelta(minutes=150)))  # overdue
    assert change.next_runs_before[0] == state["next_run_time"].isoformat()
    assert change.next_runs_after == change.next_runs_before


def test_foreign_rows_are_listed_with_their_workflow_and_next_run() -> None:
    api = foreign_row("api-job")
    plan = compute_plan([], replace(EMPTY, jobs=(api,)), SETTINGS, NOW)
    (listed,) = plan.unmanaged
    assert (listed.source, listed.workflow_name, listed.name) == ("api", "task_b", "Made elsewhere")
    assert listed.trigger == "every 2 hours"
    assert listed.next_run_time == "2026-06-01T12:00:00+00:00"


def test_a_linked_row_is_an_api_schedule_only_with_orchestrator_cores_own_func() -> None:
    rows = (
        foreign_row("api-4x", func=ORCHESTRATOR_4_FUNC),  # orchestrator-core 4.x's task
        foreign_row("linked-code", func="my.module:job"),  # linked, but code of its own: a decorator's
        foreign_row("unlinked", workflow=None),  # orchestrator-core's func without a link
    )
    plan = compute_plan([], replace(EMPTY, jobs=rows), SETTINGS, NOW)
    assert [(u.id, u.source) for u in plan.unmanaged] == [
        ("api-4x", "api"),
        ("linked-code", "decorator"),
        ("unlinked", "decorator"),
    ]


def test_unreadable_foreign_rows_are_listed_in_order_and_count_in_the_fingerprint() -> None:
    first = LiveJob("0-broken", 1780315200.0, (), "a" * 64, unreadable=None)  # read as a digest only
    rows = (first, foreign_row("api-job"))
    plan = compute_plan([], replace(EMPTY, jobs=rows), SETTINGS, NOW)
    assert [(u.id, u.source, u.detail, u.next_run_time) for u in plan.unmanaged] == [
        ("0-broken", "unreadable", "job_state not read", "2026-06-01T12:00:00+00:00"),
        ("api-job", "api", None, "2026-06-01T12:00:00+00:00"),
    ]
    changed = (replace(first, state_digest="b" * 64), rows[1])
    assert compute_plan([], replace(EMPTY, jobs=changed), SETTINGS, NOW).fingerprint != plan.fingerprint


def test_a_key_cannot_claim_a_row_another_key_owns() -> None:
    live = reconcile([desired("a")])
    plan = plan_of([desired("a"), desired("b", schedule_id=A_ID)], live)
    assert plan.errors == (
        f"b: job {A_ID} already belongs to 'a'; to rename 'a', write moved_from: a instead of schedule_id",
    )


def test_a_row_owned_by_another_namespace_is_refused() -> None:
    other = reconcile([desired("a")])
    moved = replace(other, ledger=tuple(replace(e, namespace="team-x") for e in other.ledger))
    plan = compute_plan([desired("b", schedule_id=A_ID)], moved, SETTINGS, NOW)
    assert plan.errors == (f"b: job {A_ID} is owned by namespace 'team-x'",)
    assert [u.source for u in compute_plan([], moved, SETTINGS, NOW).unmanaged] == ["gitops:team-x"]


def test_an_unreadable_declared_row_is_left_alone() -> None:
    live = reconcile([desired("a")])
    broken = replace(live, jobs=(LiveJob(A_ID, 5.0, (), "f" * 64, unreadable="bad pickle"),))
    change = only(plan_of([desired("a", name="New")], broken))
    assert change.action is Action.NOOP and change.ledger is LedgerRecord.KEEP
    assert (change.links_add, change.links_drop, change.write_row) == ((), (), False)
    assert change.warnings == (f"job row {A_ID} is unreadable (bad pickle); left alone",)
    assert change.after is not None and change.after["name"] == "New"  # what was asked for, shown
    renamed = only(plan_of([desired("b", moved_from="a")], broken), "b")  # not even renamed
    assert (renamed.action, [(f.name, f.before, f.after) for f in renamed.fields]) == (Action.NOOP, [("key", "a", "b")])


def test_a_saved_update_is_stale_once_its_row_changes_again_but_not_once_it_fired() -> None:
    live = reconcile([desired("a")])
    state = live.jobs[0].state
    assert state is not None
    planned = plan_of([desired("a", name="New")], live).fingerprint
    fired = rewrite(live, A_ID, next_run_time=state["next_run_time"] + timedelta(hours=1))
    assert plan_of([desired("a", name="New")], fired).fingerprint == planned
    by_hand = rewrite(live, A_ID, max_instances=3)
    assert plan_of([desired("a", name="New")], by_hand).fingerprint != planned


def test_a_digest_only_row_that_does_not_match_is_reported_not_raised() -> None:
    live = reconcile([desired("a")])
    unread = replace(live, jobs=(replace(live.jobs[0], state=None),))
    change = only(compute_plan([desired("a", name="New")], unread, SETTINGS, NOW))
    assert change.action is Action.NOOP
    assert change.warnings == (f"job row {A_ID} is unreadable (job_state not read); left alone",)


def test_a_saved_plan_is_stale_once_an_unreadable_declared_row_changes() -> None:
    live = reconcile([desired("a")])
    broken = replace(live, jobs=(LiveJob(A_ID, 5.0, (), "f" * 64, unreadable="bad pickle"),))
    other = replace(live, jobs=(LiveJob(A_ID, 5.0, (), "e" * 64, unreadable="bad pickle"),))
    assert plan_of([desired("a")], broken).fingerprint != plan_of([desired("a")], other).fingerprint


# --- the fingerprint -------------------------------------------------------------------------------------


def test_the_fingerprint_covers_links_protect_and_workflows_but_not_firing() -> None:
    live = replace(reconcile([desired("a")]), jobs=(*reconcile([desired("a")]).jobs, foreign_row("api-job")))
    base = plan_of([desired("a")], live).fingerprint
    relinked = with_links(live, "api-job", [TASK_A.workflow_id])
    assert plan_of([desired("a")], relinked).fingerprint != base
    protected = replace(live, ledger=tuple(replace(e, protect=True) for e in live.ledger))
    assert compute_plan([desired("a")], protected, SETTINGS, NOW).fingerprint != base
    described = replace(live, workflows=(replace(TASK_A, description="new"), *live.workflows[1:]))
    assert (
        compute_plan([desired("a", name="x")], described, SETTINGS, NOW).fingerprint
        != compute_plan([desired("a", name="x")], live, SETTINGS, NOW).fingerprint
    )
    renamed_api = rewrite(live, "api-job", name="renamed in the UI")
    assert plan_of([desired("a")], renamed_api).fingerprint != base
    state = live.jobs[0].state
    assert state is not None
    fired = rewrite(live, A_ID, next_run_time=state["next_run_time"] + timedelta(hours=1))
    assert plan_of([desired("a")], fired).fingerprint == base


def test_next_runs_follow_the_trigger() -> None:
    trigger = triggers.build_trigger("interval", {"hours": 1}, "UTC", now=NOW)
    change = only(compute_plan([desired("a")], EMPTY, SETTINGS, NOW))
    assert change.next_runs_after == tuple(t.isoformat() for t in triggers.next_fire_times(trigger, 3, NOW))
    assert change.next_runs_after[0] == (NOW + timedelta(hours=1)).isoformat()


def test_plan_settings_namespace_changes_the_ids() -> None:
    plan = compute_plan([desired("a")], EMPTY, PlanSettings(namespace="team-x"), NOW)
    assert only(plan).schedule_id == schedule_id_for("team-x", "a") != A_ID


# --- removed keys, shown in full ---------------------------------------------------------------------------


def test_a_removed_key_shows_the_row_it_deletes_and_where_it_was_declared() -> None:
    live = reconcile([desired("a", name="A", source=SourceLocation("team/main.yaml", 7, 5)), desired("b")])
    change = only(plan_of([desired("b")], live))
    state = live.jobs[0].state
    assert state is not None
    assert change.source == "team/main.yaml:7" and change.warnings == ()
    assert change.before is not None
    assert (change.before["name"], change.before["workflow_name"], change.before["trigger"]) == (
        "A",
        "task_a",
        triggers.describe(state["trigger"]),
    )
    assert change.before["next_run_time"] == state["next_run_time"].isoformat()
    assert change.next_runs_before[0] == state["next_run_time"].isoformat() and len(change.next_runs_before) == 3
    assert change.next_runs_after == () and change.after is None and not change.write_row


def test_a_removed_key_with_an_unreadable_row_is_deleted_and_fingerprinted_by_its_bytes() -> None:
    live = reconcile([desired("a"), desired("b")])
    broken = replace(live, jobs=(LiveJob(A_ID, 5.0, (), "e" * 64, unreadable="bad"), *live.jobs[1:]))
    change = only(plan_of([desired("b")], broken))
    assert (change.action, change.before, change.next_runs_before, change.remove_row) == (Action.DELETE, None, (), True)
    other = replace(broken, jobs=(LiveJob(A_ID, 5.0, (), "d" * 64, unreadable="bad"), *live.jobs[1:]))
    assert plan_of([desired("b")], broken).fingerprint != plan_of([desired("b")], other).fingerprint


def test_a_protected_removed_key_says_how_to_delete_it() -> None:
    live = reconcile([desired("a", protect=True), desired("b")])
    change = only(plan_of([desired("b")], live))
    assert change.warnings == ("protect: true — removed from the files but kept; set protect: false to delete it",)
    assert change.before is not None and change.next_runs_before


def test_a_removed_key_without_source_has_none() -> None:
    live = reconcile([desired("a"), desired("b")])
    assert only(plan_of([desired("b")], live)).source is None


# --- the phase of interval triggers ------------------------------------------------------------------------


def _start(minutes: int) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat()


def test_without_start_date_an_interval_keeps_its_phase_across_respellings() -> None:
    live = reconcile([desired("a", trigger_kwargs={"hours": 1})])
    later = NOW + timedelta(minutes=20)  # the rebuilt trigger would start 20 min later: not a change
    change = only(plan_of([desired("a", trigger_kwargs={"minutes": 60})], live, now=later))
    assert change.action is Action.NOOP and not change.reschedule


def test_an_explicit_start_date_is_part_of_the_trigger() -> None:
    live = reconcile([desired("a", trigger_kwargs={"hours": 1, "start_date": _start(5)})])
    same = only(plan_of([desired("a", trigger_kwargs={"hours": 1, "start_date": _start(5)})], live))
    assert same.action is Action.NOOP
    moved = only(plan_of([desired("a", trigger_kwargs={"hours": 1, "start_date": _start(10)})], live))
    assert (moved.action, moved.reschedule, [f.name for f in moved.fields]) == (Action.UPDATE, True, ["trigger"])


def test_a_start_date_inside_a_combination_is_part_of_it() -> None:
    kind = "or"

    def combined(start: str) -> dict[str, object]:
        interval = {"trigger": "interval", "trigger_kwargs": {"hours": 1, "start_date": start}}
        return {"triggers": [{"trigger": "cron", "trigger_kwargs": {"minute": 0}}, interval]}

    live = reconcile([desired("a", trigger=kind, trigger_kwargs=combined(_start(5)))])
    assert only(plan_of([desired("a", trigger=kind, trigger_kwargs=combined(_start(5)))], live)).action is Action.NOOP
    moved = only(plan_of([desired("a", trigger=kind, trigger_kwargs=combined(_start(10)))], live))
    assert moved.reschedule and [f.name for f in moved.fields] == ["trigger"]


def test_has_explicit_start_reads_only_real_sub_triggers() -> None:
    from reconciler.plan import _has_explicit_start

    assert _has_explicit_start({"start_date": "x"})
    assert not _has_explicit_start({"hours": 1})
    assert _has_explicit_start({"triggers": [{"trigger_kwargs": {}}, {"trigger_kwargs": {"start_date": "x"}}]})
    assert _has_explicit_start(
        {"triggers": [{"trigger_kwargs": {"triggers": [{"trigger_kwargs": {"start_date": 1}}]}}]}
    )
    assert not _has_explicit_start({"triggers": [{"trigger_kwargs": None}, "start_date", {"x": 1}]})
    assert not _has_explicit_start({"triggers": {"trigger_kwargs": {"start_date": "x"}}})
    assert not _has_explicit_start({"triggers": [{"trigger_kwargs": {"hours": 1}}]})


# --- where a missing workflow is reported --------------------------------------------------------------------


def test_a_missing_workflow_names_the_file_and_close_names() -> None:
    at = SourceLocation("team/jobs.yaml", 4, 7)
    plan = compute_plan([desired("a", workflow_name="task_a_", source=at)], EMPTY, SETTINGS, NOW)
    assert plan.errors == (f"{at}: a: workflow 'task_a_' does not exist (did you mean 'task_a', 'task_b'?)",)
    far = compute_plan([desired("a", workflow_name="zzz")], EMPTY, SETTINGS, NOW)
    assert far.errors == ("a: workflow 'zzz' does not exist",)
    gone = replace(EMPTY, workflows=(replace(TASK_A, deleted=True), TASK_B))
    deleted = compute_plan([desired("a", source=at)], gone, SETTINGS, NOW)
    assert deleted.errors == (f"{at}: a: workflow 'task_a' is soft-deleted",)


# --- what the plan shows: before and after, as plain values ---------------------------------------------------


def test_before_and_after_are_the_plain_views_of_row_and_spec() -> None:
    live = reconcile([desired("a", name="Old", user_inputs=[{"x": 1}], misfire_grace_time=5, max_instances=2)])
    state = live.jobs[0].state
    assert state is not None
    new = desired("a", name="New", user_inputs=[{"x": 1}], misfire_grace_time=5, max_instances=2, coalesce=False)
    change = only(plan_of([new], live))
    assert change.before == {
        "name": "Old",
        "workflow_name": "task_a",
        "user_inputs": [{"x": 1}],
        "trigger": triggers.describe(state["trigger"]),
        "trigger_canonical": triggers.canonical_form(state["trigger"]),
        "misfire_grace_time": 5,
        "coalesce": True,
        "max_instances": 2,
        "func": SETTINGS.func,
        "next_run_time": state["next_run_time"].isoformat(),
    }
    assert change.after == {
        "name": "New",
        "workflow_name": "task_a",
        "user_inputs": [{"x": 1}],
        "trigger": triggers.describe(state["trigger"]),
        "trigger_spec": {"trigger": "interval", "hours": 1, "timezone": "UTC"},
        "misfire_grace_time": 5,
        "coalesce": False,
        "max_instances": 2,
        "enabled": True,
        "protect": False,
    }


def test_a_paused_row_shows_no_next_run_time() -> None:
    live = reconcile([desired("a")])
    paused = rewrite(live, A_ID, next_run_time=None)
    assert paused.jobs[0].next_run_time is None
    change = only(plan_of([desired("a", name="New")], paused))
    assert change.before is not None and change.before["next_run_time"] is None
    assert change.action is Action.UPDATE and change.next_runs_before == change.next_runs_after


# --- from the mutation run's survivors ------------------------------------------------------------------------


def test_disabling_a_schedule_whose_row_vanished_is_an_update() -> None:
    live = without_row(reconcile([desired("a")]), A_ID)
    change = only(plan_of([desired("a", enabled=False)], live))
    assert (change.action, [(f.name, f.before, f.after) for f in change.fields]) == (
        Action.UPDATE,
        [("enabled", True, False)],
    )
    assert change.after is not None and change.after["enabled"] is False and change.warnings == ()
    assert ledger_of(apply_plan(plan_of([desired("a", enabled=False)], live), live))["a"].enabled is False


def test_a_new_disabled_schedule_says_so_once() -> None:
    change = only(compute_plan([desired("a", enabled=False)], EMPTY, SETTINGS, NOW))
    assert change.warnings == ("enabled: false — recorded in the ledger, no job is created",)
    live = reconcile([desired("a", enabled=False)])
    again = only(plan_of([desired("a", enabled=False)], live))
    assert (again.action, again.warnings, again.fields) == (Action.NOOP, (), ())


def test_expected_rows_names_exactly_the_unchanged_owned_rows() -> None:
    from reconciler.plan import expected_rows
    from reconciler.state import ExpectedRow

    live = reconcile([desired("a"), desired("b"), desired("c", enabled=False)])
    rows = {j.id: j for j in live.jobs}
    found = expected_rows([desired("a"), desired("b", name="changed"), desired("c", enabled=False)], live.ledger,
                          live.workflows, SETTINGS)  # fmt: skip
    assert found == {A_ID: ExpectedRow(rows[A_ID].row_hash, (TASK_A.workflow_id,))}
    others = replace(live, ledger=tuple(replace(e, namespace="team-x") for e in live.ledger))
    assert expected_rows([desired("a")], others.ledger, others.workflows, SETTINGS) == {}
    gone = (replace(TASK_A, deleted=True), TASK_B)
    assert expected_rows([desired("a")], live.ledger, gone, SETTINGS) == {}
    named = reconcile([desired("a", name="A")])  # its digest does not depend on the workflow's description
    assert expected_rows([desired("a", name="A")], named.ledger, gone, SETTINGS) == {}
    named = desired("a", name=None)
    assert expected_rows([named], live.ledger, live.workflows, SETTINGS) == {A_ID: found[A_ID]}
    # a new key declared first does not hide the known rows after it
    assert expected_rows([desired("new"), desired("a")], live.ledger, live.workflows, SETTINGS) == {A_ID: found[A_ID]}


def test_a_removed_key_shows_its_own_next_runs_not_a_fresh_start() -> None:
    live = reconcile([desired("a"), desired("b")])
    state = live.jobs[0].state
    assert state is not None
    later = NOW + timedelta(minutes=150)  # the row is overdue: its pickled time still comes first
    change = only(plan_of([desired("b")], live, now=later))
    assert change.next_runs_before[0] == state["next_run_time"].isoformat()
    assert [u.id for u in plan_of([desired("b")], live).unmanaged] == []  # its row is claimed, not unmanaged
    renamed = rewrite(live, A_ID, name="by hand")
    assert plan_of([desired("b")], renamed).fingerprint != plan_of([desired("b")], live).fingerprint


def test_a_protected_removed_key_keeps_its_id_and_source() -> None:
    live = reconcile([desired("a", protect=True, source=SourceLocation("m.yaml", 2, 3)), desired("b")])
    change = only(plan_of([desired("b")], live))
    assert (change.schedule_id, change.source) == (A_ID, "m.yaml:2")


def test_a_missing_workflow_suggests_three_names_at_most() -> None:
    names = [replace(TASK_A, workflow_id=f"00000000-0000-0000-0000-00000000010{i}", name=f"task_{i}") for i in range(5)]
    plan = compute_plan([desired("a", workflow_name="task_")], replace(EMPTY, workflows=tuple(names)), SETTINGS, NOW)
    assert plan.errors[0].count("'task_") == 4  # the name itself and three suggestions


# --- rows in orchestrator-core 4.x's format ------------------------------------------------------------

SETTINGS_4 = PlanSettings(generation=4, func=ORCHESTRATOR_4_FUNC)
DRIFT = "changed outside reconciler (drift); apply restores the declared state"


def written_for_4x(schedules: list[DesiredSchedule]) -> LiveState:
    """What an apply for a 4.x database wrote: 4.x's func, no user_inputs."""
    plan = compute_plan(schedules, EMPTY, SETTINGS_4, NOW)
    return execute(EMPTY, _collect(plan, EMPTY, SETTINGS_4, ApplySettings(provenance=Provenance("c4", "a")), NOW))


def test_a_4x_row_planned_for_5x_is_a_labelled_format_upgrade_keeping_its_next_run() -> None:
    live = written_for_4x([desired("a")])
    state = live.jobs[0].state
    assert state is not None and state["func"] == ORCHESTRATOR_4_FUNC and "user_inputs" not in state["kwargs"]
    plan = plan_of([desired("a")], live)
    change = only(plan)
    assert [(f.name, f.before, f.after) for f in change.fields] == [
        ("user_inputs", None, [{}]),
        ("func", ORCHESTRATOR_4_FUNC, ORCHESTRATOR_FUNC),
    ]
    assert (change.action, change.drift, change.write_row, change.reschedule) == (Action.UPDATE, False, True, False)
    assert change.warnings == (FORMAT_UPGRADE,)
    (row,) = apply_plan(plan, live).jobs
    assert row.state is not None and row.state["func"] == ORCHESTRATOR_FUNC
    assert row.state["kwargs"]["user_inputs"] == [{}] and row.next_run_time == live.jobs[0].next_run_time


@pytest.mark.parametrize(
    "old_format",
    [{"func": ORCHESTRATOR_4_FUNC}, {"kwargs": {"workflow_name": "task_a"}}],
    ids=["func only", "user_inputs only"],
)
def test_either_half_of_the_4x_format_alone_is_an_upgrade_not_drift(old_format: dict[str, object]) -> None:
    # Same spec as the ledger recorded, so any other difference would be drift.
    change = only(plan_of([desired("a")], rewrite(reconcile([desired("a")]), A_ID, **old_format)))
    assert (change.action, change.drift, change.warnings) == (Action.UPDATE, False, (FORMAT_UPGRADE,))


@pytest.mark.parametrize(
    "changed",
    [
        {"func": ORCHESTRATOR_4_FUNC, "name": "by hand"},  # 4.x's format and a change
        {"func": ORCHESTRATOR_4_FUNC, "executor": "threads"},  # ... compared after the func
        {"kwargs": {"workflow_name": "task_a"}, "misfire_grace_time": 30},  # ... after the inputs
        {"func": "other.module:run"},  # not 4.x's func
        {"kwargs": {"workflow_name": "task_a", "user_inputs": [{"x": 1}]}},  # other inputs, not none
    ],
    ids=["format and name", "format and executor", "format and grace", "another func", "other inputs"],
)
def test_anything_beyond_the_4x_format_is_drift(changed: dict[str, object]) -> None:
    change = only(plan_of([desired("a")], rewrite(reconcile([desired("a")]), A_ID, **changed)))
    assert (change.action, change.drift, change.warnings) == (Action.UPDATE, True, (DRIFT,))


def test_only_a_plan_for_5x_upgrades_the_format() -> None:
    live = written_for_4x([desired("a")])
    forced = PlanSettings(generation=4, func=ORCHESTRATOR_FUNC)  # 4.x, with 5.x's func forced
    change = only(compute_plan([desired("a")], live, forced, NOW))
    assert [f.name for f in change.fields] == ["func"] and FORMAT_UPGRADE not in change.warnings
    assert not compute_plan([desired("a")], live, SETTINGS_4, NOW).has_changes


def test_a_link_changed_behind_our_back_is_drift_not_a_format_upgrade() -> None:
    change = only(plan_of([desired("a")], with_links(reconcile([desired("a")]), A_ID, [])))
    assert change.warnings == (DRIFT,)


def test_a_foreign_rows_inputs_may_hold_any_readable_value_in_any_key_order() -> None:
    # An API-made row's user_inputs are whatever its author pickled: a datetime plans (it is listed, not a
    # crash), and the same inputs in another key order are the same row to a saved plan's fingerprint.
    def api_row(inputs: dict[str, object]) -> LiveJob:
        from apscheduler.triggers.interval import IntervalTrigger

        row = build_job_row(
            job_id="api-job",
            trigger=IntervalTrigger(hours=2, timezone="UTC", start_date=NOW),
            workflow_name="task_b",
            user_inputs=[inputs],
            name="Made elsewhere",
            next_run_time=NOW,
        )
        return job(row, [TASK_B.workflow_id])

    when = NOW + timedelta(days=1)
    one = compute_plan([], replace(EMPTY, jobs=(api_row({"when": when, "a": 1, "b": 2}),)), SETTINGS, NOW)
    other = compute_plan([], replace(EMPTY, jobs=(api_row({"b": 2, "a": 1, "when": when}),)), SETTINGS, NOW)
    assert [(u.id, u.source) for u in one.unmanaged] == [("api-job", "api")]
    assert one.fingerprint == other.fingerprint
    changed = compute_plan([], replace(EMPTY, jobs=(api_row({"b": 3, "a": 1, "when": when}),)), SETTINGS, NOW)
    assert changed.fingerprint != one.fingerprint


@given(namespace=st.one_of(st.text(max_size=20), st.uuids().map(str)), key=st.text(max_size=40))
def test_a_new_schedule_id_is_uuid5_of_namespace_and_key(namespace: str, key: str) -> None:
    # orchestrator-core's REST API needs a UUID; ids of applied schedules must never change meaning.
    try:
        wanted = str(uuid.uuid5(namespace_uuid(namespace), key))
    except UnicodeEncodeError:  # a lone surrogate: neither can encode it
        with pytest.raises(UnicodeEncodeError):
            schedule_id_for(namespace, key)
        return
    assert schedule_id_for(namespace, key) == wanted
    assert schedule_id_for("default", "a") == "0af4d73d-1d8e-57cf-a219-7a4afd798433"  # as ledgers recorded it
