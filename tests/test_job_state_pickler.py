"""JobStatePickler: the trigger pickled once per distinct trigger, every row still byte-identical.

The reference is `pickle.dumps(Job.__getstate__(), 5)` (`build_job_row`), and behind it the four rows
orchestrator-core 5.5.0 itself wrote (tests/fixtures/orchestrator-written-rows.json).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.base import BaseTrigger

from reconciler import triggers
from reconciler.jobstate import ORCHESTRATOR_FUNC, JobStatePickler, build_job_row, load_job_state

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FIXTURE = Path(__file__).parent / "fixtures" / "orchestrator-written-rows.json"

SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("cron", {"hour": 3, "minute": 7}, "UTC"),
    ("cron", {"hour": 3, "minute": 7}, "Europe/Amsterdam"),
    ("cron", {"crontab": "*/15 9-17 * * mon-fri"}, "UTC"),
    ("cron", {"day": "last", "hour": 23}, "America/New_York"),
    ("cron", {"day": "2nd tue", "month": "jan-mar", "minute": "0,30"}, "Asia/Tokyo"),
    ("cron", {"week": "1-10/2", "second": 5}, "UTC"),
    ("interval", {"minutes": 5}, "UTC"),
    ("interval", {"hours": 12, "start_date": "2026-01-01T00:00:00+00:00"}, "Europe/Amsterdam"),
    ("date", {"run_date": "2031-01-15T03:00:00+00:00"}, "UTC"),
    ("calendarinterval", {"days": 2, "hour": 4, "minute": 5}, "Europe/Amsterdam"),
    (
        "or",
        {
            "triggers": [
                {"trigger": "cron", "trigger_kwargs": {"day_of_week": "mon-fri", "hour": 9}},
                {"trigger": "cron", "trigger_kwargs": {"day_of_week": "sat", "hour": 12}},
            ]
        },
        "UTC",
    ),
    (
        "and",
        {
            "triggers": [
                {"trigger": "interval", "trigger_kwargs": {"hours": 1}},
                {"trigger": "cron", "trigger_kwargs": {"hour": "9-17"}},
            ]
        },
        "UTC",
    ),
]

USER_INPUTS: list[list[dict[str, Any]]] = [
    [],
    [{}],
    [{"note": "run"}],
    [{"name": "x", "a": "a", "trigger": ["year", "month", "step"], "n": 1, "f": 1.5, "none": None}],
    [{"nested": {"deep": [1, "2", {"three": 3}]}, "same": "Europe/Amsterdam"}, {"b": True}],
]


def built(spec: tuple[str, dict[str, Any], str]) -> BaseTrigger:
    return triggers.build_trigger(spec[0], spec[1], spec[2], now=NOW)


def both(pickler: JobStatePickler, **row: Any) -> tuple[bytes, bytes]:
    return build_job_row(**row, pickler=pickler).job_state, build_job_row(**row).job_state


def test_every_trigger_and_input_shape_pickles_as_pickle_dumps_does() -> None:
    pickler = JobStatePickler()
    rows = 0
    for spec in SPECS:
        trigger = built(spec)
        fire = triggers.next_fire_times(trigger, 1, NOW)
        for n, inputs in enumerate(USER_INPUTS):
            for next_run in (fire[0] if fire else None, None):
                job_id = f"{n:08d}-0000-4000-8000-{rows:012d}"
                ours, reference = both(
                    pickler,
                    job_id=job_id,
                    trigger=trigger,
                    workflow_name="task_validate_products",
                    user_inputs=inputs,
                    name=f"Schedule {n}",
                    next_run_time=next_run,
                    misfire_grace_time=None if n == 2 else 1,
                    coalesce=n != 3,
                    max_instances=1 + n,
                )
                assert ours == reference, (spec, inputs, next_run)
                rows += 1
    assert pickler.templated == rows - len({type(built(s)) for s in SPECS})  # one checked whole per class


def test_shared_objects_come_out_as_back_references_exactly() -> None:
    """Whatever is the same object in the state (name is the workflow name, the id, …) stays so."""
    pickler = JobStatePickler()
    trigger = built(SPECS[1])
    job_id = "3f1d0c1e-0000-4000-8000-000000000001"
    workflow = "task_validate_products"
    tz_name = trigger.timezone.key  # type: ignore[attr-defined]
    cases: list[dict[str, Any]] = [
        {"name": workflow, "user_inputs": []},
        {"name": job_id, "user_inputs": [{"id": job_id}]},
        {"name": "n", "user_inputs": [{"zone": tz_name, "again": tz_name, "n": "n"}]},
        {"name": "version", "user_inputs": [{"version": "name", "func": ORCHESTRATOR_FUNC}]},
    ]
    for number, case in enumerate(cases):
        next_run = triggers.next_fire_times(trigger, 1, NOW)[0]
        row = {"job_id": job_id if number else job_id + "x", "trigger": trigger, "workflow_name": workflow,
               "next_run_time": next_run, **case}  # fmt: skip
        ours, reference = both(pickler, **row)
        assert ours == reference, case
    assert pickler.templated >= len(cases) - 1


def test_a_pickle_too_large_for_one_frame_is_pickled_whole_and_still_equal() -> None:
    pickler = JobStatePickler()
    trigger = built(SPECS[0])
    common = {"trigger": trigger, "workflow_name": "task_x", "name": "big", "next_run_time": None}
    build_job_row(pickler=pickler, job_id="first", user_inputs=[], **common)  # the class check
    big = [{"blob": "x" * 70_000}]
    ours, reference = both(pickler, job_id="second", user_inputs=big, **common)
    assert ours == reference
    assert len(ours) > 70_000
    assert pickler.templated == 0


def test_the_rows_orchestrator_core_wrote_come_out_byte_for_byte() -> None:
    written = json.loads(FIXTURE.read_text())["apscheduler_jobs"]
    pickler = JobStatePickler()
    for _round in range(2):  # the second round is all templated: each trigger class was checked in the first
        for row in written:
            stored = base64.b64decode(row["job_state_b64"])
            state = load_job_state(stored)
            ours = build_job_row(
                pickler=pickler,
                job_id=state["id"],
                trigger=state["trigger"],
                workflow_name=state["kwargs"]["workflow_name"],
                user_inputs=state["kwargs"]["user_inputs"],
                name=state["name"],
                next_run_time=state["next_run_time"],
                misfire_grace_time=state["misfire_grace_time"],
                coalesce=state["coalesce"],
                max_instances=state["max_instances"],
                func=state["func"],
            )
            assert ours.job_state == stored, row["id"]
            assert ours.next_run_time == row["next_run_time_column"]
    assert pickler.templated == len(written) + (
        len(written) - len({r["job_state"]["trigger"]["__class__"] for r in written})
    )


def test_a_mismatch_in_the_class_check_turns_the_shortcut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    pickler = JobStatePickler()
    trigger = built(SPECS[6])
    # Pretend this Python pickles differently from what the template assembles.
    monkeypatch.setattr(JobStatePickler, "_dumps", lambda self, state: b"not what pickle writes")
    row = build_job_row(pickler=pickler, job_id="a", trigger=trigger, workflow_name="w", user_inputs=[], name="n",
                        next_run_time=NOW + timedelta(minutes=5))  # fmt: skip
    assert row.job_state == build_job_row(job_id="a", trigger=trigger, workflow_name="w", user_inputs=[], name="n",
                                          next_run_time=NOW + timedelta(minutes=5)).job_state  # fmt: skip
    build_job_row(
        pickler=pickler, job_id="b", trigger=trigger, workflow_name="w", user_inputs=[], name="n", next_run_time=None
    )
    assert pickler.templated == 0
