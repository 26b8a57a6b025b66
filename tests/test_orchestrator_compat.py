"""orchestrator-core compatibility, proven by each supported release itself (DESIGN.md §4, §5, rule 8).

Per release (tests/orchestrator_env.py: one venv each, outside the project's own), one scratch PostgreSQL
database for the module, migrated by that release's own alembic migrations (to heads, or for 5.x without the
`vector` extension to fbc16e410bc6, where the schedule tables are final, plus the later revisions that need no
pgvector; see tests/orchestrator_side.py). Task workflows our YAML uses that the migration did not seed are
inserted with that release's `create_task` helper. orchestrator-core writes one schedule itself, through the
code its scheduler runs for POST /api/schedules (`_add_scheduled_task`: APScheduler's add_job plus the linker
row). Then the reconciler applies one schedule per trigger type. After that, the release's own code reads,
starts and runs what we wrote:

- `get_all_scheduler_tasks()` restores every job (it deletes jobs it cannot restore); re-pickling each
  restored job (`pickle.dumps(job.__getstate__(), HIGHEST_PROTOCOL)`) gives the stored bytes exactly;
- `enrich_with_workflow_id()` and the GraphQL resolver's `get_scheduler_tasks()` link each to its workflow;
- `scheduler show-schedule` lists them with source API;
- `scheduler force ID` starts a process for each of them (rows in `processes`; user_inputs arrive on 5.x);
- a running `scheduler run`, woken through Redis by the reconciler, runs a 5 s interval schedule;
- rows the reconciler rewrites (name, user_inputs, trigger) are restored byte for byte as well.

Everything orchestrator-core does runs in a subprocess with that release's python: it reads its settings
(DATABASE_URI, CACHE_URI, ...) at import time, and its dependencies are not ours.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
import yaml
from apscheduler.util import datetime_to_utc_timestamp
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from reconciler.apply import ApplySettings
from reconciler.commands.reconcile import Outcome, ReconcileOptions, run
from reconciler.jobstate import build_job_row
from reconciler.orchestrator_versions import Generation
from reconciler.plan import PlanSettings, schedule_id_for
from tests.orchestrator_env import (
    ANSI,
    REDIS_URL,
    VERSIONS,
    Orchestrator,
    OrchestratorVenv,
    migrated_database,
    orchestrator_venv,
)

pytestmark = [pytest.mark.postgres, pytest.mark.orchestrator]

REPO = Path(__file__).resolve().parent.parent
FINAL_SCHEDULE_REVISION = "fbc16e410bc6"
PROBE = "task_reconciler_probe"  # project tasks, defined in tests/orchestrator_side.py
PLAIN = "task_reconciler_plain"
TASK_DESCRIPTIONS = {PROBE: "Reconciler probe", PLAIN: "Reconciler plain task"}  # as their migrations say
BOX = "│┃"
#: The releases this module proves; each gets its own database and venv.
MATRIX = VERSIONS


# --- the database --------------------------------------------------------------------------------------


def engine_for(db_url: str) -> Engine:
    return create_engine(db_url)


def job_rows(db_url: str) -> dict[str, tuple[float | None, bytes]]:
    engine = engine_for(db_url)
    with engine.connect() as conn:
        rows = {
            r.id: (r.next_run_time, bytes(r.job_state))
            for r in conn.execute(text("SELECT id, next_run_time, job_state FROM apscheduler_jobs"))
        }
    engine.dispose()
    return rows


def link_rows(db_url: str) -> set[tuple[str, str]]:
    engine = engine_for(db_url)
    with engine.connect() as conn:
        rows = {
            (str(r.workflow_id), r.schedule_id)
            for r in conn.execute(text("SELECT workflow_id, schedule_id FROM workflows_apscheduler_jobs"))
        }
    engine.dispose()
    return rows


def workflows(db_url: str) -> dict[str, dict[str, Any]]:
    engine = engine_for(db_url)
    with engine.connect() as conn:
        rows = {
            r.name: dict(r._mapping)
            for r in conn.execute(text("SELECT workflow_id, name, target, description, is_task FROM workflows"))
        }
    engine.dispose()
    return rows


def processes(db_url: str) -> list[dict[str, Any]]:
    engine = engine_for(db_url)
    query = text(
        "SELECT p.pid, w.name AS workflow, p.last_status, p.created_by, p.is_task, p.started_at,"
        " (SELECT s.state->>'echoed' FROM process_steps s WHERE s.pid = p.pid AND s.name = 'Echo the message'"
        "  LIMIT 1) AS echoed"
        " FROM processes p JOIN workflows w USING (workflow_id) ORDER BY p.started_at"
    )
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    engine.dispose()
    return rows


def vector_available(db_url: str) -> bool:
    engine = engine_for(db_url)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first()
    engine.dispose()
    return found is not None


# --- the schedules ---------------------------------------------------------------------------------------


def wall_clock(now: datetime, zone: str, hours: int) -> dict[str, int]:
    """hour/minute `hours` from now in `zone`: never due while this module runs, whenever it runs."""
    moment = (now + timedelta(hours=hours)).astimezone(ZoneInfo(zone))
    return {"hour": moment.hour, "minute": moment.minute}


def compat_schedules(now: datetime, *, user_inputs: bool = True) -> list[dict[str, Any]]:
    """One schedule per trigger type orchestrator-core must read, on distinct tasks.

    `user_inputs`: whether the release's scheduler task takes them (5.x); 4.x schedules carry none.
    """
    in_30_days = (now + timedelta(days=30)).astimezone(ZoneInfo("Asia/Tokyo")).replace(microsecond=0)
    crontab = wall_clock(now, "UTC", 4)
    return [
        {
            "key": "compat-interval",
            "workflow_name": "task_clean_up_tasks",
            "name": "Compat interval",
            "trigger": "interval",
            "trigger_kwargs": {"hours": 6},
        },
        {
            "key": "compat-cron-amsterdam",
            "workflow_name": "task_validate_products",
            "trigger": "cron",
            "trigger_kwargs": {"day_of_week": "mon-fri", **wall_clock(now, "Europe/Amsterdam", 3)},
            "timezone": "Europe/Amsterdam",
        },
        {
            "key": "compat-crontab",
            "workflow_name": PLAIN,
            "name": "Compat crontab",
            "trigger": "cron",
            "trigger_kwargs": {"crontab": f"{crontab['minute']} {crontab['hour']} * * 1-5"},
        },
        {
            "key": "compat-date",
            "workflow_name": "task_resume_workflows",
            "name": "Compat date",
            "trigger": "date",
            "trigger_kwargs": {"run_date": in_30_days.replace(tzinfo=None).isoformat()},
            "timezone": "Asia/Tokyo",
        },
        {
            "key": "compat-calendar",
            "workflow_name": "task_validate_subscriptions",
            "trigger": "calendarinterval",
            "trigger_kwargs": {"months": 1, **wall_clock(now, "America/New_York", 3)},
            "timezone": "America/New_York",
        },
        {
            "key": "compat-or",
            "workflow_name": PROBE,
            "name": "Probe either way",
            "trigger": "or",
            "trigger_kwargs": {
                "triggers": [
                    {"trigger": "cron", "trigger_kwargs": wall_clock(now, "UTC", 5)},
                    {"trigger": "interval", "trigger_kwargs": {"hours": 12}},
                ]
            },
            **({"user_inputs": [{"message": "from git"}]} if user_inputs else {}),
            "misfire_grace_time": 60,
        },
    ]


EXPECTED_TRIGGER_CLASS = {
    "compat-interval": "IntervalTrigger",
    "compat-cron-amsterdam": "CronTrigger",
    "compat-crontab": "CronTrigger",
    "compat-date": "DateTrigger",
    "compat-calendar": "CalendarIntervalTrigger",
    "compat-or": "OrTrigger",
}


def write_dir(directory: Path, schedules: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    body = {"defaults": {"timezone": "UTC"}, "schedules": schedules}
    (directory / "compat.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return directory


def reconcile(directory: Path, db_url: str) -> Outcome:
    # One named source for every directory this module applies: they stand for one repository's schedules
    # at different commits (otherwise each temporary directory would be a source of its own, and refused).
    settings = PlanSettings(source="compat-tests")
    return run(
        ReconcileOptions(directory=directory, db_url=db_url, settings=settings, apply=ApplySettings(redis_url=None))
    )


# --- the module's database ---------------------------------------------------------------------------------


@dataclass
class Compat:
    venv: OrchestratorVenv
    side: Orchestrator  # the release, configured for this database
    url: str
    migrated: dict[str, Any]
    registered: dict[str, str]
    api_id: str
    api_row: tuple[float | None, bytes]
    api_links: set[tuple[str, str]]
    # every row the release wrote itself: the API schedule, and (4.7) its own decorator job validate-products
    own_rows: dict[str, tuple[float | None, bytes]]
    specs: dict[str, dict[str, Any]]
    ids: dict[str, str]  # key -> schedule id
    directory: Path
    first: Outcome
    rows_after_first: dict[str, tuple[float | None, bytes]]
    inspected: dict[str, Any]

    @property
    def env(self) -> dict[str, str]:
        return self.side.env

    @property
    def takes_user_inputs(self) -> bool:
        """5.x runs `run_start_workflow_scheduler_task(workflow_name, user_inputs)`; 4.x takes no user_inputs."""
        return self.venv.major >= 5


@pytest.fixture(scope="module", params=MATRIX)
def compat(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compat]:
    venv = orchestrator_venv(request.param)
    with migrated_database(venv, tmp_path_factory.mktemp("project")) as side:
        url = side.db_url
        now = datetime.now(UTC)
        schedules = compat_schedules(now, user_inputs=venv.major >= 5)
        seeded = workflows(url)
        missing = {s["workflow_name"] for s in schedules} - set(seeded)
        registered: dict[str, str] = {}
        if missing:
            tasks = json.dumps({name: TASK_DESCRIPTIONS[name] for name in sorted(missing)})
            registered = side.run("register-tasks", tasks).result["workflow_ids"]

        payload = {
            "name": "Made through the API",
            "workflow_name": "task_clean_up_tasks",
            "trigger": "interval",
            "trigger_kwargs": {"hours": 2},
        }
        added = side.run("add-api-schedule", json.dumps(payload)).result
        # 4.7's get_scheduler() also stores its last core decorator job, validate-products, on first start
        (api_id,) = [i for i in added["ids"] if i != "validate-products"]
        assert added["ids"] == sorted([api_id, *(["validate-products"] if venv.version.startswith("4.7") else [])])
        own_rows = job_rows(url)
        api_row = own_rows[api_id]
        api_links = {link for link in link_rows(url) if link[1] == api_id}

        directory = write_dir(tmp_path_factory.mktemp("compat") / "schedules.d", schedules)
        first = reconcile(directory, url)
        rows_after_first = job_rows(url)
        inspected = side.run("inspect").result
        yield Compat(
            venv=venv,
            side=side,
            url=url,
            migrated=side.migrated,
            registered=registered,
            api_id=api_id,
            api_row=api_row,
            api_links=api_links,
            own_rows=own_rows,
            specs={s["key"]: s for s in schedules},
            ids={s["key"]: schedule_id_for("default", s["key"]) for s in schedules},
            directory=directory,
            first=first,
            rows_after_first=rows_after_first,
            inspected=inspected,
        )


def restored(compat: Compat) -> dict[str, dict[str, Any]]:
    return {job["id"]: job for job in compat.inspected["jobs"]}


# --- the tests ----------------------------------------------------------------------------------------------


def test_database_migrated_by_orchestrator_core_and_tasks_registered(compat: Compat) -> None:
    if compat.venv.major < 5 or vector_available(compat.url):  # 4.x needs no pgvector to reach its heads
        assert sorted(compat.migrated["revisions"]) == sorted(compat.migrated["heads"])
        assert compat.migrated["revisions"] != [FINAL_SCHEDULE_REVISION]
    else:
        assert compat.migrated["vector"] is False
        assert compat.migrated["revisions"] == [FINAL_SCHEDULE_REVISION]
    rows = workflows(compat.url)
    # a task our YAML uses and no migration seeds is inserted as create_task does: SYSTEM, is_task
    assert PROBE in compat.registered
    for name, workflow_id in compat.registered.items():
        assert rows[name]["target"] == "SYSTEM" and rows[name]["is_task"] is True, rows[name]
        assert str(rows[name]["workflow_id"]) == workflow_id
        assert rows[name]["description"] == TASK_DESCRIPTIONS[name]
    assert {s["workflow_name"] for s in compat.specs.values()} <= set(rows)


def test_reconcile_creates_every_schedule_and_lists_the_api_row_as_unmanaged(compat: Compat) -> None:
    outcome = compat.first
    assert outcome.exit_code == 0, (outcome.out, outcome.err)
    assert outcome.plan is not None
    assert outcome.plan.summary["create"] == len(compat.specs), outcome.plan.summary
    assert outcome.plan.summary["update"] == 0 and outcome.plan.summary["delete"] == 0
    unmanaged = {u.id: u for u in outcome.plan.unmanaged}
    assert set(unmanaged) == set(compat.own_rows)
    assert unmanaged[compat.api_id].source == "api"
    assert all(unmanaged[i].source == "decorator" for i in set(compat.own_rows) - {compat.api_id})
    assert unmanaged[compat.api_id].workflow_name == "task_clean_up_tasks"
    assert "Verified: the database now matches the files." in outcome.out

    rows = compat.rows_after_first
    assert set(rows) == {*compat.ids.values(), *compat.own_rows}
    assert {i: rows[i] for i in compat.own_rows} == compat.own_rows  # the release's own rows: untouched
    # the row orchestrator-core wrote is left alone: same bytes, same next_run_time, same linker row
    assert rows[compat.api_id] == compat.api_row
    assert {link for link in link_rows(compat.url) if link[1] == compat.api_id} == compat.api_links
    assert len(compat.api_links) == 1
    # and every schedule we wrote has exactly one linker row, to its workflow
    wf = workflows(compat.url)
    links = link_rows(compat.url)
    for key, schedule_id in compat.ids.items():
        ours = {w for w, s in links if s == schedule_id}
        assert ours == {str(wf[compat.specs[key]["workflow_name"]]["workflow_id"])}, key


def test_orchestrator_core_restores_every_schedule_we_wrote(compat: Compat) -> None:
    jobs = restored(compat)
    # get_all_scheduler_tasks() deletes rows it cannot restore: every row must still be there, restored
    assert set(jobs) == set(job_rows(compat.url)) == {*compat.ids.values(), *compat.own_rows}
    wf = workflows(compat.url)
    now = datetime.now(UTC)
    for key, schedule_id in compat.ids.items():
        spec, job = compat.specs[key], jobs[schedule_id]
        # the release's own func, which its job store imports (the other generation's would be deleted)
        assert job["func"] == compat.venv.func and job["func_ref"] == compat.venv.func, key
        assert job["args"] == [], key
        expected_kwargs = {"workflow_name": spec["workflow_name"]}
        if compat.takes_user_inputs:
            expected_kwargs["user_inputs"] = spec.get("user_inputs", [{}])
        assert job["kwargs"] == expected_kwargs, key
        assert job["name"] == spec.get("name", wf[spec["workflow_name"]]["description"]), key
        assert job["executor"] == "default", key
        assert job["misfire_grace_time"] == spec.get("misfire_grace_time", 1), key
        assert job["coalesce"] is True and job["max_instances"] == 1, key
        assert job["trigger_class"] == EXPECTED_TRIGGER_CLASS[key], (key, job["trigger_repr"])
        assert datetime.fromisoformat(job["next_run_time"]) > now, (key, job["next_run_time"])

    # the schedule's own timezone travels inside the trigger (never the scheduler host's zone)
    amsterdam = jobs[compat.ids["compat-cron-amsterdam"]]
    assert "timezone='Europe/Amsterdam'" in amsterdam["trigger_repr"]
    assert "day_of_week='mon-fri'" in amsterdam["trigger"]
    assert datetime.fromisoformat(amsterdam["next_run_time"]).utcoffset() in {
        timedelta(hours=1),
        timedelta(hours=2),
    }
    assert "timezone='America/New_York'" in jobs[compat.ids["compat-calendar"]]["trigger_repr"]
    # crontab 1-5 means Monday..Friday; APScheduler numbers Monday 0, so it must not be day_of_week='1-5'
    crontab_job = jobs[compat.ids["compat-crontab"]]
    assert "day_of_week='1-5'" not in crontab_job["trigger"], crontab_job["trigger"]
    assert datetime.fromisoformat(crontab_job["next_run_time"]).weekday() < 5
    # a date fires at its wall-clock time in its zone
    date_spec = compat.specs["compat-date"]["trigger_kwargs"]["run_date"]
    expected_date = datetime.fromisoformat(date_spec).replace(tzinfo=ZoneInfo("Asia/Tokyo"))
    assert datetime.fromisoformat(jobs[compat.ids["compat-date"]]["next_run_time"]) == expected_date
    assert "cron[" in jobs[compat.ids["compat-or"]]["trigger"]
    assert "interval[12:00:00]" in jobs[compat.ids["compat-or"]]["trigger"]


def test_the_graphql_resolver_path_lists_every_schedule_with_its_workflow(compat: Compat) -> None:
    """get_scheduler_tasks (read, filter, sort, enrich, page): what the UI's scheduledTasks query returns."""
    listed = compat.side.run("graphql").result
    tasks = {task["id"]: task for task in listed["tasks"]}
    wf = workflows(compat.url)
    assert listed["total"] == len(tasks) == len(job_rows(compat.url))  # nothing lost on the way
    assert set(tasks) == {*compat.ids.values(), *compat.own_rows}
    for key, schedule_id in compat.ids.items():
        assert tasks[schedule_id]["workflow_id"] == str(wf[compat.specs[key]["workflow_name"]]["workflow_id"]), key
        assert tasks[schedule_id]["name"] == restored(compat)[schedule_id]["name"], key
        assert tasks[schedule_id]["next_run_time"], key


def test_our_bytes_equal_the_row_the_release_wrote_itself(compat: Compat) -> None:
    """The API row this release wrote (its add_job), rebuilt by us for its generation: the same bytes."""
    column, stored = compat.api_row
    state = pickle.loads(stored)  # written by orchestrator-core into our scratch database: trusted
    generation = Generation(compat.venv.major, "this release")
    assert state["func"] == generation.func == compat.venv.func
    assert set(state["kwargs"]) == ({"workflow_name", "user_inputs"} if compat.takes_user_inputs else {"workflow_name"})
    ours = build_job_row(
        job_id=state["id"],
        trigger=state["trigger"],
        workflow_name=state["kwargs"]["workflow_name"],
        user_inputs=state["kwargs"]["user_inputs"] if generation.takes_user_inputs else None,
        name=state["name"],
        next_run_time=state["next_run_time"],
        misfire_grace_time=state["misfire_grace_time"],
        coalesce=state["coalesce"],
        max_instances=state["max_instances"],
        func=generation.func,
    )
    assert ours.job_state == stored
    assert ours.next_run_time == column


def test_the_reconciler_detected_the_release(compat: Compat) -> None:
    assert compat.first.plan is not None
    assert compat.first.plan.orchestrator.startswith(f"orchestrator-core {compat.venv.major}.x (alembic ")


def test_enrich_with_workflow_id_links_every_schedule(compat: Compat) -> None:
    enriched = {task["id"]: task for task in compat.inspected["enriched"]}
    wf = workflows(compat.url)
    assert set(enriched) == {*compat.ids.values(), *compat.own_rows}
    for key, schedule_id in compat.ids.items():
        expected = str(wf[compat.specs[key]["workflow_name"]]["workflow_id"])
        assert enriched[schedule_id]["workflow_id"] == expected, key
        assert enriched[schedule_id]["name"] == restored(compat)[schedule_id]["name"], key


def test_repickling_each_restored_job_gives_the_stored_bytes(compat: Compat) -> None:
    rows = job_rows(compat.url)
    jobs = restored(compat)
    assert set(jobs) == set(rows)
    for schedule_id, (_next, stored) in rows.items():
        repickled = base64.b64decode(jobs[schedule_id]["repickled"])
        assert repickled == stored, schedule_id
        assert stored[:2] == b"\x80\x05", schedule_id  # pickle protocol 5, as APScheduler writes it


def test_next_run_time_column_equals_the_pickled_next_run_time(compat: Compat) -> None:
    rows = job_rows(compat.url)
    jobs = restored(compat)
    for schedule_id, (column, stored) in rows.items():
        state = pickle.loads(stored)  # our own test database: trusted bytes
        assert state["next_run_time"] is not None, schedule_id
        assert column == datetime_to_utc_timestamp(state["next_run_time"]), schedule_id
        assert column == jobs[schedule_id]["next_run_column"], schedule_id


def test_show_schedule_lists_our_jobs_with_source_api(compat: Compat) -> None:
    output = compat.side.run("scheduler", "show-schedule").output
    rows: dict[str, list[str]] = {}
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(f"[{BOX}]", line)[1:-1]]
        if cells and cells[0] in {*compat.ids.values(), compat.api_id}:
            rows[cells[0]] = cells
    assert set(rows) == {*compat.ids.values(), compat.api_id}, output[-4000:]
    jobs = restored(compat)
    for schedule_id, cells in rows.items():
        _id, name, source, next_run, _trigger = cells
        assert source == "API", cells
        assert name == jobs[schedule_id]["name"], cells
        assert next_run.startswith(jobs[schedule_id]["next_run_time"][:10]), cells


def test_a_second_reconcile_touches_nothing(compat: Compat) -> None:
    again = reconcile(compat.directory, compat.url)
    assert again.exit_code == 0, (again.out, again.err)
    assert again.plan is not None and not again.plan.pending, again.out
    # the reconciler reads back every row it wrote (an unreadable one would be "left alone" with a warning)
    assert {c.key: c.warnings for c in again.plan.changes if c.warnings} == {}, again.out
    assert sorted(c.key for c in again.plan.changes) == sorted(compat.specs)
    assert "Nothing to apply." in again.out
    assert job_rows(compat.url) == compat.rows_after_first


def test_scheduler_force_starts_a_process_for_every_schedule(compat: Compat) -> None:
    before = {p["pid"] for p in processes(compat.url)}
    ids = list(compat.ids.values())
    forced = compat.side.run("force-each", *ids)
    result, output = forced.result, forced.output
    assert result["exit_codes"] == dict.fromkeys(ids, 0), output[-4000:]
    for schedule_id in ids:
        assert f"Running Task [{schedule_id}] now..." in output
    started = [p for p in processes(compat.url) if p["pid"] not in before]
    by_workflow = {p["workflow"]: p for p in started}

    for key, spec in compat.specs.items():
        name = spec["workflow_name"]
        process = by_workflow.get(name)
        assert process is not None, (key, [p["workflow"] for p in started], output[-6000:])
        assert process["created_by"] == "SYSTEM" and process["is_task"] is True, process
        assert process["last_status"] == "completed", (key, process, output[-6000:])
    assert len(started) == len(compat.specs)
    # non-default user_inputs reached the workflow's form and its steps (4.x: none are written; the default)
    assert by_workflow[PROBE]["echoed"] == ("from git" if compat.takes_user_inputs else "(no input)")
    # force does not reschedule: the rows are unchanged
    assert job_rows(compat.url) == compat.rows_after_first


def test_running_scheduler_runs_a_schedule_the_reconciler_woke_through_redis(compat: Compat, tmp_path: Path) -> None:
    """DESIGN rule 3: orchestrator-core's `scheduler run` sleeps until its earliest job; the reconciler's
    same-name update on `scheduler:queue:` wakes it, so a 5 s interval schedule applied now fires within 15 s."""
    queue = redis.Redis.from_url(REDIS_URL)
    queue.flushdb()
    log_path = tmp_path / "scheduler.log"
    before = job_rows(compat.url)
    soon_id = schedule_id_for("wake", "compat-every-5s")
    with log_path.open("w") as log:
        scheduler = compat.side.popen(["scheduler", "run"], log)

    def read_log() -> str:
        return ANSI.sub("", log_path.read_text())

    try:
        wait_for(lambda: "Scheduler started" in read_log() and "Next wakeup is due" in read_log(), 120, read_log)
        # asleep until its earliest job, far away: without a wake-up it would miss the one we add now
        wakeups = re.findall(r"Next wakeup is due at .* \(in ([0-9.]+) seconds\)", read_log())
        assert wakeups and float(wakeups[-1]) > 600, read_log()[-3000:]

        every_5s = {
            "key": "compat-every-5s",
            "workflow_name": PROBE,
            "trigger": "interval",
            "trigger_kwargs": {"seconds": 5},
            **({"user_inputs": [{"message": "woken through redis"}]} if compat.takes_user_inputs else {}),
        }
        directory = write_dir(tmp_path / "wake.d", [every_5s])
        # --source: every run of this test applies the same schedule from a temporary directory of its own.
        command = ["reconcile", str(directory), "--db", compat.url, "--namespace", "wake", "--source", "compat-wake"]
        command += ["--redis", REDIS_URL]
        processes_before = {p["pid"] for p in processes(compat.url)}
        cli = our_cli(*command)
        applied_at = datetime.now(UTC)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert f"scheduler woken through Redis (same-name update of {soon_id})" in cli.stdout, cli.stdout

        def fired() -> list[dict[str, Any]]:
            return [p for p in processes(compat.url) if p["pid"] not in processes_before and p["workflow"] == PROBE]

        wait_for(lambda: bool(fired()), 15, read_log)
        process = fired()[0]
        assert process["created_by"] == "SYSTEM"
        assert process["started_at"] - applied_at < timedelta(seconds=15), (process["started_at"], applied_at)
        expected = "woken through redis" if compat.takes_user_inputs else "(no input)"
        wait_for(lambda: any(p["echoed"] == expected for p in fired()), 15, read_log)
        wait_for(lambda: re.search(r'Job ".*" executed successfully', read_log()) is not None, 15, read_log)
        log_text = read_log()
        assert "Updating scheduled task" in log_text  # the wake-up was consumed from scheduler:queue:
        assert re.search(r'Running job ".*" \(scheduled at ', log_text)
        assert "Unable to restore job" not in log_text and "removing it" not in log_text
    finally:
        Orchestrator.stop(scheduler)
        queue.flushdb()
        queue.close()
    assert "Scheduler has been shut down" in ANSI.sub("", log_path.read_text())
    # every other row is exactly as it was; the interval schedule is removed again by its own namespace
    after = job_rows(compat.url)
    assert soon_id in after
    del after[soon_id]
    assert after == before
    empty = tmp_path / "empty.d"
    empty.mkdir()
    removed = our_cli(
        "reconcile", str(empty), "--db", compat.url, "--namespace", "wake", "--source", "compat-wake", "--allow-empty"
    )
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert job_rows(compat.url) == before


def our_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m reconciler ARGS` in the project's own venv (no orchestrator-core in it)."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env or {k: v for k, v in os.environ.items() if k not in {"CACHE_URI", "RECONCILER_NAMESPACE"}},
    )


def test_updates_are_read_by_orchestrator_core(compat: Compat, tmp_path: Path) -> None:
    """Changed name / user_inputs keep next_run_time; a changed trigger gets a new one (DESIGN rule 6);
    orchestrator-core restores the rewritten rows byte for byte, and still leaves its own row alone."""
    before = job_rows(compat.url)
    specs = [dict(spec) for spec in compat.specs.values()]
    changed = {spec["key"]: spec for spec in specs}
    changed["compat-interval"]["name"] = "Compat interval, renamed in git"
    if compat.takes_user_inputs:
        changed["compat-or"]["user_inputs"] = [{"message": "changed in git"}]
    else:  # 4.x rows carry no user_inputs: change a job option instead
        changed["compat-or"]["misfire_grace_time"] = 30
    cron = changed["compat-cron-amsterdam"]
    cron["trigger_kwargs"] = {**cron["trigger_kwargs"], "hour": (cron["trigger_kwargs"]["hour"] + 1) % 24}
    outcome = reconcile(write_dir(tmp_path / "changed.d", specs), compat.url)
    assert outcome.exit_code == 0, (outcome.out, outcome.err)
    assert outcome.plan is not None
    assert {c.key for c in outcome.plan.pending} == {"compat-interval", "compat-or", "compat-cron-amsterdam"}, (
        outcome.out
    )

    after = job_rows(compat.url)
    ids = compat.ids
    assert after[compat.api_id] == compat.api_row
    for own in compat.own_rows:  # every row the release wrote itself survives our applies
        assert own in after and pickle.loads(after[own][1])["func"] == pickle.loads(compat.own_rows[own][1])["func"]
    for key in ("compat-date", "compat-calendar", "compat-crontab"):
        assert after[ids[key]] == before[ids[key]], key
    for key in ("compat-interval", "compat-or"):
        assert after[ids[key]][1] != before[ids[key]][1], key
        assert after[ids[key]][0] == before[ids[key]][0], key  # next_run_time (the phase) kept
    assert after[ids["compat-cron-amsterdam"]][0] != before[ids["compat-cron-amsterdam"]][0]

    inspected = compat.side.run("inspect").result
    jobs = {job["id"]: job for job in inspected["jobs"]}
    assert set(jobs) == set(after)
    for schedule_id, (column, stored) in after.items():
        assert base64.b64decode(jobs[schedule_id]["repickled"]) == stored, schedule_id
        assert column == jobs[schedule_id]["next_run_column"], schedule_id
    assert jobs[ids["compat-interval"]]["name"] == "Compat interval, renamed in git"
    if compat.takes_user_inputs:
        assert jobs[ids["compat-or"]]["kwargs"]["user_inputs"] == [{"message": "changed in git"}]
    else:
        assert jobs[ids["compat-or"]]["kwargs"] == {"workflow_name": PROBE}
        assert jobs[ids["compat-or"]]["misfire_grace_time"] == 30
    assert f"hour='{cron['trigger_kwargs']['hour']}'" in jobs[ids["compat-cron-amsterdam"]]["trigger"]


def wait_for(condition: Callable[[], bool], timeout: float, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s; scheduler log:\n{log()[-6000:]}")


def test_force_with_the_orchestrator_starter_starts_a_real_process(compat: Compat) -> None:
    # `schedules force --starter orchestrator` outside an orchestrator main.py: it configures orchestrator-core
    # from its own settings (DATABASE_URI, ...) and calls its start_process, as its scheduler task does.
    before = {p["pid"] for p in processes(compat.url)}
    rows_before = job_rows(compat.url)
    # The reconciler runs inside the release's venv here (PYTHONPATH=repo): a deployment that installed both.
    proc = compat.side.reconciler("force", "compat-interval", "--db", compat.url, "--starter", "orchestrator")
    output = proc.output
    assert proc.returncode == 0, output[-4000:]
    assert "Started task_clean_up_tasks for compat-interval" in proc.stdout, output[-4000:]
    started = [p for p in processes(compat.url) if p["pid"] not in before]
    assert [p["workflow"] for p in started] == ["task_clean_up_tasks"], started
    assert started[0]["created_by"] == "SYSTEM" and started[0]["is_task"] is True, started
    assert str(started[0]["pid"]) in proc.stdout  # the process id force reports is the one that ran
    # force never reschedules
    assert job_rows(compat.url) == rows_before


def test_force_with_the_orchestrator_starter_fails_with_one_line_for_an_unregistered_workflow(
    compat: Compat,
) -> None:
    # The probe task is registered only in the project's own code (tests/orchestrator_side.py), which this
    # process never imports: orchestrator-core refuses, and force says so in one line with exit 1.
    proc = compat.side.reconciler("force", "compat-or", "--db", compat.url, "--starter", "orchestrator")
    assert proc.returncode == 1, proc.output
    errors = [line for line in proc.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "task_reconciler_probe" in errors[0], proc.output[-3000:]
    assert "Traceback" not in proc.output
