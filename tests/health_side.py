"""orchestrator-core's side of tests/test_health_orchestrator.py, run as a subprocess with orchestrator-core.

    python tests/health_side.py add-api-schedules JSON what `scheduler run` does for each POST /api/schedules
                                                        (payload validation, then `_add_scheduled_task`)
    python tests/health_side.py write-processes JSON   rows through orchestrator-core's own ProcessTable model
    python tests/health_side.py engine-lock true|false its `marshall_processes` (what the pause/resume API calls)
    python tests/health_side.py remove-job ID          its scheduler store's remove_job (what APScheduler does
                                                        with a `date` job after its one fire)

Migrations, task registration, API schedules and `scheduler run` are tests/orchestrator_side.py's commands.
Each command prints one line `RESULT <json>`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from datetime import datetime
from types import ModuleType
from typing import Any

# 5.x moved every module under `orchestrator.core`; 4.x has them at `orchestrator.` directly.
PACKAGE = "orchestrator.core" if importlib.util.find_spec("orchestrator.core") else "orchestrator"


def core(module: str) -> ModuleType:
    """orchestrator-core's module `module`, in whichever package this release keeps it."""
    return importlib.import_module(f"{PACKAGE}.{module}")


def result(value: Any) -> None:
    print("RESULT " + json.dumps(value, default=str), flush=True)


def add_api_schedules(payloads_json: str) -> None:
    """Each payload as orchestrator-core's scheduler handles a POST /api/schedules; returns the new job ids."""
    db, workflow_table = core("db").db, core("db").WorkflowTable
    scheduler_module, service = core("schedules.scheduler"), core("schedules.service")
    create = core("schemas.schedules").APSchedulerJobCreate

    ids = []
    for body in json.loads(payloads_json):
        before = {job.id for job in scheduler_module.get_all_scheduler_tasks()}
        with db.database_scope():
            workflow = db.session.query(workflow_table).filter_by(name=body["workflow_name"]).one()
            payload = create(workflow_id=workflow.workflow_id, **body)
            with scheduler_module.get_scheduler(paused=True) as scheduler:
                service._add_scheduled_task(payload, scheduler)
        (added,) = {job.id for job in scheduler_module.get_all_scheduler_tasks()} - before
        ids.append(added)
    result({"ids": ids})


def write_processes(rows_json: str) -> None:
    """One `processes` row per item: {workflow, started_at (ISO), status, failed_reason?, created_by?}."""
    db, process_table, workflow_table = core("db").db, core("db").ProcessTable, core("db").WorkflowTable

    pids = []
    with db.database_scope():
        ids = {w.name: w.workflow_id for w in db.session.query(workflow_table).all()}
        for item in json.loads(rows_json):
            started = datetime.fromisoformat(item["started_at"])
            process = process_table(
                workflow_id=ids[item["workflow"]],
                last_status=item.get("status", "completed"),
                started_at=started,
                last_modified_at=started,
                failed_reason=item.get("failed_reason"),
                created_by=item.get("created_by", "SYSTEM"),
                is_task=True,
            )
            db.session.add(process)
            db.session.flush()
            pids.append(str(process.process_id))
        db.session.commit()
    result({"pids": pids})


def engine_lock(value: str) -> None:
    db, settings_module = core("db").db, core("services.settings")
    # 5.x renamed get_engine_settings_for_update to get_engine_settings_table_for_update.
    for_update = (
        getattr(settings_module, "get_engine_settings_table_for_update", None)
        or settings_module.get_engine_settings_for_update
    )
    with db.database_scope():
        settings = core("services.processes").marshall_processes(for_update(), value == "true")
        assert settings is not None
        result({"global_lock": settings.global_lock})


def remove_job(job_id: str) -> None:
    with core("schedules.scheduler").get_scheduler_store() as store:
        store.remove_job(job_id)
    result({"removed": job_id})


def main(argv: list[str]) -> None:
    settings = core("settings").app_settings
    core("app").OrchestratorCore(base_settings=settings)  # what a project's main.py does first
    match argv:
        case ["add-api-schedules", payloads]:
            add_api_schedules(payloads)
        case ["write-processes", rows]:
            write_processes(rows)
        case ["engine-lock", value]:
            engine_lock(value)
        case ["remove-job", job_id]:
            remove_job(job_id)
        case _:
            raise SystemExit(f"unknown command {argv!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
