"""Plan → text (terminal), JSON (machines), Markdown (pull request comment), GitHub annotations.

Rendering never computes anything about schedules: it only formats the `Plan` it is given.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

from reconciler.plan import Action, Change, Plan
from reconciler.timetext import human_iso
from reconciler.workflow_commands import command, visible

FORMAT_VERSION = 1
MARKDOWN_BUDGET = 60_000  # GitHub caps a comment at 65,536 characters; leave room for a wrapper

_SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.NOOP: " ",
    Action.ADOPT: "<",
    Action.RENAME: ">",
}
_COLOR = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.DELETE: "red",
    Action.ADOPT: "cyan",
    Action.RENAME: "cyan",
    Action.NOOP: "white",
}


def summary_text(plan: Plan) -> str:
    """One line with every count (always complete, even when the detail is truncated)."""
    s = plan.summary
    extra = []
    for action in (Action.ADOPT, Action.RENAME):
        if plan.count(action):
            extra.append(f"{plan.count(action)} {action.value}")
    drift = sum(1 for c in plan.changes if c.drift)
    if drift:
        extra.append(f"{drift} drifted")
    more = f" ({', '.join(extra)})" if extra else ""
    return (
        f"Plan: {s['create']} to create, {s['update']} to update{more}, {s['delete']} to delete, "
        f"{s['unchanged']} unchanged; {len(plan.unmanaged)} unmanaged left alone."
    )


def _value(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return json.dumps(v, default=str, ensure_ascii=False, sort_keys=True)


TEXT_WIDTH = 80  # plan lines are wrapped by field to fit a terminal this wide (never inside a value)
_BREAKS = (" → ", ", ", "   ")  # where a long line may wrap: between old and new, list items, fields


def fit(line: str, width: int = TEXT_WIDTH) -> list[str]:
    """`line` as lines of at most `width` columns, broken only at field boundaries (`_BREAKS`).

    Continuation lines are indented to where the line's value starts (after `name: `), so a wrapped
    list of times still reads as one column; a single piece longer than `width` stays whole.
    """
    if len(line) <= width:
        return [line]
    pieces = [line]
    for separator in _BREAKS:
        pieces = [part for piece in pieces for part in _split_keeping(piece, separator)]
    stripped = line.lstrip()
    colon = stripped.find(": ")
    hang = len(line) - len(stripped) + (colon + 2 if 0 <= colon < 24 else 2)
    hang = min(hang, width // 2)
    lines: list[str] = []
    current = ""
    for piece in pieces:
        if current.strip() and len(current) + len(piece.rstrip()) > width:
            lines.append(current.rstrip())
            current = " " * hang + piece.lstrip()
        else:
            current += piece
    lines.append(current.rstrip())
    return lines


def _split_keeping(text: str, separator: str) -> list[str]:
    parts = text.split(separator)
    if separator == " → ":  # the arrow starts the continuation line: the first thing read is "→ new"
        return [parts[0], *(separator.lstrip() + part for part in parts[1:])] if len(parts) > 1 else parts
    return [part + separator for part in parts[:-1]] + [parts[-1]]


def _zone_of(view: dict[str, Any]) -> str | None:
    """The schedule's own zone, for its times (the desired side names it; the live side may not)."""
    spec = view.get("trigger_spec")
    zone = spec.get("timezone") if isinstance(spec, dict) else view.get("timezone")
    return zone if isinstance(zone, str) else None


def _change_lines(change: Change) -> list[str]:
    lines: list[str] = []
    after = change.after or {}
    before = change.before or {}
    zone = _zone_of(after) or _zone_of(before)

    def _short_time(iso: str) -> str:
        return human_iso(iso, zone)

    if change.action is Action.CREATE or (change.action is Action.ADOPT and not change.fields):
        lines.append(f"workflow: {after.get('workflow_name')}   name: {_value(after.get('name'))}")
        lines.append(f"trigger:  {after.get('trigger')}")
    elif change.action is Action.DELETE and before:
        lines.append(f"workflow: {before.get('workflow_name')}   name: {_value(before.get('name'))}")
        lines.append(f"trigger:  {before.get('trigger')}")
    for f in change.fields:
        if f.name == "trigger":
            lines.append(f"trigger:  {f.before} → {f.after}")
        else:
            lines.append(f"{f.name}: {_value(f.before)} → {_value(f.after)}")
    if change.next_runs_before and change.next_runs_after and change.next_runs_before != change.next_runs_after:
        lines.append("next runs: " + ", ".join(_short_time(t) for t in change.next_runs_before))
        lines.append("        → " + ", ".join(_short_time(t) for t in change.next_runs_after))
    elif change.next_runs_before and change.next_runs_before == change.next_runs_after:
        lines.append("next runs (unchanged): " + ", ".join(_short_time(t) for t in change.next_runs_before))
    elif change.next_runs_after:
        lines.append("next runs: " + ", ".join(_short_time(t) for t in change.next_runs_after))
    elif change.next_runs_before and change.action is not Action.DELETE:
        lines.append("next runs (unchanged): " + ", ".join(_short_time(t) for t in change.next_runs_before))
    lines.extend(f"warning: {w}" for w in change.warnings)
    return lines


def render_text(
    plan: Plan,
    *,
    color: bool = False,
    verbose: bool = False,
    target: str = "",
    mark: Callable[[Change], str] | None = None,
    width: int | None = None,
) -> str:
    """The terminal rendering: Terraform-style symbols, changed fields old → new, next runs.

    `mark` may label a change, as in `render_markdown` (shown in parentheses after its source).
    `width`: the terminal's columns; lines wrap by field to fit it (None: no wrapping, for pipes and logs,
    where a line is searched for whole).
    """

    def paint(s: str, fg: str) -> str:
        # Escape first: a newline or an escape sequence from a file or the database never reaches the terminal.
        s = visible(s)
        if not color:
            return s
        import typer

        return typer.style(s, fg=fg)

    out: list[str] = []
    if target:
        against = f" ({plan.orchestrator})" if plan.orchestrator else ""
        heading = f"Planning namespace '{plan.namespace}' against {target}{against}"
        if width is None or len(heading) <= width:
            out.append(heading)
        else:
            # Wrap by field: the database alone on its line (a path is never broken), then the generation.
            out.append(f"Planning namespace '{plan.namespace}' against")
            if len(f"  {target}{against}") <= width or not plan.orchestrator:
                out.append(f"  {target}{against}")
            else:
                out.extend([f"  {target}", f"  {plan.orchestrator}"])
        out.append("")
    for change in plan.changes:
        foreign = change.owner is not None and change.owner != change.new_owner
        if change.action is Action.NOOP and not change.warnings and not verbose and not foreign:
            continue
        label = change.action.value if not change.completed else "completed"
        head = f"{_SYMBOL[change.action]} {label:<8} {change.key}"
        if change.action is Action.RENAME and change.previous_key:
            head += f" (was {change.previous_key})"
        if change.source:
            head += f"   [{change.source}]"
        if change.owner and change.owner != change.new_owner:
            head += f"   (owned by {change.owner})"
        note = mark(change) if mark and change.touches_database else ""
        if note:
            head += f"   ({note})"
        out.extend(paint(part, _COLOR[change.action]) for part in (fit(head, width) if width else [head]))
        out.extend(f"      {visible(line)}" for line in _change_lines(change))
    if plan.unmanaged:
        out.append("")
        out.append(f"Unmanaged jobs, left alone ({len(plan.unmanaged)}):")
        for job in plan.unmanaged:
            detail = f" — {job.detail}" if job.detail else ""
            out.append(
                visible(
                    f"    {job.source:<11} {job.id}  {job.name or '?'}  {job.workflow_name or ''}  "
                    f"{job.trigger or ''}{detail}"
                )
            )
    for warning in plan.warnings:
        out.append(paint(f"warning: {warning}", "yellow"))
    for error in plan.errors:
        out.append(paint(f"error: {error}", "red"))
    out.append("")
    out.append(summary_text(plan) if plan.has_changes else "No changes. " + summary_text(plan))
    if width is None:
        return "\n".join(out)
    return "\n".join(part for line in out for part in (fit(line, width) if "\x1b" not in line else [line]))


def plan_as_dict(plan: Plan) -> dict[str, Any]:
    """The JSON plan (format_version 1), DESIGN.md §3."""
    return {
        "format_version": FORMAT_VERSION,
        "namespace": plan.namespace,
        "computed_at": plan.computed_at,
        "orchestrator": plan.orchestrator,
        "summary": plan.summary,
        "changes": [
            {
                "key": c.key,
                "action": c.action.value,
                "schedule_id": c.schedule_id,
                "before": c.before,
                "after": c.after,
                "fields": [{"name": f.name, "before": f.before, "after": f.after} for f in c.fields],
                "next_runs_before": list(c.next_runs_before),
                "next_runs_after": list(c.next_runs_after),
                "warnings": list(c.warnings),
                "drift": c.drift,
                "completed": c.completed,
                "source": c.source,
                "previous_key": c.previous_key,
                "replaces_job_id": c.replaces_job_id,
                "owner": c.owner,
                "new_owner": c.new_owner,
            }
            for c in plan.changes
        ],
        "unmanaged": [
            {
                "id": u.id,
                "source": u.source,
                "name": u.name,
                "workflow_name": u.workflow_name,
                "trigger": u.trigger,
                "next_run_time": u.next_run_time,
                "detail": u.detail,
            }
            for u in plan.unmanaged
        ],
        "errors": list(plan.errors),
        "warnings": list(plan.warnings),
        "fingerprint": plan.fingerprint,
    }


def render_json(plan: Plan) -> str:
    return json.dumps(plan_as_dict(plan), indent=2, default=str, ensure_ascii=False)


def _md_escape(s: str) -> str:
    return visible(s.replace("|", "\\|").replace("\n", " "))


def render_markdown(plan: Plan, *, budget: int = MARKDOWN_BUDGET, mark: Callable[[Change], str] | None = None) -> str:
    """A pull-request comment: summary line, a table, one <details> per change; kept under `budget`.

    `mark` may label a change (e.g. whether this branch caused it); the summary line always counts
    every change, however much of the detail had to be cut.
    """
    pending = plan.pending
    head = [f"### Schedules plan — namespace `{plan.namespace}`", "", f"**{summary_text(plan)}**", ""]
    for error in plan.errors:
        head.append(f"> :x: **error:** {_md_escape(error)}")
    for warning in plan.warnings:
        head.append(f"> :warning: {_md_escape(warning)}")
    against = f" · {_md_escape(plan.orchestrator)}" if plan.orchestrator else ""
    tail = ["", f"<sub>fingerprint `{plan.fingerprint[:16]}` · computed {plan.computed_at}{against}</sub>"]
    if not pending:
        body = ["No changes: the database matches `schedules.d/`."]
        return "\n".join(head + body + tail)
    table = ["| | key | action | trigger | next run | |", "|---|---|---|---|---|---|"]
    details: list[str] = []
    used = sum(len(x) + 1 for x in head + tail) + 400
    shown_rows = 0
    for change in pending:
        after = change.after or change.before or {}
        nxt = (change.next_runs_after or change.next_runs_before or ("",))[0]
        note = mark(change) if mark else ""
        row = (
            f"| `{_SYMBOL[change.action]}` | `{change.key}` | {change.action.value}"
            f"{' (drift)' if change.drift else ''} | {_md_escape(str(after.get('trigger', '')))} | "
            f"{human_iso(nxt, _zone_of(after))} | {note} |"
        )
        if used + len(row) + 1 > budget:
            break
        table.append(row)
        used += len(row) + 1
        shown_rows += 1
    for change in pending[:shown_rows]:
        block = [
            f"<details><summary><code>{_SYMBOL[change.action]} {change.key}</code> — {change.action.value}"
            f"{' · ' + html.escape(visible(change.source)) if change.source else ''}</summary>",
            "",
            "```",
        ]
        block += [visible(line) for line in _change_lines(change)]
        block += ["```", "</details>"]
        size = sum(len(x) + 1 for x in block)
        if used + size > budget:
            break
        details.extend(block)
        used += size
    notes: list[str] = []
    if shown_rows < len(pending):
        notes.append(
            f"> :scissors: {len(pending) - shown_rows} more change(s) not listed: the comment would exceed "
            "GitHub's size limit. The full plan is in the job summary and the plan JSON."
        )
    elif len(details) == 0 or details.count("</details>") < shown_rows:
        notes.append("> :scissors: details of some changes were cut to stay under GitHub's comment size limit.")
    return "\n".join(head + table + [""] + details + notes + tail)


def render_github(plan: Plan) -> str:
    """Workflow-command annotations for warnings and errors, then the text plan."""
    lines: list[str] = []
    for change in plan.changes:
        for w in change.warnings:
            path: str | None = None
            line: str | None = None
            if change.source and ":" in change.source:
                path, _, line = change.source.rpartition(":")
            lines.append(command("warning", f"{change.key}: {w}", file=path, line=line))
    lines.extend(command("error", e) for e in plan.errors)
    lines.append(render_text(plan))
    return "\n".join(lines)
