"""`schedules reconcile`: validate the directory, plan against the database, and (unless --dry-run) apply.

Exit codes (DESIGN.md §3): 0 done / no changes, 1 error or refused, 2 changes pending with
--detailed-exitcode, 3 lock not taken or stale saved plan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from reconciler import apply as applier
from reconciler import render, store
from reconciler.plan import Plan, PlanSettings
from reconciler.spec import DesiredSchedule, SourceLocation
from reconciler.validate import as_plain, format_problems, load_desired

SAVED_PLAN_VERSION = 1


@dataclass
class ReconcileOptions:
    directory: Path = Path("schedules.d")
    db_url: str = store.DEFAULT_DB_URL
    dry_run: bool = False
    detailed_exitcode: bool = False
    fmt: str = "text"
    plan_out: Path | None = None
    plan_in: Path | None = None
    settings: PlanSettings = field(default_factory=PlanSettings)
    apply: applier.ApplySettings = field(default_factory=applier.ApplySettings)
    color: bool = False
    verbose: bool = False


@dataclass
class Outcome:
    """What the command prints (stdout / stderr lines) and its exit code."""

    exit_code: int
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    plan: Plan | None = None


def render_plan(plan: Plan, fmt: str, *, color: bool, verbose: bool, target: str) -> str:
    """The plan in the requested output format."""
    if fmt == "json":
        return render.render_json(plan)
    if fmt == "markdown":
        return render.render_markdown(plan)
    if fmt == "github":
        return render.render_github(plan)
    return render.render_text(plan, color=color, verbose=verbose, target=target)


def save_plan(path: Path, plan: Plan, desired: list[DesiredSchedule], settings: PlanSettings) -> None:
    """A saved plan: the rendered plan plus exactly what it was computed from (no credentials)."""
    body = render.plan_as_dict(plan)
    body["saved_plan_version"] = SAVED_PLAN_VERSION
    body["settings"] = {
        "namespace": settings.namespace,
        "func": settings.func,
        "max_deletes": settings.max_deletes,
        "allow_empty": settings.allow_empty,
    }
    body["desired"] = [
        {**as_plain(d), "source": [d.source.path, d.source.line, d.source.column] if d.source else None}
        for d in desired
    ]
    path.write_text(json.dumps(body, indent=2, default=str))


def load_saved_plan(path: Path) -> tuple[list[DesiredSchedule], PlanSettings, str]:
    """The desired set, settings and fingerprint of a saved plan."""
    body: dict[str, Any] = json.loads(path.read_text())
    if body.get("saved_plan_version") != SAVED_PLAN_VERSION:
        raise ValueError(f"{path} is not a saved plan of this version (use --plan-out to make one)")
    desired = []
    for d in body["desired"]:
        source = SourceLocation(*d.pop("source")) if d.get("source") else None
        d.pop("source", None)
        desired.append(DesiredSchedule(**d, source=source))
    settings = PlanSettings(**body["settings"])
    return desired, settings, str(body["fingerprint"])


def run(options: ReconcileOptions) -> Outcome:
    """The whole command, as data in and data out (the CLI only prints the outcome)."""
    now = datetime.now(UTC)
    target = store.redact_url(options.db_url)
    settings = options.settings
    expected = None
    if options.plan_in is not None:
        try:
            desired, settings, expected = load_saved_plan(options.plan_in)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return Outcome(1, err=[f"error: cannot read saved plan {options.plan_in}: {exc}"])
    else:
        loaded = load_desired(options.directory, now=now)
        if not loaded.ok:
            # A broken file must never look like "these schedules were removed": abort before the database.
            problems = [p for p in loaded.problems if p.is_error]
            return Outcome(1, err=[format_problems(problems, "text"), "error: validation failed; nothing planned"])
        desired = loaded.schedules
    engine = store.connect(options.db_url, lock_timeout=options.apply.lock_timeout, read_only=options.dry_run)
    try:
        if options.dry_run:
            plan = applier.dry_run(engine, desired, settings, now)
            if expected and plan.fingerprint != expected:
                return Outcome(3, err=["error: stale plan: the database changed since the plan was made"])
            out = [render_plan(plan, options.fmt, color=options.color, verbose=options.verbose, target=target)]
            if options.plan_out is not None:
                save_plan(options.plan_out, plan, desired, settings)
                out.append(f"Saved the plan to {options.plan_out}; apply it with --plan {options.plan_out}")
                if options.fmt == "json":
                    out.pop()
            code = 1 if plan.errors else (2 if options.detailed_exitcode and plan.has_changes else 0)
            return Outcome(code, out=out, plan=plan)
        apply_settings = options.apply
        if expected:
            from dataclasses import replace

            apply_settings = replace(apply_settings, expected_fingerprint=expected)
        try:
            result = applier.apply(engine, desired, settings, apply_settings)
        except applier.ApplyError as exc:
            return Outcome(exc.exit_code, err=[f"error: {store.redact(str(exc), options.apply.redis_url)}"])
        out = [render_plan(result.plan, options.fmt, color=options.color, verbose=options.verbose, target=target)]
        if options.fmt != "json":
            out.append("")
            applied = len(result.plan.pending)
            out.append(f"Applied {applied} change(s) in one transaction." if applied else "Nothing to apply.")
            if result.waited_seconds:
                out.append(f"Waited {result.waited_seconds:.1f}s for jobs due inside the guard window.")
            out.append(result.woken)
            out.append(
                "Verified: the database now matches the files."
                if result.verified
                else f"WARNING: {result.remaining} change(s) still pending after apply"
            )
        return Outcome(0 if result.verified else 1, out=out, plan=result.plan)
    except SQLAlchemyError as exc:  # the database edge: one clear line, never a traceback
        return Outcome(1, err=[f"error: database: {store.describe_db_error(exc)}"])
    finally:
        engine.dispose()
