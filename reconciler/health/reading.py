"""The database side of `health`: jobs, ledger, workflows, processes and the engine's pause flag, read-only.

Everything goes through a `reads.Reader` (plain SQL over the DB-API connection): the command opens a bare
read-only psycopg / sqlite3 connection, as a dry run does, so SQLAlchemy is not even imported (its import and
engine took a fifth of a 10,000-schedule report); a URL only SQLAlchemy understands reads through
`Reader.of(conn)` on its engine. Job rows are read raw by `reads.read_jobs`, which decodes them with the
allow-list unpickler (`jobstate`), never through APScheduler's SQLAlchemyJobStore (which deletes rows it
cannot restore). `processes` and `engine_settings` are orchestrator-core's own tables; a database without them
(the embedded SQLite default) yields ``None`` for them, and the report says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler import reads, triggers
from reconciler.health.core import SCHEDULER_USER, Observations, ProcessRun, ScheduleInput
from reconciler.jobstate import ORCHESTRATOR_FUNC
from reconciler.state import LedgerEntry, LiveJob

# The scheduler's start function in each orchestrator-core generation (5.x moved the package under `core`).
SCHEDULER_FUNCS = frozenset({ORCHESTRATOR_FUNC, "orchestrator.schedules.service:run_start_workflow_scheduler_task"})


@dataclass(frozen=True)
class HealthData:
    """One consistent read: the schedules to judge and what the database observed."""

    schedules: tuple[ScheduleInput, ...]
    seen: Observations


def _instant(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite hands timestamps back as text
        value = datetime.fromisoformat(value)
    moment: datetime = value
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _column_time(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def read_processes(
    reader: reads.Reader, since: datetime, until: datetime, *, user: str = SCHEDULER_USER
) -> list[ProcessRun]:
    """`processes` rows created by the scheduler's user in ``[since, until]``, with their workflow's name."""
    pid = "p.pid::text" if reader.postgres else "p.pid"  # the server's uuid text: no UUID object per row
    rows = reader.rows(
        f"SELECT {pid}, w.name, p.last_status, p.started_at, p.last_modified_at, p.failed_reason"
        " FROM processes p JOIN workflows w ON w.workflow_id = p.workflow_id"
        " WHERE p.created_by = ? AND p.started_at >= ? AND p.started_at <= ?",
        (user, since, until),
    )
    return [
        ProcessRun(str(pid), name, str(status), _instant(started), _instant(modified) if modified else None, reason)
        for pid, name, status, started, modified, reason in rows
    ]


def read_engine_paused(reader: reads.Reader) -> bool:
    """orchestrator-core's `engine_settings.global_lock`: the engine is paused (no process runs)."""
    return any(bool(row[0]) for row in reader.rows("SELECT global_lock FROM engine_settings"))


def _job_input(job: LiveJob, entry: LedgerEntry | None, workflow_names: dict[str, str]) -> ScheduleInput:
    key = entry.key if entry is not None else job.id
    linked = next((workflow_names[w] for w in job.workflow_ids if w in workflow_names), None)
    state = job.state  # decoded by the store as it read the row
    if state is None:
        return ScheduleInput(
            job_id=job.id,
            key=key,
            name="",
            workflow_name=entry.workflow_name if entry is not None else linked,
            source="unreadable",
            trigger=None,
            next_run_time=_column_time(job.next_run_time),
            error=job.unreadable or "job_state not read",
        )
    kwargs = state["kwargs"] if isinstance(state["kwargs"], dict) else {}
    named = kwargs.get("workflow_name")
    if entry is not None:
        source = "gitops"
    elif state["func"] in SCHEDULER_FUNCS and job.workflow_ids:
        source = "api"
    else:
        source = "decorator"
    grace = state["misfire_grace_time"]
    return ScheduleInput(
        job_id=job.id,
        key=key,
        name=str(state["name"] or ""),
        workflow_name=named if isinstance(named, str) else (entry.workflow_name if entry is not None else linked),
        source=source,
        trigger=state["trigger"],
        next_run_time=_column_time(job.next_run_time),
        misfire_grace_time=float(grace) if isinstance(grace, int | float) else None,
        coalesce=bool(state["coalesce"]),
        not_before=_instant(entry.applied_at) if entry is not None and entry.applied_at is not None else None,
    )


def _fired_dates(
    absent: Sequence[LedgerEntry], directory: Path | None, now: datetime
) -> tuple[list[ScheduleInput], list[str]]:
    """Managed `date` schedules whose row is gone (they fired), with their trigger from the files."""
    if not absent or directory is None or not directory.is_dir():
        return [], []
    from reconciler.commands.validate import load_desired

    loaded = load_desired(directory, now=now, completed=frozenset(e.key for e in absent))
    if not loaded.ok:
        return [], [f"{directory} does not validate: fired `date` schedules are not judged"]
    desired = {d.key: d for d in loaded.schedules}
    found = []
    for entry in absent:
        spec = desired.get(entry.key)
        if spec is None or spec.trigger != "date":
            continue
        trigger = triggers.build_trigger(spec.trigger, spec.trigger_kwargs, spec.timezone, now=now)
        found.append(
            ScheduleInput(
                job_id=entry.schedule_id,
                key=entry.key,
                name=spec.name or "",
                workflow_name=entry.workflow_name,
                source="gitops",
                trigger=trigger,
                next_run_time=None,
                misfire_grace_time=spec.misfire_grace_time,
                coalesce=spec.coalesce,
                row_present=False,
                not_before=_instant(entry.applied_at) if entry.applied_at is not None else None,
            )
        )
    return found, []


def read_health_data(
    reader: reads.Reader, *, since: datetime, now: datetime, directory: Path | None = None, early: timedelta
) -> tuple[HealthData, list[str]]:
    """Read everything `health` judges (call inside one read transaction); returns the data and notes for stderr."""
    names = reads.table_names(reader)
    if not names >= reads.SCHEDULE_TABLES:  # the same one line as every other command
        raise reads.MissingScheduleTables(reads.missing_tables_message(reader.target))
    workflows = reads.read_workflows(reader)
    workflow_names = {w.workflow_id: w.name for w in workflows}
    ledger = reads.read_ledger(reader)
    jobs = reads.read_jobs(reader)
    present = {job.id for job in jobs}
    by_id = {e.schedule_id: e for e in ledger}
    schedules = [_job_input(job, by_id.get(job.id), workflow_names) for job in jobs]
    absent = [e for e in ledger if e.enabled and e.schedule_id not in present]
    fired, notes = _fired_dates(absent, directory, now)
    schedules.extend(fired)
    runs = read_processes(reader, since - early, now) if "processes" in names else None
    paused = read_engine_paused(reader) if "engine_settings" in names else None
    seen = Observations(runs=runs, engine_paused=paused, workflows={w.name: w.deleted for w in workflows})
    return HealthData(tuple(schedules), seen), notes
