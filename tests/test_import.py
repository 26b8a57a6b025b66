"""`schedules import`: API-created jobs → imported.yaml → the next reconcile adopts them in place.

Two variants. The cheap one (SQLite and PostgreSQL) writes the "API" rows with our own
`jobstate.build_job_row`, one per trigger type. The real one lets orchestrator-core 5.5.0 itself write
them: a scratch PostgreSQL database migrated by orchestrator-core's own alembic migrations, and jobs
added by the code its scheduler runs for ``POST /api/schedules`` (`_add_scheduled_task` under
`get_scheduler(paused=True)`, through tests/orchestrator_side.py in a subprocess). In both, the import
must make reconcile report ``adopt`` for every imported job, keep each row (id, next_run_time, bytes),
and leave decorator and unreadable rows alone; a second reconcile is a no-op.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select, text
from typer.testing import CliRunner

from reconciler import store, triggers
from reconciler.cli import app
from reconciler.commands import import_jobs as importer
from reconciler.commands.load_initial import Result
from reconciler.commands.validate import load_desired
from reconciler.jobstate import build_job_row, load_job_state
from reconciler.plan import Action
from tests.conftest import init_compatible
from tests.orchestrator_env import LATEST, Orchestrator, migrated_database, orchestrator_venv
from tests.test_reconcile import jobs, links, reconcile, write_schedules

REPO = Path(__file__).resolve().parent.parent

INTERVAL_ID = "11111111-1111-4111-8111-111111111111"
CRON_ID = "22222222-2222-4222-8222-222222222222"
DATE_ID = "33333333-3333-4333-8333-333333333333"
CALENDAR_ID = "44444444-4444-4444-8444-444444444444"
TWIN_ID = "55555555-5555-4555-8555-555555555555"
DECORATOR_ID = "nightly-sync"
GARBAGE_ID = "garbage"


# --------------------------------------------------------------------------------------- rows of our own


def _row(job_id: str, trigger: BaseTrigger, workflow: str, name: str, now: datetime, **options: Any) -> tuple[Any, str]:
    first = trigger.get_next_fire_time(None, now)
    return build_job_row(
        job_id=job_id,
        trigger=trigger,
        workflow_name=workflow,
        user_inputs=options.pop("user_inputs", [{}]),
        name=name,
        next_run_time=first,
        **options,
    ), workflow


def add_api_rows(db: str, now: datetime) -> None:
    """API-style rows (orchestrator's func, uuid4-style ids), one per trigger type, plus two foreign ones.

    The interval has an odd phase (its start_date is not "now + interval"), the cron a zone and non-default
    inputs and options, the date job has no linker row (the API's linker insert can fail on its own), the
    calendarinterval a zone of its own; a second job has the cron job's name, so keys must be made unique.
    """
    engine = init_compatible(db)
    start = now - timedelta(minutes=17, seconds=23, microseconds=500_000)
    rows = [
        _row(INTERVAL_ID, IntervalTrigger(hours=2, start_date=start, timezone=UTC), "task_clean_up_tasks",
             "Clean up", now),
        _row(CRON_ID, CronTrigger(day_of_week="mon-fri", hour=6, minute=30, timezone=ZoneInfo("Europe/Amsterdam")),
             "task_validate_products", "Validate products: weekdays", now,
             user_inputs=[{"message": "hi"}], misfire_grace_time=30),
        _row(DATE_ID, DateTrigger(run_date=(now + timedelta(days=10)).astimezone(ZoneInfo("Asia/Tokyo"))
                                  .replace(microsecond=0)), "task_resume_workflows", "Resume once", now),
        _row(CALENDAR_ID, CalendarIntervalTrigger(months=1, hour=4, start_date=date(2030, 1, 31),
                                                  timezone=ZoneInfo("Europe/Berlin")),
             "task_validate_subscriptions", "Monthly", now),
        _row(TWIN_ID, CronTrigger(hour=23, timezone=UTC), "task_validate_products", "Validate products: weekdays", now,
             coalesce=False, max_instances=2),
    ]  # fmt: skip
    decorator, _ = _row(DECORATOR_ID, CronTrigger(hour=1, timezone=UTC), "", "nightly", now, func="mysched:nightly")
    with store.write_transaction(engine) as conn:
        workflow_ids = {w.name: w.workflow_id for w in store.read_workflows(conn)}
        store.insert_jobs(
            conn,
            [row for row, _ in rows] + [decorator],
            [(workflow_ids[wf], row.id) for row, wf in rows if row.id != DATE_ID],
        )
        conn.execute(store.apscheduler_jobs.insert().values(id=GARBAGE_ID, next_run_time=None, job_state=b"\x80\x05x"))
    engine.dispose()


def import_into(tmp_path: Path, db: str, **options: Any) -> Result:
    return importer.run(Path("schedules.d"), db, cwd=tmp_path, **options)


def report(result: Result) -> list[str]:
    return [str(line) for line in result.lines]


def ledger_rows(db: str) -> dict[str, str]:
    engine = store.connect(db)
    with engine.connect() as conn:
        rows = {r.key: r.schedule_id for r in conn.execute(select(store.ledger))}
    engine.dispose()
    return rows


# --------------------------------------------------------------------------------------- the round trip


def test_import_then_reconcile_adopts_every_job_in_place(db_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    add_api_rows(db_url, now)
    before = jobs(db_url)

    result = import_into(tmp_path, db_url)
    assert result.exit_code == 0, report(result)
    target = tmp_path / "schedules.d" / "imported.yaml"
    doc = yaml.safe_load(target.read_text())
    by_id = {s["schedule_id"]: s for s in doc["schedules"]}
    assert sorted(by_id) == sorted([INTERVAL_ID, CRON_ID, DATE_ID, CALENDAR_ID, TWIN_ID])
    assert [s["key"] for s in doc["schedules"]] == sorted(s["key"] for s in doc["schedules"])  # sorted by key

    # Fields: from kwargs and the trigger; options only where they differ from orchestrator-core's defaults.
    interval = by_id[INTERVAL_ID]
    assert interval == {
        "key": "clean-up",
        "schedule_id": INTERVAL_ID,
        "workflow_name": "task_clean_up_tasks",
        "name": "Clean up",
        "trigger": "interval",
        "trigger_kwargs": {"hours": 2, "start_date": interval["trigger_kwargs"]["start_date"]},
        "timezone": "UTC",
    }
    assert datetime.fromisoformat(interval["trigger_kwargs"]["start_date"]) == now - timedelta(
        minutes=17, seconds=23, microseconds=500_000
    )  # the phase is kept
    assert by_id[CRON_ID] == {
        "key": "validate-products-weekdays",
        "schedule_id": CRON_ID,
        "workflow_name": "task_validate_products",
        "name": "Validate products: weekdays",
        "trigger": "cron",
        "trigger_kwargs": {"day_of_week": "mon-fri", "hour": 6, "minute": 30},
        "timezone": "Europe/Amsterdam",
        "user_inputs": [{"message": "hi"}],
        "misfire_grace_time": 30,
    }
    twin = by_id[TWIN_ID]
    assert twin["key"] == "validate-products-weekdays-2"  # same name: a unique key
    assert (twin["coalesce"], twin["max_instances"]) == (False, 2)
    assert by_id[DATE_ID]["timezone"] == "Asia/Tokyo" and by_id[DATE_ID]["trigger"] == "date"
    assert by_id[CALENDAR_ID]["trigger_kwargs"] == {"months": 1, "hour": 4, "start_date": "2030-01-31"}
    assert by_id[CALENDAR_ID]["timezone"] == "Europe/Berlin"

    # The file: schema modeline, a comment naming each job's origin; it passes validate.
    text_ = target.read_text()
    assert text_.startswith("# yaml-language-server: $schema=")
    for job_id in by_id:
        assert f"  # imported from apscheduler_jobs id={job_id}\n" in text_
    assert "no linker row in workflows_apscheduler_jobs" in text_
    loaded = load_desired(tmp_path / "schedules.d", now=now)
    assert loaded.ok, [str(p) for p in loaded.problems]

    # Unreadable rows: one line with the reason, not in the file. A decorator's row: a TODO stub that takes it
    # over (`replaces:`) once its workflow is filled in — the row names a function, not a workflow.
    lines = report(result)
    assert any(
        line.startswith(f"decorator job {DECORATOR_ID} (func mysched:nightly): written as a TODO stub with `replaces:`")
        for line in lines
    )
    assert any(line.startswith(f"not imported: job {GARBAGE_ID}: unreadable job_state") for line in lines)
    assert GARBAGE_ID not in text_
    stub = [line for line in text_.splitlines() if "replaces:" in line]
    assert len(stub) == 1 and stub[0].startswith("  #") and DECORATOR_ID in stub[0], stub

    # The next reconcile adopts each one: ledger rows, no delete + create, nothing rewritten.
    d = tmp_path / "schedules.d"
    planned = reconcile(d, db_url, dry_run=True, fmt="json")
    assert planned.exit_code == 0, planned.err
    body = json.loads(planned.out[0])
    assert {c["key"]: c["action"] for c in body["changes"]} == {s["key"]: "adopt" for s in doc["schedules"]}
    assert {u["id"]: u["source"] for u in body["unmanaged"]} == {DECORATOR_ID: "decorator", GARBAGE_ID: "unreadable"}

    applied = reconcile(d, db_url)
    assert applied.exit_code == 0, (applied.out, applied.err)
    assert applied.plan is not None
    assert {c.action for c in applied.plan.changes} == {Action.ADOPT}
    assert jobs(db_url) == before  # same ids, same next_run_time, same bytes: adopted in place
    assert ledger_rows(db_url) == {s["key"]: s["schedule_id"] for s in doc["schedules"]}
    assert DATE_ID in {sid for _, sid in links(db_url)}  # the missing linker row was added

    again = reconcile(d, db_url, dry_run=True, detailed_exitcode=True)
    assert again.exit_code == 0, again.out  # nothing left to do

    # Importing again changes nothing: every entry is now owned and carried over as written.
    second = import_into(tmp_path, db_url, check=True)
    assert second.exit_code == 0, report(second)
    assert "unchanged schedules.d/imported.yaml" in report(second)
    assert target.read_text() == text_


def test_output_is_deterministic_and_guarded(db_url: str, tmp_path: Path) -> None:
    add_api_rows(db_url, datetime.now(UTC))
    target = tmp_path / "schedules.d" / "imported.yaml"

    checked = import_into(tmp_path, db_url, check=True)
    assert checked.exit_code == 1 and not target.exists()  # --check writes nothing
    assert "would create schedules.d/imported.yaml" in report(checked)

    assert import_into(tmp_path, db_url).exit_code == 0
    first = target.read_bytes()
    assert import_into(tmp_path, db_url).exit_code == 0
    assert target.read_bytes() == first
    assert import_into(tmp_path, db_url, check=True).exit_code == 0

    target.write_text(first.decode().replace("name: Clean up", "name: Tidy"))
    edited = target.read_bytes()
    refused = import_into(tmp_path, db_url)
    assert refused.exit_code == 1
    assert target.read_bytes() == edited  # not overwritten without --force
    assert any("not overwritten (use --force)" in line for line in report(refused))
    assert import_into(tmp_path, db_url, check=True).exit_code == 1
    forced = import_into(tmp_path, db_url, force=True)
    assert forced.exit_code == 0
    assert target.read_bytes() == first  # not adopted yet: written again from the database


def test_keys_avoid_the_directory_and_owned_jobs_are_not_imported(db_url: str, tmp_path: Path) -> None:
    add_api_rows(db_url, datetime.now(UTC))
    d = tmp_path / "schedules.d"
    # A hand-written file already uses the key `clean-up` and already declares the calendar job.
    write_schedules(
        d,
        json.dumps({"key": "clean-up", "workflow_name": "task_clean_up_tasks", "trigger": "cron",
                    "trigger_kwargs": {"hour": 5}}),
        json.dumps({"key": "monthly-by-hand", "schedule_id": CALENDAR_ID,
                    "workflow_name": "task_validate_subscriptions", "trigger": "calendarinterval",
                    "trigger_kwargs": {"months": 1, "hour": 4, "start_date": "2030-01-31"},
                    "timezone": "Europe/Berlin"}),
    )  # fmt: skip
    assert reconcile(d, db_url).exit_code == 0  # the calendar job is now owned by `monthly-by-hand`
    result = import_into(tmp_path, db_url)
    assert result.exit_code == 0, report(result)
    doc = yaml.safe_load((d / "imported.yaml").read_text())
    keys = {s["schedule_id"]: s["key"] for s in doc["schedules"]}
    assert keys[INTERVAL_ID] == "clean-up-2"
    assert CALENDAR_ID not in keys
    assert "2 already managed by reconciler" in report(result)[-1]  # clean-up's own job and the calendar one
    assert load_desired(d, now=datetime.now(UTC)).ok


def test_a_declared_but_unreconciled_job_is_not_imported_twice(db_url: str, tmp_path: Path) -> None:
    add_api_rows(db_url, datetime.now(UTC))
    d = tmp_path / "schedules.d"
    write_schedules(
        d,
        json.dumps({"key": "mine", "schedule_id": INTERVAL_ID, "workflow_name": "task_clean_up_tasks",
                    "trigger": "interval", "trigger_kwargs": {"hours": 2}}),
        name="hand.yaml",
    )  # fmt: skip
    result = import_into(tmp_path, db_url)
    assert f"not imported: job {INTERVAL_ID}: already declared at schedules.d/hand.yaml:2 (key mine)" in report(result)
    assert INTERVAL_ID not in (d / "imported.yaml").read_text()


def test_jobs_a_file_cannot_express_are_reported_not_imported(db_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    engine = init_compatible(db_url)
    hourly = IntervalTrigger(hours=1, start_date=now, timezone=UTC)
    past = DateTrigger(run_date=now - timedelta(hours=1))
    rows = [
        build_job_row(job_id="no-workflow", trigger=hourly, workflow_name="task_gone", user_inputs=[{}], name="A",
                      next_run_time=now + timedelta(hours=1)),
        build_job_row(job_id="past-date", trigger=past, workflow_name="task_clean_up_tasks", user_inputs=[{}],
                      name="B", next_run_time=past.run_date),
        build_job_row(job_id="extra-kwargs", trigger=hourly, workflow_name="task_clean_up_tasks", user_inputs=[{}],
                      name="C", next_run_time=now + timedelta(hours=1), extra_kwargs={"dry": True}),
        build_job_row(job_id="no-misfire-limit", trigger=hourly, workflow_name="task_clean_up_tasks",
                      user_inputs=[{}], name="D", next_run_time=now + timedelta(hours=1), misfire_grace_time=None),
    ]  # fmt: skip
    with store.write_transaction(engine) as conn:
        store.insert_jobs(conn, rows, [])
    engine.dispose()
    before = jobs(db_url)
    result = import_into(tmp_path, db_url)
    assert result.exit_code == 0
    lines = report(result)
    for expected in (
        "not imported: job no-workflow: its workflow 'task_gone' is not in the workflows table; left alone",
        "not imported: job past-date: its trigger would not validate: run_date",
        "not imported: job extra-kwargs: its kwargs also pass dry, which a schedule cannot; left alone",
        "not imported: job no-misfire-limit: misfire_grace_time is None",
    ):
        assert any(line.startswith(expected) for line in lines), (expected, lines)
    assert "nothing to import; schedules.d/imported.yaml not written" in lines
    assert not (tmp_path / "schedules.d").exists()
    assert jobs(db_url) == before


def test_a_paused_job_is_imported_and_stays_paused(db_url: str, tmp_path: Path) -> None:
    engine = init_compatible(db_url)
    hourly = IntervalTrigger(hours=1, start_date=datetime(2026, 1, 1, 0, 15, tzinfo=UTC), timezone=UTC)
    paused = build_job_row(job_id=INTERVAL_ID, trigger=hourly, workflow_name="task_clean_up_tasks",
                           user_inputs=[{}], name="Paused", next_run_time=None)  # fmt: skip
    with store.write_transaction(engine) as conn:
        store.insert_jobs(conn, [paused], [])
    engine.dispose()
    result = import_into(tmp_path, db_url)
    assert result.exit_code == 0
    assert any(line.startswith("warning: paused: the job is paused") for line in report(result))
    applied = reconcile(tmp_path / "schedules.d", db_url)
    assert applied.exit_code == 0, applied.err
    assert jobs(db_url) == {INTERVAL_ID: (None, paused.job_state)}
    assert reconcile(tmp_path / "schedules.d", db_url, dry_run=True, detailed_exitcode=True).exit_code == 0


def test_a_database_without_schedule_tables_is_an_error(tmp_path: Path) -> None:
    result = import_into(tmp_path, f"sqlite:///{tmp_path / 'missing.db'}")
    assert result.exit_code == 1
    assert "has no orchestrator-core schedule tables" in report(result)[0]
    assert not (tmp_path / "missing.db").exists()  # read-only: not even created


def test_import_never_writes_to_the_database(pg_url: str, tmp_path: Path) -> None:
    # The connection is read-only: a role with SELECT alone is enough (checked by the server itself).
    add_api_rows(pg_url, datetime.now(UTC))
    admin = store.connect(pg_url)
    role = f"ro_{uuid.uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"'))
    try:
        url = pg_url.replace("postgres@", f"{role}@", 1)
        result = import_into(tmp_path, url)
        assert result.exit_code == 0, report(result)
        assert "5 imported" in report(result)[-1]
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_cli_import_prints_the_report_and_exits(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'schedules.db'}"
    add_api_rows(db, datetime.now(UTC))
    out = tmp_path / "schedules.d"
    runner = CliRunner()
    result = runner.invoke(app, ["import", "--out", str(out), "--db", db])
    assert result.exit_code == 0, result.output
    assert (out / "imported.yaml").exists()
    assert "import job " in result.stdout and "5 imported" in result.stdout
    assert f"not imported: job {GARBAGE_ID}" in result.stderr
    checked = runner.invoke(app, ["import", "--out", str(out), "--db", db, "--check"])
    assert checked.exit_code == 0, checked.output


def test_adopting_with_an_edited_entry_rewrites_the_row_in_place(db_url: str, tmp_path: Path) -> None:
    # Edited before the first reconcile: the job is adopted AND updated; a new name keeps next_run_time.
    add_api_rows(db_url, datetime.now(UTC))
    before = jobs(db_url)
    assert import_into(tmp_path, db_url).exit_code == 0
    target = tmp_path / "schedules.d" / "imported.yaml"
    target.write_text(target.read_text().replace("name: Clean up", "name: Tidy up"))
    applied = reconcile(tmp_path / "schedules.d", db_url)
    assert applied.exit_code == 0, applied.err
    assert applied.plan is not None
    change = {c.schedule_id: c for c in applied.plan.changes}[INTERVAL_ID]
    assert change.action is Action.ADOPT and [f.name for f in change.fields] == ["name"]
    after = jobs(db_url)
    assert after[INTERVAL_ID][0] == before[INTERVAL_ID][0]
    assert load_job_state(after[INTERVAL_ID][1])["name"] == "Tidy up"
    assert {k: v for k, v in after.items() if k != INTERVAL_ID} == {k: v for k, v in before.items() if k != INTERVAL_ID}


def test_a_schedule_id_that_another_key_owns_is_refused(db_url: str, tmp_path: Path) -> None:
    # Adopting a job one of our own keys owns would plan that row twice, or delete it under the adopter.
    d = tmp_path / "schedules.d"
    old = json.dumps({"key": "old", "workflow_name": "task_clean_up_tasks", "trigger": "interval",
                      "trigger_kwargs": {"hours": 1}})  # fmt: skip
    write_schedules(d, old)
    assert reconcile(d, db_url).exit_code == 0
    owned = ledger_rows(db_url)["old"]
    before = jobs(db_url)
    thief = json.dumps({"key": "new", "schedule_id": owned, "workflow_name": "task_clean_up_tasks",
                        "trigger": "interval", "trigger_kwargs": {"hours": 5}})  # fmt: skip
    for files in ((old, thief), (thief,)):
        write_schedules(d, *files)
        outcome = reconcile(d, db_url)
        assert outcome.exit_code == 1
        assert f"new: job {owned} already belongs to 'old'; to rename 'old', write moved_from: old" in outcome.err[0]
        assert jobs(db_url) == before and ledger_rows(db_url) == {"old": owned}


def test_two_schedules_claiming_one_schedule_id_are_refused(db_url: str, tmp_path: Path) -> None:
    add_api_rows(db_url, datetime.now(UTC))
    d = tmp_path / "schedules.d"
    twice = [
        json.dumps({"key": key, "schedule_id": INTERVAL_ID, "workflow_name": "task_clean_up_tasks",
                    "trigger": "interval", "trigger_kwargs": {"hours": 2}})
        for key in ("first", "second")
    ]  # fmt: skip
    write_schedules(d, *twice)
    before = jobs(db_url)
    outcome = reconcile(d, db_url)
    assert outcome.exit_code == 1
    assert f"second: schedule_id {INTERVAL_ID} is claimed by another schedule too" in outcome.err[0]
    assert jobs(db_url) == before


# ------------------------------------------------------------------------ jobs written by orchestrator-core


@pytest.fixture
def orchestrator_db(tmp_path: Path) -> Iterator[Orchestrator]:
    """A database migrated by the newest orchestrator-core; its scheduler's host zone is Amsterdam."""
    # TZ: add_job gives a cron without a zone the scheduler's (tzlocal's) zone
    venv = orchestrator_venv(LATEST)
    with migrated_database(venv, tmp_path / "project", extra_env={"TZ": "Europe/Amsterdam"}) as side:
        yield side


@pytest.mark.postgres
@pytest.mark.orchestrator
def test_jobs_created_by_orchestrator_core_are_adopted(orchestrator_db: Orchestrator, tmp_path: Path) -> None:
    side = orchestrator_db
    db = side.db_url
    run_date = (datetime.now(UTC) + timedelta(days=20)).replace(microsecond=0)
    payloads = [
        {"name": "UI interval", "workflow_name": "task_clean_up_tasks", "trigger": "interval",
         "trigger_kwargs": {"hours": 3}},
        {"name": None, "workflow_name": "task_validate_products", "trigger": "cron",
         "trigger_kwargs": {"day_of_week": "mon-fri", "hour": 7, "minute": 45}},
        {"name": "Tokyo cron", "workflow_name": "task_validate_subscriptions", "trigger": "cron",
         "trigger_kwargs": {"hour": 9, "timezone": "Asia/Tokyo"}, "user_inputs": [{"note": "from the UI"}]},
        {"name": "Once", "workflow_name": "task_resume_workflows", "trigger": "date",
         "trigger_kwargs": {"run_date": run_date.isoformat()}},
    ]  # fmt: skip
    ids = []
    for payload in payloads:
        ids.extend(side.run("add-api-schedule", json.dumps(payload)).result["ids"])
    assert len(ids) == len(payloads)
    url = db
    # The API's linker insert is a transaction of its own: lose one, as a failed insert would.
    engine = store.connect(url)
    with engine.begin() as conn:
        conn.execute(
            store.workflows_apscheduler_jobs.delete().where(store.workflows_apscheduler_jobs.c.schedule_id == ids[3])
        )
        hourly = CronTrigger(hour=1, timezone=UTC)
        decorator = build_job_row(job_id="nightly-sync", trigger=hourly, workflow_name="", user_inputs=[], name="n",
                                  next_run_time=hourly.get_next_fire_time(None, datetime.now(UTC)),
                                  func="mysched:run_nightly_sync")  # fmt: skip
        store.insert_jobs(conn, [decorator], [])
        conn.execute(store.apscheduler_jobs.insert().values(id="garbage", next_run_time=None, job_state=b"\x80\x05x"))
    engine.dispose()
    before = jobs(url)

    result = import_into(tmp_path, url)
    assert result.exit_code == 0, report(result)
    doc = yaml.safe_load((tmp_path / "schedules.d" / "imported.yaml").read_text())
    by_id = {s["schedule_id"]: s for s in doc["schedules"]}
    assert sorted(by_id) == sorted(ids)
    interval, weekdays, tokyo, once = (by_id[i] for i in ids)
    assert interval["key"] == "ui-interval" and interval["trigger"] == "interval"
    assert interval["trigger_kwargs"]["hours"] == 3 and "start_date" in interval["trigger_kwargs"]
    # name=None: orchestrator-core named it after the workflow's description; that name is kept.
    assert weekdays["name"] == "Validate products" and weekdays["key"] == "validate-products"
    assert weekdays["timezone"] == "Europe/Amsterdam"  # the scheduler host's zone, now written down
    assert weekdays["trigger_kwargs"] == {"day_of_week": "mon-fri", "hour": 7, "minute": 45}
    assert (tokyo["timezone"], tokyo["user_inputs"]) == ("Asia/Tokyo", [{"note": "from the UI"}])
    assert once["trigger"] == "date"
    assert datetime.fromisoformat(once["trigger_kwargs"]["run_date"]) == run_date
    lines = report(result)
    assert any(line.startswith("decorator job nightly-sync (func ") for line in lines)
    assert any(line.startswith("not imported: job garbage: unreadable job_state") for line in lines)

    # The imported triggers are the live ones: same canonical form and next 10 fire times.
    for job_id, spec in by_id.items():
        live = load_job_state(before[job_id][1])["trigger"]
        ours = triggers.build_trigger(spec["trigger"], spec["trigger_kwargs"], spec["timezone"])
        assert triggers.canonical_form(ours) == triggers.canonical_form(live)
        now = datetime.now(UTC)
        assert triggers.next_fire_times(ours, 10, now) == triggers.next_fire_times(live, 10, now)

    d = tmp_path / "schedules.d"
    planned = reconcile(d, url, dry_run=True, fmt="json")
    assert planned.exit_code == 0, planned.err
    body = json.loads(planned.out[0])
    assert {c["schedule_id"]: c["action"] for c in body["changes"]} == dict.fromkeys(ids, "adopt")
    applied = reconcile(d, url)
    assert applied.exit_code == 0, (applied.out, applied.err)
    after = jobs(url)
    assert after == before  # ids, next_run_time and job_state untouched; decorator and garbage rows too
    assert set(ledger_rows(url).values()) == set(ids)
    assert ids[3] in {sid for _, sid in links(url)}
    again = reconcile(d, url, dry_run=True, detailed_exitcode=True)
    assert again.exit_code == 0, again.out

    # orchestrator-core still sees every adopted job, each linked to its workflow (what GraphQL shows).
    engine = store.connect(url)
    with engine.begin() as conn:  # its job store would delete these two on reading them; we never do
        conn.execute(
            store.apscheduler_jobs.delete().where(store.apscheduler_jobs.c.id.in_(["nightly-sync", "garbage"]))
        )
    engine.dispose()
    seen = side.run("inspect").result
    assert sorted(j["id"] for j in seen["jobs"]) == sorted(ids)
    assert sorted(e["id"] for e in seen["enriched"] if e["workflow_id"]) == sorted(ids)
