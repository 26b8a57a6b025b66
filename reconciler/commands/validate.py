"""`schedules validate`: a directory of schedule files → the desired set, or every problem in it.

Each schedule is checked on its own, so one broken entry never hides the problems of the others, and
every problem carries the file position it came from. Nothing here touches a database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler import forked, triggers, workflow_commands
from reconciler.exit_codes import CommandResult
from reconciler.heap import collector_paused
from reconciler.loader import LoadedFile, PathKey, find_schedule_files, load_file
from reconciler.problems import Problem, Severity, error, warning
from reconciler.spec import (
    TRIGGER_NAMES,
    DesiredSchedule,
    FileDefaults,
    ScheduleSpec,
    SourceLocation,
    resolve,
)
from reconciler.suggest import did_you_mean, missing_workflow

KEY_RULE = "lowercase letters, digits, '.', '_' and '-', at most 100, starting with a letter or digit"
"""spec.KEY_PATTERN in words."""

_TOP_LEVEL_KEYS = ("defaults", "schedules")


@dataclass
class DesiredSet:
    """What a schedules directory asks for, and what is wrong with it."""

    schedules: list[DesiredSchedule] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.is_error for p in self.problems)


def display_path(path: Path) -> str:
    """The path as a user (and a GitHub annotation) expects it: relative to the working directory."""
    rel = os.path.relpath(path)
    return path.as_posix() if rel.startswith("..") else Path(rel).as_posix()


def _pydantic_problems(
    exc: ValidationError, loaded: LoadedFile, base: PathKey, model: type[BaseModel]
) -> list[Problem]:
    found: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc: PathKey = (*base, *err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            line, col = loaded.positions.locate(loc, prefer_key=True)
            allowed = ", ".join(model.model_fields) if len(err["loc"]) == 1 else ""
            typed = str(err["loc"][-1])
            hint = did_you_mean(typed, model.model_fields) or (f" (allowed: {allowed})" if allowed else "")
            message = f"unknown key '{typed}'{hint}"
        elif kind == "missing":
            line, col = loaded.positions.locate(loc[:-1])
            message = f"missing required key '{err['loc'][-1]}'"
        elif kind == "string_pattern_mismatch" and err["loc"][-1] in ("key", "moved_from"):
            line, col = loaded.positions.locate(loc)
            message = f"{err['loc'][-1]}: {err['input']!r} is not a valid key: {KEY_RULE}"
        else:
            line, col = loaded.positions.locate(loc)
            field_name = ".".join(str(x) for x in err["loc"])
            message = f"{field_name}: {err['msg']}"
            if kind == "literal_error" and err["loc"] == ("trigger",):
                near = did_you_mean(str(err["input"]), TRIGGER_NAMES)
                message = f"trigger: unknown trigger {err['input']!r}{near or ''} (one of {', '.join(TRIGGER_NAMES)})"
        found.append(error(loaded.path, line, col, message))
    return found


def _check_timezone(name: str, loaded: LoadedFile, loc: PathKey) -> Problem | None:
    # The triggers' own rule (one rule: localtime, Factory and right/… are refused there too), at the value's line.
    try:
        triggers.zone_from_name(name)
    except triggers.TriggerError as exc:
        line, col = loaded.positions.locate(loc)
        return error(loaded.path, line, col, exc.message)
    return None


PAST_RUN_DATE = "is in the past: it would never run"


def _check_file(
    loaded: LoadedFile, now: datetime, out: DesiredSet, completed: Container[str] = frozenset()
) -> list[tuple[DesiredSchedule, PathKey]]:
    """Validate one parsed file; returns its resolved schedules with their path in the file."""
    doc = loaded.value
    if not isinstance(doc, dict):
        out.problems.append(error(loaded.path, 1, 1, "top level must be a mapping with a 'schedules:' list"))
        return []
    for key in doc:
        if key not in _TOP_LEVEL_KEYS:
            line, col = loaded.positions.locate((key,), prefer_key=True)
            out.problems.append(error(loaded.path, line, col, f"unknown key '{key}' (allowed: defaults, schedules)"))
    defaults: FileDefaults | None = None
    defaults_ok = True
    if doc.get("defaults") is not None:
        try:
            defaults = FileDefaults.model_validate(doc["defaults"])
        except ValidationError as exc:
            defaults_ok = False
            out.problems.extend(_pydantic_problems(exc, loaded, ("defaults",), FileDefaults))
        if defaults and defaults.timezone:
            bad = _check_timezone(defaults.timezone, loaded, ("defaults", "timezone"))
            if bad:
                defaults_ok = False
                out.problems.append(bad)
    items = doc.get("schedules")
    if items is None:
        if "schedules" not in doc:
            out.problems.append(error(loaded.path, 1, 1, "missing required key 'schedules'"))
        return []
    if not isinstance(items, list):
        line, col = loaded.positions.locate(("schedules",))
        out.problems.append(error(loaded.path, line, col, "schedules: must be a list"))
        return []
    resolved: list[tuple[DesiredSchedule, PathKey]] = []
    for i, item in enumerate(items):
        base: PathKey = ("schedules", i)
        try:
            spec = ScheduleSpec.model_validate(item)
        except ValidationError as exc:
            out.problems.extend(_pydantic_problems(exc, loaded, base, ScheduleSpec))
            continue
        if not defaults_ok:
            continue
        line, col = loaded.positions.locate(base)
        desired = resolve(spec, defaults, SourceLocation(loaded.path, line, col))
        tz_loc: PathKey = (*base, "timezone") if spec.timezone else ("defaults", "timezone")
        if spec.timezone:
            bad = _check_timezone(spec.timezone, loaded, tz_loc)
            if bad:
                out.problems.append(bad)
                continue
        problems = triggers.trigger_problems(desired.trigger, desired.trigger_kwargs, desired.timezone, now=now)
        past = [p for p in problems if p[1][-1:] == ("run_date",) and PAST_RUN_DATE in p[2]]
        if past and desired.key in completed:  # asked only here: a reader may fetch the keys on first use
            # A date schedule that already fired is complete (its row removed itself), not an error.
            problems = [p for p in problems if p not in past]
        for severity, where, message in problems:
            loc: PathKey = (*base, "trigger_kwargs", *where) if where else (*base, "trigger")
            line, col = loaded.positions.locate(loc)
            make = error if severity is Severity.ERROR else warning
            out.problems.append(make(loaded.path, line, col, f"{desired.key}: {message}"))
        if any(s is Severity.ERROR for s, _, _ in problems):
            continue
        resolved.append((desired, base))
    return resolved


# From this many files on, a command's own helper child pays for its fork (forked.Helpers).
HELPED_FILES = 64


@dataclass(frozen=True)
class CheckedFile:
    """One schedule file parsed and checked on its own: plain data (a helper child may have made it)."""

    path: str
    problems: list[Problem]
    # (schedule, where its key is, where its moved_from is when it names the schedule's own key)
    schedules: list[tuple[DesiredSchedule, tuple[int, int], tuple[int, int] | None]]


def check_file(path: Path, now: datetime, completed: Container[str] = frozenset()) -> CheckedFile:
    """Parse and check one schedule file: its problems and its resolved schedules, with their positions."""
    loaded = load_file(path, display_path(path))
    sink = DesiredSet(problems=list(loaded.problems))
    found: list[tuple[DesiredSchedule, tuple[int, int], tuple[int, int] | None]] = []
    if loaded.value is not None:
        for desired, base in _check_file(loaded, now, sink, completed):
            moved_at = loaded.positions.locate((*base, "moved_from")) if desired.moved_from == desired.key else None
            found.append((desired, loaded.positions.locate((*base, "key")), moved_at))
    return CheckedFile(loaded.path, sink.problems, found)


FileHelper = Callable[[forked.BothEnds[CheckedFile]], Callable[[], dict[int, CheckedFile] | None] | None]


class _ParentOnly:
    """The completed keys in a helper child: asking them is the parent's (its database connection)."""

    def __contains__(self, key: object) -> bool:
        raise forked.NotHere


def load_desired(
    directory: Path,
    *,
    now: datetime,
    completed: Container[str] = frozenset(),
    follow_symlinks_outside: bool = False,
    helper: FileHelper | None = None,
    prepare: Callable[[DesiredSchedule], object] | None = None,
) -> DesiredSet:
    """Read and check every schedule file below `directory` (no database needed).

    `completed`: keys whose `date` schedule the ledger shows as already fired; their past run_date is
    not an error (reconcile and `validate --db` know them, a plain `validate` cannot). Asked only about a
    schedule whose run_date has passed, so it may read the database on first use.
    `follow_symlinks_outside`: read symlinks whose target is outside `directory` instead of failing.
    `helper`: given the files as shared work, starts a child checking them from the end (the machine's
    other core: forked.BothEnds) and returns how to wait for its part, or None. The result is the same.
    `prepare`: called with each schedule as its file is checked, by whichever process checks it (reconcile
    makes the digest's repr there, so that work is shared between the cores too, not left for after).
    """
    out = DesiredSet()
    if not directory.is_dir():
        out.problems.append(error(display_path(directory), 0, 0, "schedules directory does not exist"))
        return out
    first_place: dict[str, SourceLocation] = {}
    found = find_schedule_files(directory, follow_symlinks_outside=follow_symlinks_outside, display=display_path)
    out.problems.extend(found.problems)
    paths, parent = found.paths, os.getpid()

    def check(i: int) -> CheckedFile:
        checked = check_file(paths[i], now, completed if os.getpid() == parent else _ParentOnly())
        if prepare is not None:
            for desired, _, _ in checked.schedules:
                prepare(desired)
        return checked

    shared = forked.BothEnds(len(paths), check)
    # The parse makes ~60 objects a schedule, nearly all acyclic and alive until the command ends: the
    # collector would rescan them again and again (~20 ms of 10,000 schedules) to free next to nothing.
    with collector_paused():
        checked_files = shared.front(helper(shared) if helper is not None else None)
    for checked in checked_files:
        out.files.append(checked.path)
        out.problems.extend(checked.problems)
        for desired, (line, col), moved_at in checked.schedules:
            if moved_at is not None:  # reported where the mistake is: at moved_from
                message = f"{desired.key}: moved_from names the schedule's own key; drop it, or name the former key"
                out.problems.append(error(checked.path, *moved_at, message))
                continue
            earlier = first_place.get(desired.key)
            if earlier is not None:
                out.problems.append(
                    error(
                        checked.path,
                        line,
                        col,
                        f"key '{desired.key}' is used twice: here and at {earlier.path}:{earlier.line}",
                    )
                )
                continue
            first_place[desired.key] = SourceLocation(checked.path, line, col)
            out.schedules.append(desired)
    _check_renames(out, first_place)
    out.problems.sort(key=lambda p: (p.path, p.line, p.column))
    return out


def _check_renames(out: DesiredSet, places: dict[str, SourceLocation]) -> None:
    sources: dict[str, str] = {}
    for s in out.schedules:
        if s.moved_from is None:
            continue
        where = places[s.key]
        if s.moved_from in places:
            out.problems.append(
                error(
                    where.path,
                    where.line,
                    where.column,
                    f"{s.key}: moved_from '{s.moved_from}' is still declared at {places[s.moved_from]}",
                )
            )
        elif s.moved_from in sources:
            out.problems.append(
                error(
                    where.path,
                    where.line,
                    where.column,
                    f"{s.key}: '{s.moved_from}' is already moved to '{sources[s.moved_from]}'",
                )
            )
        sources[s.moved_from] = s.key


def format_problems(problems: Sequence[Problem], fmt: str) -> str:
    """Problems as text lines, a JSON list, or GitHub workflow annotations."""
    if fmt == "json":
        import json

        return json.dumps(
            [
                {
                    "path": p.path,
                    "line": p.line,
                    "column": p.column,
                    "severity": p.severity.value,
                    "message": p.message,
                }
                for p in problems
            ],
            indent=2,
        )
    if fmt == "github":
        return "\n".join(
            workflow_commands.command(
                p.severity.value, p.message, file=p.path, line=max(p.line, 1), col=max(p.column, 1)
            )
            for p in problems
        )
    return "\n".join(workflow_commands.visible(str(p)) for p in problems)


def summary_line(desired: DesiredSet) -> str:
    """One line: how many schedules and files, how many errors and warnings."""
    errors = sum(1 for p in desired.problems if p.is_error)
    warnings = len(desired.problems) - errors
    return (
        f"{len(desired.schedules)} schedule(s) in {len(desired.files)} file(s): "
        f"{errors} error(s), {warnings} warning(s)"
    )


def workflow_problems(schedules: Sequence[DesiredSchedule], workflows: Sequence[Any]) -> list[Problem]:
    """Each schedule's workflow must be a `workflows` row that is not soft-deleted (with --db)."""
    live = {w.name: w for w in workflows if not w.deleted}
    deleted = {w.name for w in workflows if w.deleted}
    found: list[Problem] = []
    for s in schedules:
        src = s.source or SourceLocation("?", 0, 0)
        wf = live.get(s.workflow_name)
        if wf is None:
            message = missing_workflow(s.key, s.workflow_name, live, deleted)
            found.append(error(src.path, src.line, src.column, message))
        elif not wf.is_task:
            found.append(
                warning(src.path, src.line, src.column, f"{s.key}: workflow '{s.workflow_name}' is not a task")
            )
    return found


def inputs_problems(schedules: Sequence[DesiredSchedule]) -> list[Problem]:
    """On orchestrator-core 4.x (with --db), non-default user_inputs: its scheduler task takes none."""
    from reconciler.plan import default_user_inputs, inputs_on_4x

    found = []
    for s in schedules:
        if not default_user_inputs(s.user_inputs):
            src = s.source or SourceLocation("?", 0, 0)
            message = inputs_on_4x(replace(s, source=None))
            found.append(error(src.path, src.line, src.column, message))
    return found


def run_validate(
    directory: Path,
    *,
    db_url: str | None,
    fmt: str,
    namespace: str = "default",
    follow_symlinks_outside: bool = False,
    orchestrator_version: str | None = None,
) -> CommandResult:
    """The `validate` command: exit code, stdout lines, stderr lines."""

    workflows: list[Any] | None = None
    completed: frozenset[str] = frozenset()
    generation = 5
    if db_url:
        from sqlalchemy.exc import SQLAlchemyError

        from reconciler import orchestrator_versions, store

        engine = store.connect(db_url, read_only=True)
        try:
            with engine.connect() as conn, conn.begin():
                if not store.is_sqlite(conn):  # the embedded SQLite default gets its tables on the first apply
                    store.require_schedule_tables(conn)
                generation = orchestrator_versions.detect(conn, orchestrator_version).major
                workflows = store.read_workflows(conn) if store.has_schedule_tables(conn) else []
                completed = store.absent_keys(conn, namespace)
        except SQLAlchemyError as exc:
            return CommandResult(1, err=[f"error: database: {store.describe_db_error(exc)}"])
        finally:
            engine.dispose()
    desired = load_desired(
        directory, now=datetime.now(UTC), completed=completed, follow_symlinks_outside=follow_symlinks_outside
    )
    if workflows is not None and desired.ok:
        desired.problems.extend(workflow_problems(desired.schedules, workflows))
    if generation < 5 and desired.ok:
        desired.problems.extend(inputs_problems(desired.schedules))
    code = 0 if desired.ok else 1
    out: list[str] = []
    if fmt == "json":
        out.append(format_problems(desired.problems, "json"))
        return CommandResult(code, out)
    if desired.problems:
        out.append(format_problems(desired.problems, fmt))
    if fmt == "text":
        out.append(summary_line(desired))
    return CommandResult(code, out)
