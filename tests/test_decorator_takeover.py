"""A migrated decorator leaves one job: the reconcile takes the decorator's stored row over.

orchestrator-core 4.4–4.6 style `@scheduler.scheduled_job(id="resume-workflows", ...)` stored a row with id
`resume-workflows` in apscheduler_jobs (written here by APScheduler 3.11's own SQLAlchemyJobStore).
`load-initial-schedule` records that id (`replaces:`); the next reconcile writes orchestrator-core's own
job (uuid5 id, linked, orchestrator's func and kwargs) and deletes the decorator's row in the same
transaction, keeping its next run. Before, it created a second job and left the first "alone": two
jobs started task_resume_workflows every hour.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import yaml
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from reconciler.commands import load_initial
from reconciler.jobstate import ORCHESTRATOR_FUNC, load_job_state
from reconciler.plan import Action, schedule_id_for
from tests.conftest import init_compatible
from tests.test_reconcile import jobs, links, reconcile

LEGACY = """\
from orchestrator.schedules.scheduler import scheduler
from orchestrator.services.processes import start_process


@scheduler.scheduled_job(id="resume-workflows", name="Resume workflows", trigger="interval", hours=1)
def run_resume_workflows() -> None:
    start_process("task_resume_workflows")
"""
DECORATOR_LINE = 5


def store_decorator_job(url: str) -> float:
    """The row orchestrator-core 4.6's scheduler stored for the decorator, written by APScheduler itself."""
    scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)}, timezone=UTC)
    scheduler.start(paused=True)
    try:
        scheduler.add_job(
            "tests.decorator_app:run_resume_workflows",
            trigger="interval",
            hours=1,
            id="resume-workflows",
            name="Resume workflows",
            replace_existing=True,
        )
    finally:
        scheduler.shutdown(wait=False)
    next_run = jobs(url)["resume-workflows"][0]
    assert next_run is not None
    return next_run


def migrate_legacy(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    (app / "schedules.py").write_text(LEGACY)
    result = load_initial.run([Path("app")], Path("schedules.d"), include_core=False, cwd=tmp_path)
    assert result.exit_code == 0, [str(x) for x in result.lines]
    return tmp_path / "schedules.d"


def starting(url: str, workflow: str) -> dict[str, tuple[float | None, dict[str, Any]]]:
    found = {}
    for job_id, (next_run, raw) in jobs(url).items():
        state = load_job_state(raw)
        kwargs = state.get("kwargs") or {}
        func = state.get("func")
        if kwargs.get("workflow_name") == workflow or func == "tests.decorator_app:run_resume_workflows":
            found[job_id] = (next_run, state)
    return found


def test_migrated_decorator_leaves_one_job_with_its_next_run(db_url: str, tmp_path: Path) -> None:
    if db_url.startswith("sqlite"):
        init_compatible(db_url).dispose()
    old_next_run = store_decorator_job(db_url)
    directory = migrate_legacy(tmp_path)
    spec = yaml.safe_load((directory / "schedules.yaml").read_text())["schedules"][0]
    assert spec["replaces"] == {"job_id": "resume-workflows", "decorator": f"app/schedules.py:{DECORATOR_LINE}"}

    outcome = reconcile(directory, db_url)
    assert outcome.exit_code == 0, outcome.err
    assert outcome.plan is not None
    pending = outcome.plan.pending
    assert [(c.action, c.replaces_job_id) for c in pending] == [(Action.ADOPT, "resume-workflows")]
    text = " ".join("\n".join(outcome.out).split())  # plan lines wrap at 80 columns
    assert "takes over job resume-workflows, stored by the decorator at app/schedules.py:5" in text
    assert "next run kept" in text
    assert outcome.plan.unmanaged == ()

    found = starting(db_url, "task_resume_workflows")
    new_id = schedule_id_for("default", "resume-workflows")
    assert list(found) == [new_id]  # exactly one job starts task_resume_workflows
    uuid.UUID(new_id)
    next_run, state = found[new_id]
    assert next_run == old_next_run
    assert state["next_run_time"].timestamp() == old_next_run
    assert state["func"] == ORCHESTRATOR_FUNC
    assert state["kwargs"] == {"workflow_name": "task_resume_workflows", "user_inputs": [{}]}
    assert any(s == new_id for _, s in links(db_url))

    again = reconcile(directory, db_url, dry_run=True, detailed_exitcode=True)
    assert again.exit_code == 0, again.out


def test_a_decorator_row_that_comes_back_is_named_and_removed_again(sqlite_url: str, tmp_path: Path) -> None:
    init_compatible(sqlite_url).dispose()
    store_decorator_job(sqlite_url)
    directory = migrate_legacy(tmp_path)
    assert reconcile(directory, sqlite_url).exit_code == 0
    store_decorator_job(sqlite_url)  # the decorator is still in the code: its scheduler started again

    plan = reconcile(directory, sqlite_url, dry_run=True)
    text = "\n".join(plan.out)
    assert (
        "job resume-workflows is back: the decorator at app/schedules.py:5 is still in the orchestrator's code" in text
    )
    assert plan.plan is not None and [c.action for c in plan.plan.pending] == [Action.UPDATE]
    assert reconcile(directory, sqlite_url).exit_code == 0
    assert list(starting(sqlite_url, "task_resume_workflows")) == [schedule_id_for("default", "resume-workflows")]


@pytest.mark.postgres
@pytest.mark.orchestrator
def test_orchestrator_core_reads_the_job_that_took_over(tmp_path: Path) -> None:
    from tests.orchestrator_env import LATEST, migrated_database, orchestrator_venv

    with migrated_database(orchestrator_venv(LATEST), tmp_path / "project") as side:
        url = side.db_url
        old_next_run = store_decorator_job(url)
        directory = migrate_legacy(tmp_path)
        assert reconcile(directory, url).exit_code == 0
        inspected = side.run("inspect").result
        new_id = schedule_id_for("default", "resume-workflows")
        assert [j["id"] for j in inspected["jobs"]] == [new_id]
        job = inspected["jobs"][0]
        assert job["kwargs"] == {"workflow_name": "task_resume_workflows", "user_inputs": [{}]}
        assert job["next_run_column"] == old_next_run
        assert job["func_ref"] == ORCHESTRATOR_FUNC
        assert [e["id"] for e in inspected["enriched"]] == [new_id]  # linked: an API schedule to orchestrator-core


def test_schedules_import_offers_the_takeover_for_a_decorator_row(sqlite_url: str, tmp_path: Path) -> None:
    from reconciler.commands import import_jobs

    init_compatible(sqlite_url).dispose()
    old_next_run = store_decorator_job(sqlite_url)
    result = import_jobs.run(Path("schedules.d"), sqlite_url, cwd=tmp_path)
    assert result.exit_code == 0, [str(x) for x in result.lines]
    written = tmp_path / "schedules.d" / "imported.yaml"
    text = written.read_text()
    assert "#   replaces: {job_id: resume-workflows}" in text
    assert "#   workflow_name: TODO" in text
    # The user fills in the workflow the decorated function started and uncomments the entry.
    filled = "\n".join(
        line.replace("  #   ", "    ")
        .replace("  # - ", "  - ")
        .replace("workflow_name: TODO", "workflow_name: task_resume_workflows")
        if line.startswith(("  #   ", "  # - "))
        else line
        for line in text.splitlines()
    )
    filled = "\n".join(
        "schedules:" if line.startswith("schedules: []") else line for line in filled.splitlines()
    )  # as the stub's own comment says: replace [] with the entries once finished
    written.write_text(filled + "\n")
    outcome = reconcile(tmp_path / "schedules.d", sqlite_url)
    assert outcome.exit_code == 0, (outcome.out, outcome.err)
    found = starting(sqlite_url, "task_resume_workflows")
    assert list(found) == [schedule_id_for("default", "resume-workflows")]
    assert found[schedule_id_for("default", "resume-workflows")][0] == old_next_run
