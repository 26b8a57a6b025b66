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
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from reconciler import store, triggers
from reconciler.exit_codes import CommandResult
from reconciler.jobstate import ORCHESTRATOR_FUNC
from reconciler.plan import Action, Change, PlanSettings, compute_plan
from reconciler.provenance import describe_entry
from reconciler.spec import DesiredSchedule

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
) -> list[ScheduleLine]:
    """The lines for one read of the database (pure: no I/O)."""
    ledger_by_id = {e.schedule_id: e for e in live.ledger}
    changes: dict[str, Change] = {}
    if desired is not None:
        plan = compute_plan(desired, live, PlanSettings(namespace=namespace, func=func), now)
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
        elif job.state["func"] == func and job.workflow_ids:
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


def _utc_text(iso: str | None) -> str:
    if iso is None:
        return ""
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def _columns(line: ScheduleLine) -> list[str]:
    paused = "paused" if line.paused else ""
    return [
        line.key or "",
        line.name or (f"({line.detail})" if line.source == "unreadable" and line.detail else ""),
        line.workflow or "",
        line.trigger or "",
        line.next_run_local or paused,
        _utc_text(line.next_run_utc) or paused,
        line.source,
        line.drift,
        _EMAIL.sub("", line.applied),  # the table keeps the author's name; JSON has the full author
        line.owner or "",
    ]


_EMAIL = re.compile(r"\s*<[^>]*>")
HEADERS = [
    "key", "name", "workflow", "trigger", "next run (local)", "next run (UTC)", "source", "drift", "applied", "owner",
]  # fmt: skip


def render_text(lines: Sequence[ScheduleLine], notes: Sequence[str]) -> str:
    """A rich table (plain text, no colour when not on a terminal)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for line in lines:
        table.add_row(*_columns(line))
    buffer = io.StringIO()
    width = shutil.get_terminal_size((200, 24)).columns if sys.stdout.isatty() else 240
    console = Console(file=buffer, width=width, no_color=True, highlight=False, emoji=False)
    console.print(table)
    text = buffer.getvalue().rstrip()
    footer = [f"{len(lines)} job(s).", *notes]
    return "\n".join([text, "", *footer]) if lines else "\n".join(["No jobs.", *notes])


def render_markdown(lines: Sequence[ScheduleLine], notes: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table."""

    def cell(value: str) -> str:
        return value.replace("|", "\\|")

    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(cell(c) for c in _columns(line)) + " |" for line in lines]
    return "\n".join(out + ([""] + [f"_{n}_" for n in notes] if notes else []))


def render_json(lines: Sequence[ScheduleLine], notes: Sequence[str]) -> str:
    """`{"format_version": 1, "jobs": [...], "notes": [...]}`."""
    body: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "jobs": [asdict(line) for line in lines],
        "notes": list(notes),
    }
    return json.dumps(body, indent=2)


def run_show_schedule(
    db_url: str,
    *,
    directory: Path | None,
    fmt: str = "text",
    namespace: str = "default",
    func: str = ORCHESTRATOR_FUNC,
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
            live = store.read_live_state(conn)
    except SQLAlchemyError as exc:
        return CommandResult(1, err=[f"error: database: {store.describe_db_error(exc)}"])
    finally:
        engine.dispose()
    lines = collect(live, namespace=namespace, func=func, desired=desired, now=now)
    if any(line.drift == UNKNOWN_DRIFT for line in lines):
        notes.append(
            "drift '?': the row changed since it was applied (the scheduler moves next_run_time on every run); "
            "pass the schedules directory to compare it with the files"
        )
    if fmt == "json":
        return CommandResult(0, [render_json(lines, notes)], err)
    if fmt in ("markdown", "github"):
        return CommandResult(0, [render_markdown(lines, notes)], err)
    return CommandResult(0, [render_text(lines, notes)], err)
