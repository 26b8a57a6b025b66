"""orchestrator-core's side of the compatibility tests: a project's `main.py`, run as a subprocess.

It runs with the python of one orchestrator-core release's own venv (tests/orchestrator_env.py builds them),
never in the pytest process: orchestrator-core reads its settings (DATABASE_URI, CACHE_URI, EXECUTOR, ...)
when it is imported, and its dependencies are not the project's. Every release from 4.7 on works: 5.x
lives below `orchestrator.core`, 4.x below `orchestrator` (`core()` picks the one installed).

    python tests/orchestrator_side.py scheduler run|show-schedule|force ID   orchestrator-core's own CLI
    python tests/orchestrator_side.py migrate [REVISION]      its own alembic migrations (see `migrate`)
    python tests/orchestrator_side.py register-tasks JSON     its `create_task` migration helper
    python tests/orchestrator_side.py add-api-schedule JSON   its scheduler-queue handler (`_add_scheduled_task`)
    python tests/orchestrator_side.py inspect                 its readers: get_all_scheduler_tasks + enrich
    python tests/orchestrator_side.py graphql                 the GraphQL resolver's get_scheduler_tasks
    python tests/orchestrator_side.py force-each ID...        `scheduler force ID` for every ID, one process
    python tests/orchestrator_side.py initial-schedules       its INITIAL_SCHEDULES (5.x)
    python tests/orchestrator_side.py decorator-jobs JSON     jobs its deprecated `@scheduler(...)` makes

Everything below calls orchestrator-core's own functions; nothing of its behaviour is re-implemented.
The commands of this script print one line `RESULT <json>` for the test to read.

It also defines a task the way a downstream project does (`@task` / `@workflow`, `LazyWorkflowInstance`,
`create_task`): `task_reconciler_probe`, whose initial form takes a `message` and whose step echoes it, so a
test can see that a schedule's `user_inputs` reached the started process.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import json
import logging
import os
import pickle
import signal
import sys
import time
from typing import Any

CORE = "orchestrator.core" if importlib.util.find_spec("orchestrator.core") else "orchestrator"  # 5.x / 4.x
SCHEMA_FINAL_REVISION = "fbc16e410bc6"  # the schedule tables are final here; 262744958e0c needs pgvector
# 5.x revisions after the pgvector one that need no pgvector: `processes.note` (which 5.5.0's ProcessTable
# inserts), the func-prefix rewrite of job rows (orchestrator. -> orchestrator.core.) and a task row.
LATER_WITHOUT_VECTOR = ("be3163f7c49d", "cab8b6a0ac92", "f4a7c9e21b08")
PROBE = "task_reconciler_probe"
PLAIN = "task_reconciler_plain"  # a project task without an input form


def core(module: str) -> Any:
    """orchestrator-core's module `module` (e.g. "schedules.scheduler"), whichever release this is."""
    return importlib.import_module(f"{CORE}.{module}")


def probe_form() -> Any:
    from pydantic_forms.core import FormPage

    class ProbeForm(FormPage):
        message: str = "(no input)"  # 4.x schedules carry no user_inputs: the form's default is what arrives

    user_input = yield ProbeForm
    form: dict[str, Any] = user_input.model_dump()
    return form


def define_probe() -> None:
    """The project's task, defined as that release's docs say: `@task` in 5.x, `@workflow(target=SYSTEM)` in 4.x."""
    workflow_module = core("workflow")
    init, done, step = workflow_module.init, workflow_module.done, workflow_module.step

    @step("Echo the message")
    def echo_message(message: str) -> dict[str, Any]:
        return {"echoed": message}

    @step("Say hello")
    def say_hello() -> dict[str, Any]:
        return {"hello": True}

    for name, description, form, body in (
        (PROBE, "Reconciler probe", probe_form, echo_message),
        (PLAIN, "Reconciler plain task", None, say_hello),
    ):

        def steps(body: Any = body) -> Any:
            return init >> body >> done

        steps.__name__ = steps.__qualname__ = name
        utils = core("workflows.utils")
        if hasattr(utils, "task"):
            made = utils.task(initial_input_form=form)(steps)
        else:
            made = workflow_module.workflow(description, initial_input_form=form, target=core("targets").Target.SYSTEM)(
                steps
            )
        globals()[name] = made
        core("workflows").LazyWorkflowInstance(__name__, name)


def result(value: Any) -> None:
    print("RESULT " + json.dumps(value, default=str), flush=True)


def migrations_config() -> Any:
    from alembic.config import Config

    migrations = core("migrations")
    return Config(os.path.join(os.path.dirname(migrations.__file__), "alembic.ini"))


def migrate(target: str | None = None) -> None:
    """Migrate with this release's own migrations: to heads (4.x; 5.x with pgvector), else to fbc16e410bc6.

    Without pgvector a 5.x chain stops at fbc16e410bc6 (262744958e0c creates the `vector` extension); the
    schedule tables are final there. The later revisions that need no pgvector (LATER_WITHOUT_VECTOR: 5.5.0's
    `ProcessTable` writes `processes.note`; cab8b6a0ac92 rewrites the func prefix of 4.x job rows) are run
    by calling their own upgrade(), leaving alembic_version at fbc16e410bc6. `target` stops earlier.
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
    script = ScriptDirectory.from_config(config)
    known = {r.revision for r in script.walk_revisions()}
    stop = target or ("heads" if vector or SCHEMA_FINAL_REVISION not in known else SCHEMA_FINAL_REVISION)
    command.upgrade(config, stop)
    ran = []
    if stop == SCHEMA_FINAL_REVISION:
        for later in LATER_WITHOUT_VECTOR:
            revision = script.get_revision(later) if later in known else None
            if revision is None or revision.module is None:
                continue
            with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
                revision.module.upgrade()
            ran.append(later)
    with engine.connect() as conn:
        versions = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    engine.dispose()
    result({"vector": bool(vector), "revisions": versions, "heads": list(script.get_heads()), "also_ran": ran})


def register_tasks(tasks_json: str) -> None:
    """Insert task workflows exactly as a project's migration does: orchestrator-core's `create_task`."""
    from sqlalchemy import text

    db = core("db").db
    create_task = core("migrations.helpers").create_task
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
    db_module = core("db")
    scheduler_module = core("schedules.scheduler")
    body = json.loads(payload_json)
    before = {job.id for job in scheduler_module.get_all_scheduler_tasks()}
    with db_module.db.database_scope():
        workflow = db_module.db.session.query(db_module.WorkflowTable).filter_by(name=body["workflow_name"]).one()
        payload = core("schemas.schedules").APSchedulerJobCreate(workflow_id=workflow.workflow_id, **body)
        with scheduler_module.get_scheduler(paused=True) as scheduler:
            core("schedules.service")._add_scheduled_task(payload, scheduler)
    added = sorted({job.id for job in scheduler_module.get_all_scheduler_tasks()} - before)
    result({"ids": added})


def inspect() -> None:
    """Every job as orchestrator-core restores it, re-pickled, and what its GraphQL enrichment makes of it."""
    from apscheduler.util import datetime_to_utc_timestamp

    scheduler_module = core("schedules.scheduler")
    jobs = scheduler_module.get_all_scheduler_tasks()
    with core("db").db.database_scope():
        enriched = scheduler_module.enrich_with_workflow_id(jobs)
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


def graphql() -> None:
    """The GraphQL `scheduledTasks` resolver's own path: get_scheduler_tasks (read, filter, sort, enrich, page)."""
    with core("db").db.database_scope():
        tasks, total = core("schedules.scheduler").get_scheduler_tasks(first=10_000, after=0)
    result(
        {
            "total": total,
            "tasks": [
                {"id": t.id, "workflow_id": str(t.workflow_id) if t.workflow_id else None, "name": t.name,
                 "next_run_time": str(t.next_run_time) if t.next_run_time else None, "trigger": t.trigger}
                for t in tasks
            ],
        }
    )  # fmt: skip


def wait_for_processes(timeout: float = 30.0) -> None:
    """Until no process is still being created or run by the threadpool executor."""
    from sqlalchemy import text

    db = core("db").db
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

    core_cli = core("cli.main").app
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


def initial_schedules() -> None:
    """The release's built-in schedules (`load-initial-schedule`'s INITIAL_SCHEDULES; 5.x only)."""
    result({"initial_schedules": getattr(core("cli.scheduler"), "INITIAL_SCHEDULES", None)})


def decorator_jobs(calls_json: str) -> None:
    """The jobs the deprecated `@scheduler(...)` decorator makes, each on its own UTC BackgroundScheduler.

    Input: a JSON list of {"args": [...], "kwargs": {...}, "function": name}; output: per call, the job's
    trigger and options as a base64 pickle (APScheduler classes only), for the test to compare.
    """
    from apscheduler.schedulers.background import BackgroundScheduler

    decorate = core("schedules.scheduling").scheduler
    out = []
    for call in json.loads(calls_json):
        sched = BackgroundScheduler(timezone="UTC")

        def job_function() -> None:  # never called
            raise AssertionError

        job_function.__name__ = call["function"]
        decorate(*call["args"], scheduler=sched, **call["kwargs"])(job_function)
        (job,) = sched.get_jobs()
        attrs = {
            name: getattr(job, name)
            for name in ("id", "name", "trigger", "misfire_grace_time", "coalesce", "max_instances", "next_run_time")
            if hasattr(job, name)
        }
        out.append(base64.b64encode(pickle.dumps(attrs)).decode())
    result({"jobs": out})


def stop_on_sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # `scheduler run` then leaves `with get_scheduler()` and shuts the scheduler down


def main(argv: list[str]) -> None:
    # A background process may inherit an ignored SIGINT; the test stops `scheduler run` with SIGTERM.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop_on_sigterm)

    match argv:
        case ["migrate", *target]:
            migrate(target[0] if target else None)
            return
        case ["decorator-jobs", calls]:
            decorator_jobs(calls)
            return
    define_probe()
    app_settings = core("settings").app_settings
    core("app").OrchestratorCore(base_settings=app_settings)  # what a project's main.py does before the CLI
    core("cli.main")  # imports the scheduler modules (and their loggers) as `python main.py` would
    # 5.0 quiets APScheduler's loggers to WARNING; the tests read its "Next wakeup" / "Running job" lines.
    for name in ["apscheduler", *logging.root.manager.loggerDict]:
        if name.startswith("apscheduler"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    match argv:
        case ["register-tasks", tasks]:
            register_tasks(tasks)
        case ["add-api-schedule", payload]:
            add_api_schedule(payload)
        case ["inspect"]:
            inspect()
        case ["graphql"]:
            graphql()
        case ["force-each", *ids]:
            force_each(ids)
        case ["initial-schedules"]:
            initial_schedules()
        case _:
            core("cli.main").app(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
