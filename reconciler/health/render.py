"""A `HealthReport` as text (a compact table for 80 columns), JSON (versioned) and Markdown (pure)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from reconciler.health.core import HealthReport, Liveness, ScheduleHealth

FORMAT_VERSION = 1
MISSED_LISTED = 5  # instants listed per schedule in text and Markdown (JSON lists them all)
WIDTH = 80


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") + "Z" if moment else "-"


def _span(delta: timedelta | None) -> str:
    """A duration in its two largest units: 1h30m, 2d4h, 45s."""
    if delta is None:
        return "-"
    rest = max(0, round(delta.total_seconds()))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, rest = divmod(rest, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts[:2]) or "0s"


def scheduler_lines(report: HealthReport) -> list[str]:
    """What is said about liveness (once, at the top)."""
    if report.liveness is Liveness.STOPPED:
        return [
            "Scheduler: STOPPED: no scheduler is processing this database",
            f"  ({sum(1 for s in report.schedules if s.overdue)} job(s) overdue, the oldest by "
            f"{_span(report.oldest_overdue)}; no scheduled start since)",
        ]
    if report.liveness is Liveness.PARTLY:
        count = sum(1 for s in report.schedules if s.overdue)
        return [f"Scheduler: processing, but {count} job(s) overdue (rows it has not seen? wake it)"]
    if report.liveness is Liveness.UNKNOWN:
        return ["Scheduler: unknown (no active job to tell by)"]
    return ["Scheduler: processing (no job overdue)"]


def header_lines(report: HealthReport) -> list[str]:
    tol = report.tolerance
    lines = [
        f"Window: {_when(report.since)} → {_when(report.now)} ({_span(report.now - report.since)})",
        f"A start counts from {_span(tol.early)} before its fire to misfire grace + {_span(tol.latency)} after it",
        *scheduler_lines(report),
    ]
    if report.engine_paused:
        lines.append("Engine: PAUSED (engine_settings.global_lock is set): processes do not run")
    if not report.processes_available:
        lines.append("No processes table (not an orchestrator-core database): liveness only, starts not checked")
    return lines


def _state(s: ScheduleHealth) -> str:
    if s.problems:  # the first problem, and how many more (the lines below the table name them all)
        first, *rest = s.problems
        return first.value + (f"+{len(rest)}" if rest else "")
    if s.paused:
        return "paused"
    if not s.row_present:
        return "fired (date)"
    last = s.last_run
    return last.status if last is not None and last.status != "completed" else "ok"


def _cut(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _last(s: ScheduleHealth) -> str:
    last = s.last_run
    return last.started_at.strftime("%m-%d %H:%M") if last else "-"


def _table(report: HealthReport) -> list[str]:
    # 17 + 18 + 4 x 4 + 11 + 7 separators = 69: 11 columns left for the state within 80
    row = "{:<17} {:<18} {:>4} {:>4} {:>4} {:>4} {:<11} {}"
    lines = [row.format("KEY", "WORKFLOW", "EXP", "RUN", "MISS", "FAIL", "LAST RUN", "STATE")]
    for s in report.schedules:
        line = row.format(
            _cut(s.key, 17),
            _cut(s.workflow or "?", 18),
            s.expected,
            _count(s.started),
            _count(len(s.missed) if s.started is not None else None),
            _count(len(s.failures) if s.started is not None else None),
            _last(s),
            _state(s),
        )
        lines.append(_cut(line, WIDTH))
    return lines


def _details(s: ScheduleHealth) -> list[str]:
    out = []
    if s.error:
        out.append(f"{s.key}: unreadable row: {s.error}")
    if s.missed:
        shown = ", ".join(_when(m) for m in s.missed[:MISSED_LISTED])
        more = f" (+{len(s.missed) - MISSED_LISTED} more)" if len(s.missed) > MISSED_LISTED else ""
        out.append(f"{s.key}: missed {len(s.missed)} of {s.expected}: {shown}{more}")
    for run in s.failures[:MISSED_LISTED]:
        reason = f": {run.reason_line}" if run.reason_line else ""
        out.append(f"{s.key}: {run.status} run {run.pid} at {_when(run.started_at)}{reason}")
    if s.overdue:
        out.append(f"{s.key}: overdue by {_span(s.overdue_by)} (next run {_when(s.next_run)} was not processed)")
    if s.workflow_state == "missing":
        out.append(f"{s.key}: workflow {s.workflow!r} is not in the workflows table")
    elif s.workflow_state == "soft-deleted":
        out.append(f"{s.key}: workflow {s.workflow!r} is soft-deleted")
    if s.ambiguous:
        out.append(f"{s.key}: {s.ambiguous} start(s) attributed by nearest fire (another schedule of it was due)")
    if s.truncated:
        out.append(f"{s.key}: more fires than can be listed; only the first were judged")
    return out


def _notes(report: HealthReport) -> list[str]:
    notes = [f"{workflow}: {count} SYSTEM start(s) no fire explains" for workflow, count in report.unexplained.items()]
    if report.processes_available and report.last_scheduled_start is None:
        notes.append("no process was started by the scheduler in the window")
    return notes


def verdict_line(report: HealthReport) -> str:
    problems = len(report.problem_schedules)
    if report.healthy:
        return f"Healthy: {len(report.schedules)} schedule(s), no missed, failed or overdue runs."
    parts = [f"{problems} of {len(report.schedules)} schedule(s) with problems"] if problems else []
    if report.engine_paused:
        parts.append("engine paused")
    return "Unhealthy: " + "; ".join(parts) + "."


def render_text(report: HealthReport) -> list[str]:
    lines = [*header_lines(report), ""]
    lines.extend(_table(report) if report.schedules else ["(no schedules)"])
    details = [d for s in report.schedules for d in _details(s)]
    if details or _notes(report):
        lines.append("")
        lines.extend(details)
        lines.extend(_notes(report))
    lines.append("")
    lines.append(verdict_line(report))
    return lines


def _last_md(s: ScheduleHealth) -> str:
    last = s.last_run
    return f"{last.status} at {_when(last.started_at)}" if last else "-"


def _md(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: HealthReport) -> list[str]:
    icon = "✅" if report.healthy else "❌"
    lines = [f"### {icon} Schedule health", "", *(f"- {_md(h)}" for h in header_lines(report)), ""]
    if report.schedules:
        lines.append("| key | workflow | expected | started | missed | failed | last run | state |")
        lines.append("|---|---|---:|---:|---:|---:|---|---|")
        for s in report.schedules:
            missed = _count(len(s.missed) if s.started is not None else None)
            failed = _count(len(s.failures) if s.started is not None else None)
            lines.append(
                f"| `{_md(s.key)}` | {_md(s.workflow or '?')} | {s.expected} | {_count(s.started)} | {missed} | "
                f"{failed} | {_md(_last_md(s))} | {_md(_state(s))} |"
            )
    details = [d for s in report.schedules for d in _details(s)] + _notes(report)
    if details:
        lines.append("")
        lines.extend(f"- {_md(d)}" for d in details)
    lines.extend(["", f"**{_md(verdict_line(report))}**"])
    return lines


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _schedule_dict(s: ScheduleHealth) -> dict[str, Any]:
    last = s.last_run
    return {
        "key": s.key,
        "job_id": s.job_id,
        "name": s.name,
        "workflow": s.workflow,
        "source": s.source,
        "expected": s.expected,
        "started": s.started,
        "missed": [_iso(m) for m in s.missed],
        "coalesced": s.coalesced,
        "pending": s.pending,
        "failures": [
            {
                "pid": r.pid,
                "fire": _iso(r.fire),
                "started_at": _iso(r.started_at),
                "status": r.status,
                "reason": r.reason_line,
            }
            for r in s.failures
        ],
        "last_run": None
        if last is None
        else {"pid": last.pid, "status": last.status, "started_at": _iso(last.started_at), "fire": _iso(last.fire)},
        "ambiguous": s.ambiguous,
        "next_run": _iso(s.next_run),
        "overdue": s.overdue,
        "overdue_seconds": s.overdue_by.total_seconds() if s.overdue_by else None,
        "paused": s.paused,
        "row_present": s.row_present,
        "workflow_state": s.workflow_state,
        "error": s.error,
        "truncated": s.truncated,
        "problems": [p.value for p in s.problems],
    }


def as_dict(report: HealthReport) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "now": _iso(report.now),
        "since": _iso(report.since),
        "tolerance": {
            "early_seconds": report.tolerance.early.total_seconds(),
            "latency_seconds": report.tolerance.latency.total_seconds(),
        },
        "healthy": report.healthy,
        "scheduler": report.liveness.value,
        "oldest_overdue_seconds": report.oldest_overdue.total_seconds() if report.oldest_overdue else None,
        "engine_paused": report.engine_paused,
        "processes_available": report.processes_available,
        "last_scheduled_start": _iso(report.last_scheduled_start),
        "unexplained_starts": dict(report.unexplained),
        "summary": {
            "schedules": len(report.schedules),
            "with_problems": len(report.problem_schedules),
            "expected": sum(s.expected for s in report.schedules),
            "started": sum(s.started or 0 for s in report.schedules),
            "missed": sum(len(s.missed) for s in report.schedules),
            "failed": sum(len(s.failures) for s in report.schedules),
            "overdue": sum(1 for s in report.schedules if s.overdue),
        },
        "schedules": [_schedule_dict(s) for s in report.schedules],
    }


def render_json(report: HealthReport) -> list[str]:
    return [json.dumps(as_dict(report), indent=2)]
