"""`schedules show-schedule`: every job in the database, whoever made it, read-only.

One line per `apscheduler_jobs` row (and per owned key whose row is missing): key (from the ledger),
name, workflow, trigger in words, next run in the schedule's own zone and in UTC, source
(gitops / api / decorator / unreadable) and drift.

Drift needs the declared state. With the schedules directory (default `schedules.d`, when it exists)
the real planner compares files, ledger and rows: `no`, `drift` (changed outside the reconciler),
`pending` (the files changed; reconcile would apply it), `row deleted`. Without it only the ledger's
row hash is there: a row still byte-identical to what reconcile wrote is `no`; one the scheduler has
moved on since cannot be told apart from an edit, and shows `?`.

Unlike orchestrator-core's `scheduler show-schedule`, a paused job (NULL next_run_time) is listed as
paused, and an unreadable row is listed instead of deleted.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from reconciler import orchestrator_versions, store, triggers
from reconciler.exit_codes import CommandResult
from reconciler.jobstate import ORCHESTRATOR_FUNCS
from reconciler.orchestrator_versions import VersionChoice
from reconciler.plan import Action, Change, PlanSettings, compute_plan
from reconciler.provenance import describe_entry
from reconciler.spec import DesiredSchedule
from reconciler.timetext import human_iso, human_time

FORMAT_VERSION = 1
UNKNOWN_DRIFT = "?"


@dataclass(frozen=True)
class ScheduleLine:
    """One job (or one owned key without a row) as show-schedule lists it."""

    id: str
    key: str | None
    namespace: str | None
    name: str | None
    workflow: str | None
    trigger: str | None
    next_run_local: str | None
    next_run_utc: str | None
    paused: bool
    source: str
    drift: str
    detail: str | None = None
    applied: str = ""  # where a managed schedule came from: path:line @ commit by author
    owner: str | None = None  # the source that applied it (ledger), e.g. github.com/org/repo:schedules.d
    # The next run as a person reads it, in the schedule's zone with UTC beside it (text only; not in JSON).
    next_run_shown: str | None = field(default=None, compare=False)

    @property
    def sort_key(self) -> tuple[int, str, str]:
        return (self.next_run_utc is None, self.next_run_utc or "", self.name or self.id)


def _local_text(moment: datetime) -> str:
    return f"{moment.strftime('%Y-%m-%d %H:%M:%S')} {moment.tzname() or ''}".strip()


def _drift_from_plan(change: Change | None) -> str:
    if change is None:
        return UNKNOWN_DRIFT
    if change.drift:
        return "drift"
    if change.action is Action.NOOP:
        return "no"
    if change.action is Action.DELETE:
        return "pending delete"
    return "pending"


def collect(
    live: store.LiveState,
    *,
    namespace: str,
    func: str,
    desired: Sequence[DesiredSchedule] | None,
    now: datetime,
    settings: PlanSettings | None = None,
) -> list[ScheduleLine]:
    """The lines for one read of the database (pure: no I/O). `settings`: the generation-settled ones."""
    ledger_by_id = {e.schedule_id: e for e in live.ledger}
    changes: dict[str, Change] = {}
    if desired is not None:
        planned = settings or PlanSettings(namespace=namespace, func=func)
        plan = compute_plan(desired, live, planned, now)
        changes = {c.schedule_id: c for c in plan.changes}
    lines: list[ScheduleLine] = []
    seen: set[str] = set()
    for job in live.jobs:
        seen.add(job.id)
        entry = ledger_by_id.get(job.id)
        utc = datetime.fromtimestamp(job.next_run_time, UTC) if job.next_run_time is not None else None
        if entry is not None:
            source = "gitops" if entry.namespace == namespace else f"gitops:{entry.namespace}"
        elif job.state is None:
            source = "unreadable"
        elif (job.state["func"] == func or job.state["func"] in ORCHESTRATOR_FUNCS) and job.workflow_ids:
            source = "api"
        else:
            source = "decorator"
        if entry is None:
            drift = "-"
        elif job.state is None:
            drift = "unreadable"
        elif entry.namespace == namespace and desired is not None:
            drift = _drift_from_plan(changes.get(job.id))
        elif entry.row_hash is not None and entry.row_hash == job.row_hash:
            drift = "no"  # byte for byte what reconcile wrote
        else:
            drift = UNKNOWN_DRIFT
        if job.state is None:
            lines.append(
                ScheduleLine(
                    owner=entry.source if entry else None,
                    id=job.id,
                    key=entry.key if entry else None,
                    namespace=entry.namespace if entry else None,
                    name=None,
                    workflow=entry.workflow_name if entry else None,
                    trigger=None,
                    next_run_local=None,
                    next_run_utc=utc.isoformat() if utc else None,
                    paused=job.next_run_time is None,
                    source=source,
                    drift=drift,
                    detail=job.unreadable,
                )
            )
            continue
        state = job.state
        kwargs = state.get("kwargs") if isinstance(state.get("kwargs"), dict) else {}
        pickled: datetime | None = state.get("next_run_time")  # in the trigger's own zone
        lines.append(
            ScheduleLine(
                owner=entry.source if entry else None,
                id=job.id,
                key=entry.key if entry else None,
                namespace=entry.namespace if entry else None,
                name=state.get("name"),
                workflow=(kwargs or {}).get("workflow_name"),
                trigger=triggers.describe(state["trigger"]),
                next_run_local=_local_text(pickled) if pickled is not None else None,
                next_run_utc=utc.isoformat() if utc else None,
                next_run_shown=human_time(pickled) if pickled is not None else None,
                paused=job.next_run_time is None,
                source=source,
                drift=drift,
                detail=None if source != "decorator" else f"func {state['func']}",
            )
        )
    for entry in live.ledger:
        if entry.schedule_id in seen or not entry.enabled:
            continue
        change = changes.get(entry.schedule_id) if entry.namespace == namespace else None
        if change is not None and change.completed:
            continue  # a fired date schedule: gone by design
        lines.append(
            ScheduleLine(
                owner=entry.source,
                id=entry.schedule_id,
                key=entry.key,
                namespace=entry.namespace,
                name=None,
                workflow=entry.workflow_name,
                trigger=None,
                next_run_local=None,
                next_run_utc=None,
                paused=False,
                source="gitops" if entry.namespace == namespace else f"gitops:{entry.namespace}",
                drift="row deleted" if change is not None else "row missing",
                detail="owned by the ledger but not in apscheduler_jobs"
                + ("" if change is not None else " (deleted, or a date schedule that has fired)"),
            )
        )
    lines = [
        replace(line, applied=describe_entry(ledger_by_id[line.id])) if line.id in ledger_by_id else line
        for line in lines
    ]
    return sorted(lines, key=lambda line: line.sort_key)


def _next_run(line: ScheduleLine) -> str:
    if line.next_run_shown:
        return line.next_run_shown
    if line.next_run_utc:
        return human_iso(line.next_run_utc)
    return "paused" if line.paused else ""


def _columns(line: ScheduleLine) -> list[str]:
    return [
        line.key or "",
        line.name or (f"({line.detail})" if line.source == "unreadable" and line.detail else ""),
        line.workflow or "",
        line.trigger or "",
        _next_run(line),
        line.source,
        line.drift,
        _EMAIL.sub("", line.applied),  # the table keeps the author's name; JSON has the full author
        line.owner or "",
    ]


def _record(line: ScheduleLine) -> str:
    fields = zip(HEADERS[1:], _columns(line)[1:], strict=True)
    return "\n".join([line.key or line.id, *(f"    {name + ':':<10}{value}" for name, value in fields if value), ""])


def _table_fits(lines: Sequence[ScheduleLine], columns: int) -> bool:
    """Whether the narrow table has room for whole keys, whole times and a trigger column of 20."""
    rows = [_narrow_columns(line) for line in lines]
    key = max((len(row[0]) for row in rows), default=0)
    when = max((len(row[2]) for row in rows), default=0)
    return key + when + 20 + 6 <= columns


def _brief(line: ScheduleLine) -> str:
    key, trigger, when = _narrow_columns(line)
    return "\n".join([key, f"    {trigger}", f"    next run: {when}" if when else "    (no next run)"])


def _narrow_columns(line: ScheduleLine) -> list[str]:
    state = f" ({line.drift})" if line.drift not in ("", "no") else ""  # drift, pending, ?: worth a look
    return [(line.key or line.id) + state, line.trigger or "", _next_run(line)]


_EMAIL = re.compile(r"\s*<[^>]*>")
HEADERS = ["key", "name", "workflow", "trigger", "next run", "source", "drift", "applied", "owner"]
NARROW_HEADERS = ["key", "trigger", "next run"]
_WHOLE = frozenset({"key", "next run"})
_LONG = frozenset({"applied", "owner"})  # shown with -v (one block per job), too long for a table row
WIDE_COLUMNS = 120  # below this, the narrow layout: a wide table at 80 columns wraps every value
FULL_COLUMNS = 160  # from this on, the name column too


def terminal_width() -> int:
    """Columns to lay the table out for: the terminal's (or $COLUMNS), else wide (a file gets everything)."""
    if sys.stdout.isatty() or "COLUMNS" in os.environ:
        return shutil.get_terminal_size((80, 24)).columns
    return 240


def render_text(
    lines: Sequence[ScheduleLine],
    notes: Sequence[str],
    *,
    width: int | None = None,
    verbose: bool = False,
    target: str = "",
) -> str:
    """A table (plain text): key, trigger in words and next run below WIDE_COLUMNS, every column with
    -v or on wide terminals. Values wrap inside their column, keys never break."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    columns = width or terminal_width()
    wide = columns >= WIDE_COLUMNS
    # The applied commit is long (-v shows it); the name only where there is room for it.
    headers = (
        NARROW_HEADERS
        if not wide
        else [h for h in HEADERS if h not in _LONG and (h != "name" or columns >= FULL_COLUMNS)]
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in headers:
        whole = header in _WHOLE  # identifiers and times never break; prose wraps at word boundaries
        table.add_column(header, overflow="fold", no_wrap=whole)
    for line in lines:
        cells = dict(zip(HEADERS, _columns(line), strict=True))
        table.add_row(*([cells[h] for h in headers] if wide else _narrow_columns(line)))
    buffer = io.StringIO()
    console = Console(file=buffer, width=columns, no_color=True, highlight=False, emoji=False)
    console.print(table)
    text = "\n".join(row.rstrip() for row in buffer.getvalue().rstrip().splitlines())
    if verbose:  # one block per job: every field, readable at any width
        text = "\n".join(_record(line) for line in lines)
    elif not wide and not _table_fits(lines, columns):  # long keys: key, then its trigger and next run below
        text = "\n".join(_brief(line) for line in lines)
    title = [f"Jobs in {target}", ""] if target else []
    if title and len(title[0]) > columns:
        title = ["Jobs in", f"  {target}", ""]
    more = "" if verbose else " -v: every field of each job."
    footer = [f"{len(lines)} job(s).{more}", *notes]
    return "\n".join([*title, text, "", *footer]) if lines else "\n".join([*title, "No jobs.", *notes])


def render_markdown(lines: Sequence[ScheduleLine], notes: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table."""

    def cell(value: str) -> str:
        return value.replace("|", "\\|")

    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(cell(c) for c in _columns(line)) + " |" for line in lines]
    return "\n".join(out + ([""] + [f"_{n}_" for n in notes] if notes else []))


def render_json(lines: Sequence[ScheduleLine], notes: Sequence[str], orchestrator: str = "") -> str:
    """`{"format_version": 1, "orchestrator": "...", "jobs": [...], "notes": [...]}`."""
    body: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "orchestrator": orchestrator,
        "jobs": [{k: v for k, v in asdict(line).items() if k != "next_run_shown"} for line in lines],
        "notes": list(notes),
    }
    return json.dumps(body, indent=2)


def run_show_schedule(
    db_url: str,
    *,
    directory: Path | None,
    fmt: str = "text",
    namespace: str = "default",
    func: str | None = None,
    verbose: bool = False,
    orchestrator: VersionChoice | None = None,
) -> CommandResult:
    """The whole command: exit code, stdout lines, stderr lines. Never writes (read-only connection)."""
    from reconciler.commands.validate import load_desired

    now = datetime.now(UTC)
    notes: list[str] = []
    err: list[str] = []
    desired: list[DesiredSchedule] | None = None
    if directory is not None and directory.is_dir():
        loaded = load_desired(directory, now=now)
        if loaded.ok:
            desired = list(loaded.schedules)
        else:
            err.append(f"warning: {directory} does not validate; drift is checked against the ledger only")
    engine = store.connect(db_url, read_only=True)
    try:
        with engine.connect() as conn, conn.begin():
            choice = orchestrator or VersionChoice(func=func)
            settings = orchestrator_versions.settle(conn, PlanSettings(namespace=namespace), choice)
            live = store.read_live_state(conn)
    except SQLAlchemyError as exc:
        return CommandResult(1, err=[f"error: database: {store.describe_db_error(exc)}"])
    finally:
        engine.dispose()
    lines = collect(live, namespace=namespace, func=settings.func, desired=desired, now=now, settings=settings)
    notes.append(f"Database: {settings.orchestrator}.")
    if any(line.drift == UNKNOWN_DRIFT for line in lines):
        notes.append(
            "drift '?': the row changed since it was applied (the scheduler moves next_run_time on every run); "
            "pass the schedules directory to compare it with the files"
        )
    if fmt == "json":
        return CommandResult(0, [render_json(lines, notes, settings.orchestrator)], err)
    if fmt in ("markdown", "github"):
        return CommandResult(0, [render_markdown(lines, notes)], err)
    shown = render_text(lines, notes, verbose=verbose, target=store.redact_url(db_url))
    return CommandResult(0, [shown], err)
