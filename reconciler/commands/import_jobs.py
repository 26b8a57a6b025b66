"""`schedules import`: schedules that exist only in the database → one schedule file the next reconcile adopts.

Who creates such schedules: orchestrator-core's REST API and UI (``POST /api/schedules`` → its scheduler's
``_add_scheduled_task``: a job whose func is `jobstate.ORCHESTRATOR_FUNC` with ``kwargs`` {workflow_name,
user_inputs}, plus a linker row — which may be missing, the two inserts are separate transactions). Every
such job that is readable and that no ledger owns becomes one entry of ``imported.yaml`` with
``schedule_id: <its id>``, so the next ``reconcile`` *adopts* the row in place (action ``adopt``: the
ledger row is written, the job row is left alone, so its id and next_run_time — an interval's phase —
are kept) instead of deleting it and creating a copy.

A decorator's job (another func) becomes a commented-out TODO entry with ``replaces: {job_id}``: once the
workflow its function starts is filled in (the row names only the function), the next reconcile takes the
row over — one job, its next run kept. `load-initial-schedule` writes the same entry from the decorator's
code. Unreadable rows and jobs a schedule file cannot express exactly are reported and never imported.
The database is opened read-only.

The file is meant to be committed and re-checked (``--check`` in CI finds schedules someone created in
the UI), so importing again must give the same bytes:

- entries are sorted by key, values are written by `yaml_writer`;
- an entry already in the file keeps its key: a job not adopted yet is written again from the database
  under that key; any other entry (adopted, completed, or written by hand) is carried over as it stands,
  with the comments above it — the file, not the database, is the truth for what reconcile owns;
- new keys come from the job's name (`legacy.slugify`), made unique against every key of the
  directory and of the ledger.

The command in three steps, pure in the middle, as `load_initial`: read (database, directory) →
`build_import` → `load_initial.write_outputs` (refuse a changed file without ``--force``; ``--check``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from reconciler import legacy, store, triggers, yaml_writer
from reconciler.commands.load_initial import Level, OutputFile, ReportLine, Result, shown_path, write_outputs
from reconciler.jobstate import ORCHESTRATOR_FUNC, ORCHESTRATOR_FUNCS
from reconciler.loader import LoadedFile, load_file, schedule_files
from reconciler.problems import Severity
from reconciler.spec import (
    DEFAULT_COALESCE,
    DEFAULT_MAX_INSTANCES,
    DEFAULT_MISFIRE_GRACE_TIME,
    DEFAULT_USER_INPUTS,
    ScheduleSpec,
)
from reconciler.yaml_writer import Entry

DEFAULT_OUT = Path("schedules.d")
DEFAULT_FILENAME = "imported.yaml"
ORIGIN_PREFIX = "imported from apscheduler_jobs id="

EXIT_OK = 0
EXIT_FAILED = 1  # database unusable, a file would change (--check), or a changed file was not overwritten

HEADER = (
    "Schedules that existed only in the database (created through orchestrator-core's API or UI),",
    "written by `schedules import`. `schedule_id` makes the next `schedules reconcile` adopt each job in place",
    "(same id, same next run); from then on this file is what is scheduled: change them here, not in the UI.",
)


class NotImportable(ValueError):
    """A job a schedule file cannot express exactly; the message says why (it is reported, not imported)."""


@dataclass(frozen=True)
class ImportedJob:
    """One job turned into schedule-file fields (everything but the key)."""

    job_id: str
    fields: dict[str, Any]
    comments: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def key_hint(self) -> str:
        """What the key is derived from: the job's name, else its workflow."""
        return str(self.fields.get("name") or self.fields["workflow_name"])


@dataclass(frozen=True)
class DeclaredEntry:
    """A schedule already written in a file of the directory, read leniently (no validation)."""

    fields: dict[str, Any]
    comments: tuple[str, ...]
    where: str  # path:line, for messages

    @property
    def key(self) -> str | None:
        key = self.fields.get("key")
        return key if isinstance(key, str) else None

    @property
    def schedule_id(self) -> str | None:
        value = self.fields.get("schedule_id")
        return value if isinstance(value, str) else None

    @property
    def replaces_job_id(self) -> str | None:
        value = self.fields.get("replaces")
        job_id = value.get("job_id") if isinstance(value, dict) else None
        return job_id if isinstance(job_id, str) else None


@dataclass
class Directory:
    """What the output directory already declares: the output file's entries and everyone else's."""

    target_exists: bool = False
    target_entries: list[DeclaredEntry] = field(default_factory=list)
    target_problem: str | None = None  # the output file exists but could not be read
    elsewhere: list[DeclaredEntry] = field(default_factory=list)


@dataclass
class ImportPlan:
    """The file to write and the report: the pure result of `build_import`."""

    entries: list[Entry] = field(default_factory=list)
    lines: list[ReportLine] = field(default_factory=list)
    imported: int = 0
    managed: int = 0
    skipped: int = 0
    carried: int = 0


# ------------------------------------------------------------------------------------------ one job


def job_fields(state: Mapping[str, Any], *, now: datetime) -> tuple[dict[str, Any], list[str]]:
    """The schedule-file fields (without ``key``) of a decoded orchestrator-core job, and notes about it.

    Raises `NotImportable` when a file cannot express the job exactly: `reconcile` would then rewrite the
    row (or refuse the whole plan), which is not what "adopt in place" promises.
    """
    notes: list[str] = []
    if tuple(state.get("args") or ()):
        raise NotImportable("it passes positional args to its function, which a schedule cannot")
    kwargs = state.get("kwargs")
    if not isinstance(kwargs, Mapping):
        raise NotImportable("its kwargs are not a mapping")
    extra = sorted(str(k) for k in kwargs if k not in ("workflow_name", "user_inputs"))
    if extra:
        raise NotImportable(f"its kwargs also pass {', '.join(extra)}, which a schedule cannot")
    workflow_name = kwargs.get("workflow_name")
    if not isinstance(workflow_name, str) or not workflow_name:
        raise NotImportable("its kwargs name no workflow_name")
    user_inputs = kwargs.get("user_inputs")
    if user_inputs is not None and not (
        isinstance(user_inputs, list)
        and all(isinstance(x, dict) and all(isinstance(k, str) for k in x) for x in user_inputs)
    ):
        raise NotImportable("its user_inputs are not a list of mappings")
    if user_inputs is None:
        # run_start_workflow_scheduler_task(workflow_name, user_inputs=None): the file's default [{}] is what
        # the API would have stored; adopting rewrites the row's kwargs once (next_run_time kept).
        notes.append("its kwargs have no user_inputs; the default [{}] is written (adopting sets it)")
    misfire = state.get("misfire_grace_time")
    if misfire is None:
        raise NotImportable("misfire_grace_time is None (run however late), which a schedule file cannot express")
    coalesce = state.get("coalesce")
    max_instances = state.get("max_instances")
    if not isinstance(misfire, int) or isinstance(misfire, bool) or misfire < 1:
        raise NotImportable(f"misfire_grace_time {misfire!r} is not a whole number of seconds")
    if not isinstance(coalesce, bool):
        raise NotImportable(f"coalesce {coalesce!r} is not true or false")
    if not isinstance(max_instances, int) or isinstance(max_instances, bool) or max_instances < 1:
        raise NotImportable(f"max_instances {max_instances!r} is not a positive whole number")
    if state.get("executor", "default") != "default":
        notes.append(f"executor {state.get('executor')!r} becomes 'default' when reconcile adopts it")
    try:
        trigger, trigger_kwargs, timezone = triggers.spec_from_trigger(state["trigger"])
    except triggers.TriggerError as exc:
        raise NotImportable(f"its trigger cannot be written as a schedule: {exc.message}") from None
    name = state.get("name")
    fields: dict[str, Any] = {
        "workflow_name": workflow_name,
        "name": name if isinstance(name, str) and name else None,
        "trigger": trigger,
        "trigger_kwargs": trigger_kwargs,
        "timezone": timezone,
        # Only what differs from the defaults: absent means default, and a short entry reads better.
        "user_inputs": user_inputs if user_inputs not in (None, list(DEFAULT_USER_INPUTS)) else None,
        "misfire_grace_time": misfire if misfire != DEFAULT_MISFIRE_GRACE_TIME else None,
        "coalesce": coalesce if coalesce != DEFAULT_COALESCE else None,
        "max_instances": max_instances if max_instances != DEFAULT_MAX_INSTANCES else None,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    # The file must pass `schedules validate`, or the next reconcile would refuse every schedule.
    problems = triggers.trigger_problems(trigger, trigger_kwargs, timezone, now=now)
    errors = [message for severity, _, message in problems if severity is Severity.ERROR]
    if errors:
        raise NotImportable(f"its trigger would not validate: {'; '.join(errors)}")
    try:
        ScheduleSpec.model_validate({"key": "probe", "schedule_id": "probe", **fields})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in first["loc"])
        raise NotImportable(f"{where}: {first['msg']}") from None
    if state.get("next_run_time") is None:
        notes.append(
            "the job is paused (next_run_time is empty); adopting keeps it paused until its trigger changes "
            "(enabled: false would delete the row instead)"
        )
    return fields, notes


def _origin_comments(
    job: store.LiveJob, fields: Mapping[str, Any], workflows: Mapping[str, store.Workflow]
) -> list[str]:
    comments = [f"{ORIGIN_PREFIX}{job.id}"]
    workflow = workflows.get(fields["workflow_name"])
    if not job.workflow_ids:
        comments.append("no linker row in workflows_apscheduler_jobs: reconcile adds it (as the API would have)")
    elif workflow is not None and job.workflow_ids != (workflow.workflow_id,):
        comments.append(
            f"linked to workflow id(s) {', '.join(job.workflow_ids)}, not to {fields['workflow_name']}: "
            "reconcile relinks it"
        )
    return comments


# ------------------------------------------------------------------------------------------ the whole file


def build_import(
    live: store.LiveState,
    directory: Directory,
    *,
    func: str = ORCHESTRATOR_FUNC,
    now: datetime,
) -> ImportPlan:
    """Which jobs to import under which keys, which entries to carry over, and the report. Pure."""
    result = ImportPlan()
    owned = {e.schedule_id: e for e in live.ledger}
    workflows = {w.name: w for w in live.workflows if not w.deleted}
    deleted = {w.name for w in live.workflows if w.deleted}
    declared_elsewhere = {d.schedule_id: d for d in directory.elsewhere if d.schedule_id}

    replaced = {
        d.replaces_job_id: d.where for d in (*directory.elsewhere, *directory.target_entries) if d.replaces_job_id
    }
    stubs: list[tuple[str, dict[str, Any], list[str]]] = []
    importable: dict[str, ImportedJob] = {}
    for job in sorted(live.jobs, key=lambda j: j.id):
        if job.id in owned:
            result.managed += 1
            continue
        if job.state is None:
            result.lines.append(_skip(job.id, f"unreadable job_state ({job.unreadable}); left alone"))
            result.skipped += 1
            continue
        state = job.state
        if state["func"] != func and state["func"] not in ORCHESTRATOR_FUNCS:  # both generations' are the API's
            if job.id in replaced:
                result.lines.append(_skip(job.id, f"decorator job, already taken over by {replaced[job.id]}"))
                result.skipped += 1
                continue
            stub = _decorator_stub(job.id, state)
            if stub is None:
                result.lines.append(
                    _skip(
                        job.id,
                        f"decorator job (func {state['func']}) whose trigger no schedule file can express; "
                        "migrate its decorator with `schedules load-initial-schedule`",
                    )
                )
                result.skipped += 1
                continue
            stubs.append(stub)
            result.lines.append(
                ReportLine(
                    Level.WARNING,
                    f"decorator job {job.id} (func {state['func']}): written as a TODO stub with `replaces:`; "
                    "fill in the workflow its function starts (or run `schedules load-initial-schedule --from` "
                    "on its code), and the next reconcile takes the row over: one job, next run kept",
                )
            )
            result.skipped += 1
            continue
        if job.id in declared_elsewhere:
            other = declared_elsewhere[job.id]
            result.lines.append(_skip(job.id, f"already declared at {other.where} (key {other.key})"))
            result.skipped += 1
            continue
        try:
            fields, notes = job_fields(state, now=now)
        except NotImportable as exc:
            result.lines.append(_skip(job.id, f"{exc}; left alone"))
            result.skipped += 1
            continue
        workflow_name = fields["workflow_name"]
        if workflow_name not in workflows:
            # reconcile refuses a whole plan that names a missing workflow: never write one.
            reason = "is soft-deleted" if workflow_name in deleted else "is not in the workflows table"
            result.lines.append(_skip(job.id, f"its workflow '{workflow_name}' {reason}; left alone"))
            result.skipped += 1
            continue
        importable[job.id] = ImportedJob(job.id, fields, tuple(_origin_comments(job, fields, workflows)), tuple(notes))

    # Keys: an entry already in the file keeps its own; new ones avoid every key in sight.
    taken = {d.key for d in (*directory.elsewhere, *directory.target_entries) if d.key}
    # A ledger key no file declares any more is still the planner's: reusing it would make reconcile
    # update that key's old job and ignore our schedule_id, instead of adopting.
    taken |= {e.key for e in live.ledger}
    keyed: list[tuple[str, Entry]] = []
    for declared in directory.target_entries:
        sid = declared.schedule_id
        if sid is not None and sid in importable and declared.key:
            # Not adopted yet: written again from the database (an API-side change shows up as a diff).
            again = importable.pop(sid)
            keyed.append((declared.key, _entry(declared.key, again)))
            result.imported += 1
            result.lines.extend(_imported_lines(declared.key, again))
        else:
            keyed.append((declared.key or "", Entry(declared.fields, comments=declared.comments)))
            result.carried += 1
    for new in sorted(importable.values(), key=lambda j: (legacy.slugify(j.key_hint), j.job_id)):
        key = legacy.unique_key(legacy.slugify(new.key_hint), taken)
        taken.add(key)
        keyed.append((key, _entry(key, new)))
        result.imported += 1
        result.lines.extend(_imported_lines(key, new))
    for hint, fields, comments in stubs:
        key = legacy.unique_key(legacy.slugify(hint), taken)
        taken.add(key)
        keyed.append((key, Entry({"key": key, **fields}, comments=comments, commented_out=True)))
    keyed.sort(key=lambda item: item[0])
    result.entries = [entry for _, entry in keyed]
    return result


def _decorator_stub(job_id: str, state: Mapping[str, Any]) -> tuple[str, dict[str, Any], list[str]] | None:
    """A decorator's row as a TODO entry that takes it over (`replaces:`) once its workflow is filled in.

    The row names a function, not a workflow, and the function is never imported: which workflow it starts
    is for the user (or `load-initial-schedule`, which reads the function's body) to say.
    """
    try:
        trigger, trigger_kwargs, timezone = triggers.spec_from_trigger(state["trigger"])
    except triggers.TriggerError:
        return None
    name = state.get("name") if isinstance(state.get("name"), str) else None
    fields: dict[str, Any] = {
        "replaces": {"job_id": job_id},
        "workflow_name": legacy.TODO,
        "name": name or None,
        "trigger": trigger,
        "trigger_kwargs": trigger_kwargs,
        "timezone": timezone,
    }
    comments = [
        f"{ORIGIN_PREFIX}{job_id} (a decorator's job: func {state['func']})",
        "TODO: the workflow that function starts; then uncomment, and delete the decorator from the code",
    ]
    return name or job_id, {k: v for k, v in fields.items() if v is not None}, comments


def _entry(key: str, job: ImportedJob) -> Entry:
    return Entry({"key": key, "schedule_id": job.job_id, **job.fields}, comments=job.comments)


def _skip(job_id: str, reason: str) -> ReportLine:
    return ReportLine(Level.WARNING, f"not imported: job {job_id}: {reason}")


def _imported_lines(key: str, job: ImportedJob) -> list[ReportLine]:
    what = f"{job.fields['name']!r}, " if "name" in job.fields else ""
    lines = [ReportLine(Level.INFO, f"import job {job.job_id} as '{key}' ({what}{job.fields['workflow_name']})")]
    lines.extend(ReportLine(Level.WARNING, f"warning: {key}: {note}") for note in job.warnings)
    return lines


# ------------------------------------------------------------------------------------------ the directory


def read_directory(out_dir: Path, target: Path, display: Callable[[Path], str]) -> Directory:
    """The entries of every schedule file below `out_dir`, read leniently (a broken file is no reason
    to refuse an import; `validate` reports it). Only the output file must be readable, or its entries
    could not be carried over."""
    found = Directory()
    if not out_dir.is_dir():
        return found
    resolved_target = Path(os.path.abspath(target))
    for path in schedule_files(out_dir):
        is_target = Path(os.path.abspath(path)) == resolved_target
        loaded = load_file(path, display(path))
        entries, problem = _entries(path, loaded)
        if is_target:
            found.target_exists = True
            found.target_entries = entries
            found.target_problem = problem
        else:
            found.elsewhere.extend(entries)
    if target.exists() and not found.target_exists:
        found.target_exists = True  # e.g. a directory in its place: writing it reports why
    return found


def _entries(path: Path, loaded: LoadedFile) -> tuple[list[DeclaredEntry], str | None]:
    doc = loaded.value
    if doc is None:
        first = loaded.problems[0].message if loaded.problems else "unreadable"
        return [], f"{loaded.path}: {first}"
    items = doc.get("schedules") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return [], f"{loaded.path}: has no `schedules:` list"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    entries: list[DeclaredEntry] = []
    problem = None
    for index, item in enumerate(items):
        line, _ = loaded.positions.locate(("schedules", index))
        if not isinstance(item, dict) or not all(isinstance(k, str) for k in item):
            problem = f"{loaded.path}:{line}: an entry that is not a mapping cannot be carried over"
            continue
        entries.append(DeclaredEntry(dict(item), tuple(_comments_above(lines, line)), f"{loaded.path}:{line}"))
    return entries, problem


def _comments_above(lines: Sequence[str], line: int) -> list[str]:
    """The comment lines directly above 1-based `line` (up to a blank or non-comment line), as text."""
    found: list[str] = []
    index = line - 2
    while index >= 0:
        text = lines[index].strip()
        if not text.startswith("#"):
            break
        body = text[1:]
        found.append(body[1:] if body.startswith(" ") else body)
        index -= 1
    return list(reversed(found))


# ------------------------------------------------------------------------------------------ the command


def run(
    out: Path = DEFAULT_OUT,
    db_url: str = store.DEFAULT_DB_URL,
    *,
    filename: str = DEFAULT_FILENAME,
    force: bool = False,
    check: bool = False,
    func: str = ORCHESTRATOR_FUNC,
    now: datetime | None = None,
    cwd: Path | None = None,
) -> Result:
    """Write ``out/filename`` for the database's API-created schedules; see the module docstring.

    Exit code 0, or 1 when the database cannot be read, when an existing file that differs was not
    overwritten (no `force`), or with `check` when the file would be created or changed. Rows that are
    not imported are reported but do not fail the command.
    """
    base = Path(os.path.abspath(cwd or Path.cwd()))

    def display(path: Path) -> str:
        return shown_path(path, base)

    result = Result(EXIT_OK)
    moment = now or datetime.now(UTC)
    out_dir = base / out
    target = out_dir / filename
    engine = store.connect(db_url, read_only=True)
    try:
        with engine.connect() as conn, conn.begin():
            if not store.has_schedule_tables(conn):
                message = store.missing_tables_message(store.target_of(conn))
                result.add(ReportLine(Level.ERROR, f"error: {message}"))
                result.exit_code = EXIT_FAILED
                return result
            live = store.read_live_state(conn)
    except SQLAlchemyError as exc:
        result.add(ReportLine(Level.ERROR, f"error: database: {store.describe_db_error(exc)}"))
        result.exit_code = EXIT_FAILED
        return result
    finally:
        engine.dispose()

    directory = read_directory(out_dir, target, display)
    plan = build_import(live, directory, func=func, now=moment)
    result.add_all(plan.lines)
    if directory.target_problem:
        result.add(ReportLine(Level.WARNING, f"warning: {directory.target_problem}; such entries are not carried over"))
    if not plan.entries and not directory.target_exists:
        result.add(ReportLine(Level.INFO, f"nothing to import; {display(target)} not written"))
        result.add(_summary(len(live.jobs), plan))
        return result
    text = yaml_writer.render_file(plan.entries, schema_ref=yaml_writer.schema_reference(out_dir), header=HEADER)
    result.files = [OutputFile(filename, text, len(plan.entries), 0)]
    if write_outputs(result, result.files, out_dir, display, force=force, check=check):
        result.exit_code = EXIT_FAILED
    result.add(_summary(len(live.jobs), plan))
    return result


def _summary(total: int, plan: ImportPlan) -> ReportLine:
    parts = [f"{total} job(s) in the database", f"{plan.imported} imported"]
    if plan.managed:
        parts.append(f"{plan.managed} already managed by reconciler")
    if plan.skipped:
        parts.append(f"{plan.skipped} not imported (see above)")
    if plan.carried:
        parts.append(f"{plan.carried} entr{'y' if plan.carried == 1 else 'ies'} of the file kept as written")
    return ReportLine(Level.INFO, ", ".join(parts))
