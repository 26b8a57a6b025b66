"""orchestrator-core's side of tests/test_orchestrator_compat.py: a project's `main.py`, run as a subprocess.

orchestrator-core reads its settings (DATABASE_URI, CACHE_URI, EXECUTOR, ...) when it is imported, so
it never runs inside the pytest process: the test starts this script with those variables set.

    python tests/orchestrator_side.py scheduler run|show-schedule|force ID   orchestrator-core's own CLI
    python tests/orchestrator_side.py migrate                 its own alembic migrations (see `migrate`)
    python tests/orchestrator_side.py register-tasks JSON     its `create_task` migration helper
    python tests/orchestrator_side.py add-api-schedule JSON   its scheduler-queue handler (`_add_scheduled_task`)
    python tests/orchestrator_side.py inspect                 its readers: get_all_scheduler_tasks + enrich
    python tests/orchestrator_side.py force-each ID...        `scheduler force ID` for every ID, one process

Everything below calls orchestrator-core's own functions; nothing of its behaviour is re-implemented.
The commands of this script print one line `RESULT <json>` for the test to read.

It also defines a task the way a downstream project does (`@task`, `LazyWorkflowInstance`, `create_task`):
`task_reconciler_probe`, whose initial form takes a `message` and whose step echoes it, so a test can see
that a schedule's `user_inputs` reached the started process.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import signal
import sys
import time
from typing import Any

from orchestrator.core.workflow import StepList, done, init, step
from orchestrator.core.workflows import LazyWorkflowInstance
from orchestrator.core.workflows.utils import task
from pydantic_forms.core import FormPage
from pydantic_forms.types import FormGenerator, State

SCHEMA_FINAL_REVISION = "fbc16e410bc6"  # the schedule tables are final here; later ones need pgvector
PROCESS_NOTE_REVISION = "be3163f7c49d"  # adds processes.note, which 5.5.0's ProcessTable inserts
PROBE = "task_reconciler_probe"


def probe_form() -> FormGenerator:  # type: ignore[type-arg]
    class ProbeForm(FormPage):
        message: str

    user_input = yield ProbeForm
    form: dict[str, Any] = user_input.model_dump()
    return form


@step("Echo the message")
def echo_message(message: str) -> State:
    return {"echoed": message}


@task(initial_input_form=probe_form)
def task_reconciler_probe() -> StepList:
    return init >> echo_message >> done


LazyWorkflowInstance(__name__, PROBE)


def result(value: Any) -> None:
    print("RESULT " + json.dumps(value, default=str), flush=True)


def migrations_config() -> Any:
    import orchestrator.core.migrations as migrations
    from alembic.config import Config

    return Config(os.path.join(os.path.dirname(migrations.__file__), "alembic.ini"))


def migrate() -> None:
    """Migrate with orchestrator-core's own migrations: to heads with pgvector, else to fbc16e410bc6.

    Without pgvector the chain stops at fbc16e410bc6 (262744958e0c creates the `vector` extension); the
    schedule tables are final there. orchestrator-core 5.5.0's `ProcessTable` also writes `processes.note`,
    which be3163f7c49d (after the AI-search migration) adds, so `start_process` needs that column: its own
    migration's upgrade() is run for it, leaving alembic_version at fbc16e410bc6.
    """
    from alembic import command
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, text

    url = os.environ["DATABASE_URI"]
    engine = create_engine(url)
    with engine.connect() as conn:
        vector = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first()
    config = migrations_config()
    command.upgrade(config, "heads" if vector else SCHEMA_FINAL_REVISION)
    if not vector:
        script = ScriptDirectory.from_config(config)
        revision = script.get_revision(PROCESS_NOTE_REVISION)
        assert revision is not None and revision.module is not None
        with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
            revision.module.upgrade()
    with engine.connect() as conn:
        versions = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    engine.dispose()
    heads = list(ScriptDirectory.from_config(config).get_heads())
    result({"vector": bool(vector), "revisions": versions, "heads": heads})


def register_tasks(tasks_json: str) -> None:
    """Insert task workflows exactly as a project's migration does: orchestrator-core's `create_task`."""
    from orchestrator.core.db import db
    from orchestrator.core.migrations.helpers import create_task
    from sqlalchemy import text

    ids = {}
    with db.engine.begin() as conn:
        for name, description in json.loads(tasks_json).items():
            create_task(conn, {"name": name, "description": description})
            query = text("SELECT workflow_id FROM workflows WHERE name = :n")
            ids[name] = str(conn.execute(query, {"n": name}).scalar_one())
    result({"workflow_ids": ids})


def add_api_schedule(payload_json: str) -> None:
    """What `scheduler run` does for a POST /api/schedules: validate the payload, then `_add_scheduled_task`.

    `_add_scheduled_task` calls the scheduler's add_job (APScheduler writes the row) and then inserts the
    linker row itself. It runs inside `get_scheduler(paused=True)`, as orchestrator-core's own tests do.
    """
    from orchestrator.core.db import WorkflowTable, db
    from orchestrator.core.schedules.scheduler import get_all_scheduler_tasks, get_scheduler
    from orchestrator.core.schedules.service import _add_scheduled_task
    from orchestrator.core.schemas.schedules import APSchedulerJobCreate

    body = json.loads(payload_json)
    before = {job.id for job in get_all_scheduler_tasks()}
    with db.database_scope():
        workflow = db.session.query(WorkflowTable).filter_by(name=body["workflow_name"]).one()
        payload = APSchedulerJobCreate(workflow_id=workflow.workflow_id, **body)
        with get_scheduler(paused=True) as scheduler:
            _add_scheduled_task(payload, scheduler)
    added = sorted({job.id for job in get_all_scheduler_tasks()} - before)
    result({"ids": added})


def inspect() -> None:
    """Every job as orchestrator-core restores it, re-pickled, and what its GraphQL enrichment makes of it."""
    from apscheduler.util import datetime_to_utc_timestamp
    from orchestrator.core.db import db
    from orchestrator.core.schedules.scheduler import enrich_with_workflow_id, get_all_scheduler_tasks

    jobs = get_all_scheduler_tasks()
    with db.database_scope():
        enriched = enrich_with_workflow_id(jobs)
    out = []
    for job in jobs:
        state = job.__getstate__()
        out.append(
            {
                "id": job.id,
                "name": job.name,
                "func": f"{job.func.__module__}:{job.func.__qualname__}",
                "func_ref": job.func_ref,
                "args": list(job.args),
                "kwargs": job.kwargs,
                "trigger_class": type(job.trigger).__name__,
                "trigger": str(job.trigger),
                "trigger_repr": repr(job.trigger),
                "next_run_time": job.next_run_time.isoformat() if job.next_run_time else None,
                # what APScheduler's SQLAlchemyJobStore writes into the next_run_time column for this job
                "next_run_column": datetime_to_utc_timestamp(job.next_run_time),
                "executor": job.executor,
                "misfire_grace_time": job.misfire_grace_time,
                "coalesce": job.coalesce,
                "max_instances": job.max_instances,
                "repickled": base64.b64encode(pickle.dumps(state, pickle.HIGHEST_PROTOCOL)).decode(),
            }
        )
    result(
        {
            "jobs": out,
            "enriched": [
                {"id": t.id, "workflow_id": t.workflow_id, "name": t.name, "trigger": t.trigger} for t in enriched
            ],
        }
    )


def wait_for_processes(timeout: float = 30.0) -> None:
    """Until no process is still being created or run by the threadpool executor."""
    from orchestrator.core.db import db
    from sqlalchemy import text

    query = text("SELECT count(*) FROM processes WHERE last_status IN ('created', 'running', 'resumed')")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            if conn.execute(query).scalar_one() == 0:
                return
        time.sleep(0.1)


def force_each(ids: list[str]) -> None:
    """orchestrator-core's own `scheduler force ID` command for each id, in this one process.

    The next one is forced only when the previous process has finished: core tasks such as
    task_resume_workflows would otherwise pick up a sibling that is still in status `created`.
    """
    import click
    from orchestrator.core.cli.main import app as core_cli

    codes: dict[str, Any] = {}
    for job_id in ids:
        try:
            core_cli(["scheduler", "force", job_id], standalone_mode=False)
            codes[job_id] = 0
        except click.exceptions.Exit as exc:
            codes[job_id] = exc.exit_code
        except SystemExit as exc:
            codes[job_id] = exc.code
        wait_for_processes()
    result({"exit_codes": codes})


def stop_on_sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # `scheduler run` then leaves `with get_scheduler()` and shuts the scheduler down


def main(argv: list[str]) -> None:
    from orchestrator.core.app import OrchestratorCore
    from orchestrator.core.settings import app_settings

    # A background process may inherit an ignored SIGINT; the test stops `scheduler run` with SIGTERM.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop_on_sigterm)

    if argv[:1] == ["migrate"]:
        migrate()
        return
    OrchestratorCore(base_settings=app_settings)  # what a project's main.py does before the CLI
    match argv:
        case ["register-tasks", tasks]:
            register_tasks(tasks)
        case ["add-api-schedule", payload]:
            add_api_schedule(payload)
        case ["inspect"]:
            inspect()
        case ["force-each", *ids]:
            force_each(ids)
        case _:
            from orchestrator.core.cli.main import app as core_cli

            core_cli(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
