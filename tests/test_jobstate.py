"""Job rows as orchestrator-core writes them: byte for byte the rows orchestrator-core 5.5.0 itself wrote
(tests/fixtures/orchestrator-written-rows.json), and every trigger and input shape read back by the
allow-list unpickler as written; rows naming anything else are refused, and run nothing."""

from __future__ import annotations

import base64
import json
import os
import pickle
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger

from reconciler import triggers
from reconciler.jobstate import (
    ORCHESTRATOR_FUNC,
    UnreadableJobState,
    build_job_row,
    load_job_state,
    repickle,
)

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


# --- rows that must not be read -------------------------------------------------------------------------


def a_row(trigger: BaseTrigger | None = None, **extra: Any) -> bytes:
    return build_job_row(
        job_id="j",
        trigger=trigger or built(SPECS[6]),
        workflow_name="task_clean_up_tasks",
        user_inputs=[{}],
        name="J",
        next_run_time=NOW,
        **extra,
    ).job_state


def refused(blob: bytes) -> str:
    with pytest.raises(UnreadableJobState) as caught:
        load_job_state(blob)
    return str(caught.value)


class _RunsCode:
    """Pickles as a call of os.system: what a row written by anyone with database access could hold."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class _Evaluates:
    """Pickles as a call of eval: a builtin, which is not getattr either."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (eval, ("1 + 1",))


def test_a_row_naming_any_other_global_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    state = load_job_state(a_row())
    blob = pickle.dumps({**state, "args": (_RunsCode(marker),)}, pickle.HIGHEST_PROTOCOL)
    assert refused(blob) == f"cannot unpickle job_state: global {os.system.__module__}.system is not allowed"
    assert not marker.exists()
    blob = pickle.dumps({**state, "args": (_Evaluates(),)}, pickle.HIGHEST_PROTOCOL)
    assert refused(blob) == "cannot unpickle job_state: global builtins.eval is not allowed"


def test_getattr_in_a_row_reaches_nothing_but_zoneinfos_unpickle() -> None:
    class _Getattr:
        def __reduce__(self) -> tuple[Any, ...]:
            return (getattr, (ZoneInfo, "clear_cache"))

    state = load_job_state(a_row())
    blob = pickle.dumps({**state, "name": _Getattr()}, pickle.HIGHEST_PROTOCOL)
    assert refused(blob) == (
        "cannot unpickle job_state: getattr(<class 'zoneinfo.ZoneInfo'>, 'clear_cache') is not allowed"
    )
    zoned = built(SPECS[1])  # Europe/Amsterdam: pickled through getattr(ZoneInfo, "_unpickle")
    assert str(load_job_state(a_row(zoned))["trigger"]) == str(zoned)


def test_a_combining_trigger_naming_another_sub_trigger_class_is_refused() -> None:
    # AndTrigger/OrTrigger import every "module:Class" their state names: each must be a trigger class.
    good = a_row(built(SPECS[11]))
    ref = b"apscheduler.triggers.interval:IntervalTrigger"
    assert ref in good
    blob = good.replace(ref, b"apscheduler.triggers.interval:IntervalTriggeX")  # same length: a valid pickle
    assert refused(blob) == (
        "cannot unpickle job_state: sub-trigger class 'apscheduler.triggers.interval:IntervalTriggeX' is not allowed"
    )
    for spec in (SPECS[10], SPECS[11]):  # and the real ones come back as the real classes, re-pickling alike
        trigger = built(spec)
        state = load_job_state(a_row(trigger))
        assert type(state["trigger"]) is type(trigger) and str(state["trigger"]) == str(trigger)
        assert pickle.dumps(state["trigger"], pickle.HIGHEST_PROTOCOL) == pickle.dumps(trigger, pickle.HIGHEST_PROTOCOL)


def test_a_sub_trigger_entry_that_is_no_pair_is_refused_before_anything_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The base class unpacks each entry as (class reference, state) and imports the reference. A mapping whose
    # item 0 is an allowed class would pass a check that indexed it, while unpacking it yields its *keys*: the
    # first key, a module named by the row, would be imported. Only a real pair is looked at.
    probe = f"reconciler_probe_{os.getpid()}"
    marker = tmp_path / "imported"
    (tmp_path / f"{probe}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    state = load_job_state(a_row(built(SPECS[11])))
    combining = type(state["trigger"])
    real_getstate = combining.__getstate__

    def forged(self: Any) -> dict[str, Any]:
        forged_state: dict[str, Any] = real_getstate(self)
        forged_state["triggers"] = [{f"{probe}:Anything": 1, 0: "apscheduler.triggers.interval:IntervalTrigger"}]
        return forged_state

    monkeypatch.setattr(combining, "__getstate__", forged)
    blob = pickle.dumps(state, pickle.HIGHEST_PROTOCOL)
    monkeypatch.undo()
    monkeypatch.syspath_prepend(str(tmp_path))
    assert refused(blob) == "cannot unpickle job_state: sub-trigger class None is not allowed"
    assert not marker.exists()
    assert probe not in sys.modules


def test_what_is_not_a_version_1_job_is_refused_naming_why() -> None:
    state = load_job_state(a_row())

    def dumped(value: Any) -> bytes:
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    assert refused(b"not a pickle").startswith("cannot unpickle job_state: ")
    assert refused(dumped([1, 2])) == "job_state is not a dict"
    assert refused(dumped({**state, "version": 2})) == "job_state has version 2; only version 1 is readable"
    unversioned = {k: v for k, v in state.items() if k != "version"}
    assert refused(dumped(unversioned)) == "job_state lacks version"
    lacking = {k: v for k, v in state.items() if k not in ("coalesce", "name")}
    assert refused(dumped(lacking)) == "job_state lacks coalesce, name"
    assert refused(dumped({**state, "trigger": "interval"})) == "job_state trigger is not an APScheduler trigger"
    assert refused(dumped({**state, "func": None})) == "job_state func is not a text reference"
    assert refused(dumped({**state, "kwargs": ["task_clean_up_tasks"]})) == "job_state kwargs is not a mapping"


def test_a_row_rewritten_with_repickle_is_what_apscheduler_would_write() -> None:
    # `schedules run` moves a row on by re-pickling its state with the next run: byte for byte what
    # APScheduler's own job store writes, so orchestrator-core's scheduler reads it as its own.
    for row in json.loads(FIXTURE.read_text())["apscheduler_jobs"]:
        stored = base64.b64decode(row["job_state_b64"])
        state = load_job_state(stored)
        assert repickle(state) == stored, row["id"]
        later = state["next_run_time"] + timedelta(hours=1)
        moved = build_job_row(
            job_id=state["id"],
            trigger=state["trigger"],
            workflow_name=state["kwargs"]["workflow_name"],
            user_inputs=state["kwargs"]["user_inputs"],
            name=state["name"],
            next_run_time=later,
            misfire_grace_time=state["misfire_grace_time"],
            coalesce=state["coalesce"],
            max_instances=state["max_instances"],
            func=state["func"],
        )
        assert repickle(state, next_run_time=later) == moved.job_state, row["id"]
