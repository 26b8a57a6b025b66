"""orchestrator-core compatibility, proven by orchestrator-core 5.5.0 itself (DESIGN.md §4, §5).

One scratch PostgreSQL database for the module, migrated by orchestrator-core's own alembic migrations
(to heads when the `vector` extension is available, else to fbc16e410bc6, where the schedule tables are
final; orchestrator-core 5.5.0's `start_process` also writes `processes.note`, so on that path the helper
also runs that column's own migration, be3163f7c49d's upgrade()). Task workflows our YAML uses that the
migration did not seed are inserted with orchestrator-core's `create_task` helper. orchestrator-core
writes one schedule itself, through the code its scheduler runs for POST /api/schedules
(`_add_scheduled_task`: APScheduler's add_job plus the linker row). Then the reconciler applies one
schedule per trigger type. After that, orchestrator-core's own code reads, starts and runs what we wrote:

- `get_all_scheduler_tasks()` restores every job (it deletes jobs it cannot restore); re-pickling each
  restored job (`pickle.dumps(job.__getstate__(), HIGHEST_PROTOCOL)`) gives the stored bytes exactly;
- `enrich_with_workflow_id()` (GraphQL / UI) links each to its workflow;
- `scheduler show-schedule` lists them with source API;
- `scheduler force ID` starts a process for each of them (rows in `processes`; user_inputs arrive);
- a running `scheduler run`, woken through Redis by the reconciler, runs a schedule due 4-5 s later;
- rows the reconciler rewrites (name, user_inputs, trigger) are restored byte for byte as well.

Everything orchestrator-core does runs in a subprocess (tests/orchestrator_side.py): it reads its
settings (DATABASE_URI, CACHE_URI, ...) at import time.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import re
import signal
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
from reconciler.plan import PlanSettings, schedule_id_for
from tests.conftest import create_scratch_pg, drop_scratch_pg

pytestmark = [pytest.mark.postgres, pytest.mark.orchestrator]

REPO = Path(__file__).resolve().parent.parent
SIDE = Path(__file__).resolve().with_name("orchestrator_side.py")
REDIS_DB = int(os.environ.get("RECONCILER_TEST_REDIS_DB", "13"))
REDIS_URL = f"{os.environ.get('RECONCILER_TEST_REDIS', 'redis://127.0.0.1:6379')}/{REDIS_DB}"
ORCHESTRATOR_FUNC = "orchestrator.core.schedules.service:run_start_workflow_scheduler_task"
FINAL_SCHEDULE_REVISION = "fbc16e410bc6"
PROBE = "task_reconciler_probe"  # a project task, defined in tests/orchestrator_side.py
TASK_DESCRIPTIONS = {  # for tasks the migration may not have seeded (as their own migrations describe them)
    PROBE: "Reconciler probe",
    "task_validate_awaiting_callbacks": "Fail callback steps that exceeded their timeout",
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BOX = "│┃"


# --- orchestrator-core in a subprocess ---------------------------------------------------------------


def side_env(db_url: str, project: Path) -> dict[str, str]:
    """orchestrator-core's settings, as a deployment sets them. `project` holds the project's en-GB.json
    (the fourth step of registering a task; core's task_validate_products checks it)."""
    project.mkdir(parents=True, exist_ok=True)
    translations = {"workflow": {PROBE: TASK_DESCRIPTIONS[PROBE]}}
    (project / "en-GB.json").write_text(json.dumps(translations))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(
        DATABASE_URI=db_url,
        TRANSLATIONS_DIR=str(project),
        CACHE_URI=REDIS_URL,
        EXECUTOR="threadpool",
        LOG_LEVEL="DEBUG",
        COLUMNS="400",  # rich tables (show-schedule) unwrapped
        TERM="dumb",
        PYTHONUNBUFFERED="1",
    )
    return env


def orchestrator(env: dict[str, str], *args: str, timeout: float = 120) -> tuple[Any, str]:
    """Run tests/orchestrator_side.py; returns its `RESULT` value (or None) and its whole output."""
    proc = subprocess.run(
        [sys.executable, str(SIDE), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = ANSI.sub("", proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"orchestrator_side {args[0]} exited {proc.returncode}:\n{output[-6000:]}"
    results = [line[len("RESULT ") :] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    return (json.loads(results[-1]) if results else None), output


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


def compat_schedules(now: datetime) -> list[dict[str, Any]]:
    """One schedule per trigger type orchestrator-core must read, on distinct core tasks."""
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
            "workflow_name": "task_validate_awaiting_callbacks",
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
            "user_inputs": [{"message": "from git"}],
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
    return run(
        ReconcileOptions(
            directory=directory, db_url=db_url, settings=PlanSettings(), apply=ApplySettings(redis_url=None)
        )
    )


# --- the module's database ---------------------------------------------------------------------------------


@dataclass
class Compat:
    url: str
    env: dict[str, str]  # orchestrator-core's settings for its subprocesses
    migrated: dict[str, Any]
    registered: dict[str, str]
    api_id: str
    api_row: tuple[float | None, bytes]
    api_links: set[tuple[str, str]]
    specs: dict[str, dict[str, Any]]
    ids: dict[str, str]  # key -> schedule id
    directory: Path
    first: Outcome
    rows_after_first: dict[str, tuple[float | None, bytes]]
    inspected: dict[str, Any]


@pytest.fixture(scope="module")
def compat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compat]:
    url = create_scratch_pg()
    env = side_env(url, tmp_path_factory.mktemp("project"))
    try:
        migrated, _ = orchestrator(env, "migrate")
        now = datetime.now(UTC)
        schedules = compat_schedules(now)
        seeded = workflows(url)
        missing = {s["workflow_name"] for s in schedules} - set(seeded)
        registered: dict[str, str] = {}
        if missing:
            result, _ = orchestrator(
                env, "register-tasks", json.dumps({name: TASK_DESCRIPTIONS[name] for name in sorted(missing)})
            )
            registered = result["workflow_ids"]

        payload = {
            "name": "Made through the API",
            "workflow_name": "task_clean_up_tasks",
            "trigger": "interval",
            "trigger_kwargs": {"hours": 2},
        }
        added, _ = orchestrator(env, "add-api-schedule", json.dumps(payload))
        assert len(added["ids"]) == 1, added
        api_id = added["ids"][0]
        api_row = job_rows(url)[api_id]
        api_links = {link for link in link_rows(url) if link[1] == api_id}

        directory = write_dir(tmp_path_factory.mktemp("compat") / "schedules.d", schedules)
        first = reconcile(directory, url)
        rows_after_first = job_rows(url)
        inspected, _ = orchestrator(env, "inspect")
        yield Compat(
            url=url,
            env=env,
            migrated=migrated,
            registered=registered,
            api_id=api_id,
            api_row=api_row,
            api_links=api_links,
            specs={s["key"]: s for s in schedules},
            ids={s["key"]: schedule_id_for("default", s["key"]) for s in schedules},
            directory=directory,
            first=first,
            rows_after_first=rows_after_first,
            inspected=inspected,
        )
    finally:
        drop_scratch_pg(url)


def restored(compat: Compat) -> dict[str, dict[str, Any]]:
    return {job["id"]: job for job in compat.inspected["jobs"]}


# --- the tests ----------------------------------------------------------------------------------------------


def test_database_migrated_by_orchestrator_core_and_tasks_registered(compat: Compat) -> None:
    if vector_available(compat.url):
        assert compat.migrated["vector"] is True
        assert sorted(compat.migrated["revisions"]) == sorted(compat.migrated["heads"])
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
    assert set(unmanaged) == {compat.api_id}
    assert unmanaged[compat.api_id].source == "api"
    assert unmanaged[compat.api_id].workflow_name == "task_clean_up_tasks"
    assert "Verified: the database now matches the files." in outcome.out

    rows = compat.rows_after_first
    assert set(rows) == {*compat.ids.values(), compat.api_id}
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
    assert set(jobs) == set(job_rows(compat.url)) == {*compat.ids.values(), compat.api_id}
    wf = workflows(compat.url)
    now = datetime.now(UTC)
    for key, schedule_id in compat.ids.items():
        spec, job = compat.specs[key], jobs[schedule_id]
        assert job["func"] == ORCHESTRATOR_FUNC and job["func_ref"] == ORCHESTRATOR_FUNC, key
        assert job["args"] == [], key
        assert job["kwargs"] == {
            "workflow_name": spec["workflow_name"],
            "user_inputs": spec.get("user_inputs", [{}]),
        }, key
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


def test_enrich_with_workflow_id_links_every_schedule(compat: Compat) -> None:
    enriched = {task["id"]: task for task in compat.inspected["enriched"]}
    wf = workflows(compat.url)
    assert set(enriched) == {*compat.ids.values(), compat.api_id}
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
    _, output = orchestrator(compat.env, "scheduler", "show-schedule")
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
    result, output = orchestrator(compat.env, "force-each", *ids)
    assert result["exit_codes"] == dict.fromkeys(ids, 0), output[-4000:]
    for schedule_id in ids:
        assert f"Running Task [{schedule_id}] now..." in output
    started = [p for p in processes(compat.url) if p["pid"] not in before]
    by_workflow = {p["workflow"]: p for p in started}

    for key, spec in compat.specs.items():
        name = spec["workflow_name"]
        if name == "task_validate_awaiting_callbacks":
            # its run predicate refuses to start on a database without awaiting callbacks: orchestrator-core
            # read the job, called start_process for it and logged the skip
            assert name not in by_workflow
            assert re.search(r"Skipping scheduled task -> start predicate not satisfied.*" + name, output), key
            continue
        process = by_workflow.get(name)
        assert process is not None, (key, [p["workflow"] for p in started], output[-6000:])
        assert process["created_by"] == "SYSTEM" and process["is_task"] is True, process
        assert process["last_status"] == "completed", (key, process, output[-6000:])
    assert len(started) == len(compat.specs) - 1
    # non-default user_inputs reached the workflow's form and its steps
    assert by_workflow[PROBE]["echoed"] == "from git"
    # force does not reschedule: the rows are unchanged
    assert job_rows(compat.url) == compat.rows_after_first


def test_running_scheduler_runs_a_schedule_the_reconciler_woke_through_redis(compat: Compat, tmp_path: Path) -> None:
    """DESIGN rule 3: orchestrator-core's `scheduler run` sleeps until its earliest job; the reconciler's
    same-name update on `scheduler:queue:` wakes it, so a schedule written 4-5 s before it is due runs."""
    queue = redis.Redis.from_url(REDIS_URL)
    queue.flushdb()
    log_path = tmp_path / "scheduler.log"
    before = job_rows(compat.url)
    with log_path.open("w") as log:
        scheduler = subprocess.Popen(
            [sys.executable, str(SIDE), "scheduler", "run"],
            cwd=REPO,
            env=compat.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def read_log() -> str:
        return ANSI.sub("", log_path.read_text())

    try:
        wait_for(lambda: "Scheduler started" in read_log() and "Next wakeup is due" in read_log(), 60, read_log)
        # asleep until its earliest job, far away: without a wake-up it would miss the one we add now
        wakeups = re.findall(r"Next wakeup is due at .* \(in ([0-9.]+) seconds\)", read_log())
        assert wakeups and float(wakeups[-1]) > 600, read_log()[-3000:]

        run_date = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
        soon = {
            "key": "compat-due-soon",
            "workflow_name": PROBE,
            "trigger": "date",
            "trigger_kwargs": {"run_date": run_date.replace(tzinfo=None).isoformat()},
            "user_inputs": [{"message": "woken through redis"}],
        }
        directory = write_dir(tmp_path / "wake.d", [soon])
        command = ["reconcile", str(directory), "--db", compat.url, "--namespace", "wake", "--redis", REDIS_URL]
        cli = subprocess.run(
            [sys.executable, "-m", "reconciler", *command],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if k not in {"CACHE_URI", "RECONCILER_NAMESPACE"}},
        )
        assert cli.returncode == 0, cli.stdout + cli.stderr
        soon_id = schedule_id_for("wake", "compat-due-soon")
        assert f"scheduler woken through Redis (same-name update of {soon_id})" in cli.stdout, cli.stdout
        assert datetime.now(UTC) < run_date, "the reconcile took too long for this test to mean anything"

        def ran() -> bool:
            return any(p["echoed"] == "woken through redis" for p in processes(compat.url))

        wait_for(ran, 30, read_log)
        process = next(p for p in processes(compat.url) if p["echoed"] == "woken through redis")
        assert process["workflow"] == PROBE and process["created_by"] == "SYSTEM"
        assert process["started_at"] >= run_date, (process["started_at"], run_date)
        wait_for(lambda: f"Removed job {soon_id}" in read_log(), 10, read_log)
        log_text = read_log()
        assert "Updating scheduled task" in log_text  # the wake-up was consumed from scheduler:queue:
        assert re.search(r'Running job ".*" \(scheduled at ', log_text)
        assert re.search(r'Job ".*" executed successfully', log_text)
        assert "was missed by" not in log_text
        # a fired date job removes itself (DESIGN rule 7); every other row is exactly as it was
        after = job_rows(compat.url)
        assert soon_id not in after
        assert after == before
    finally:
        if scheduler.poll() is None:
            scheduler.send_signal(signal.SIGTERM)
            try:
                scheduler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                scheduler.kill()
                scheduler.wait()
        queue.flushdb()
        queue.close()
    assert "Scheduler has been shut down" in ANSI.sub("", log_path.read_text())


def test_updates_are_read_by_orchestrator_core(compat: Compat, tmp_path: Path) -> None:
    """Changed name / user_inputs keep next_run_time; a changed trigger gets a new one (DESIGN rule 6);
    orchestrator-core restores the rewritten rows byte for byte, and still leaves its own row alone."""
    before = job_rows(compat.url)
    specs = [dict(spec) for spec in compat.specs.values()]
    changed = {spec["key"]: spec for spec in specs}
    changed["compat-interval"]["name"] = "Compat interval, renamed in git"
    changed["compat-or"]["user_inputs"] = [{"message": "changed in git"}]
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
    for key in ("compat-date", "compat-calendar", "compat-crontab"):
        assert after[ids[key]] == before[ids[key]], key
    for key in ("compat-interval", "compat-or"):
        assert after[ids[key]][1] != before[ids[key]][1], key
        assert after[ids[key]][0] == before[ids[key]][0], key  # next_run_time (the phase) kept
    assert after[ids["compat-cron-amsterdam"]][0] != before[ids["compat-cron-amsterdam"]][0]

    inspected, _ = orchestrator(compat.env, "inspect")
    jobs = {job["id"]: job for job in inspected["jobs"]}
    assert set(jobs) == set(after)
    for schedule_id, (column, stored) in after.items():
        assert base64.b64decode(jobs[schedule_id]["repickled"]) == stored, schedule_id
        assert column == jobs[schedule_id]["next_run_column"], schedule_id
    assert jobs[ids["compat-interval"]]["name"] == "Compat interval, renamed in git"
    assert jobs[ids["compat-or"]]["kwargs"]["user_inputs"] == [{"message": "changed in git"}]
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
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconciler",
            "force",
            "compat-interval",
            "--db",
            compat.url,
            "--starter",
            "orchestrator",
        ],
        cwd=REPO,
        env=compat.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = ANSI.sub("", proc.stdout + proc.stderr)
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
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler", "force", "compat-or", "--db", compat.url, "--starter", "orchestrator"],
        cwd=REPO,
        env=compat.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "task_reconciler_probe" in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
