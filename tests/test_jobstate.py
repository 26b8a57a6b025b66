"""Job rows as orchestrator-core writes them: byte for byte the rows orchestrator-core 5.5.0 itself wrote
(tests/fixtures/orchestrator-written-rows.json), and every trigger and input shape read back by the
allow-list unpickler as written."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from reconciler import triggers
from reconciler.jobstate import ORCHESTRATOR_FUNC, build_job_row, load_job_state

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


def test_every_trigger_and_input_shape_reads_back_through_the_allow_list() -> None:
    for n, spec in enumerate(SPECS):
        trigger = built(spec)
        for m, inputs in enumerate(USER_INPUTS):
            row = build_job_row(
                job_id=f"job-{n}-{m}",
                trigger=trigger,
                workflow_name="task_clean_up_tasks",
                user_inputs=inputs,
                name=f"Schedule {n}",
                next_run_time=NOW + timedelta(hours=n),
                func=ORCHESTRATOR_FUNC,
            )
            state = load_job_state(row.job_state)
            assert state["kwargs"] == {"workflow_name": "task_clean_up_tasks", "user_inputs": inputs}
            assert (state["id"], state["name"], state["func"]) == (f"job-{n}-{m}", f"Schedule {n}", ORCHESTRATOR_FUNC)
            assert state["next_run_time"] == NOW + timedelta(hours=n)
            assert type(state["trigger"]) is type(trigger) and str(state["trigger"]) == str(trigger)
            assert row.next_run_time == (NOW + timedelta(hours=n)).timestamp()


def test_the_rows_orchestrator_core_wrote_come_out_byte_for_byte() -> None:
    written = json.loads(FIXTURE.read_text())["apscheduler_jobs"]
    for row in written:
        stored = base64.b64decode(row["job_state_b64"])
        state = load_job_state(stored)
        ours = build_job_row(
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
