"""Saved plans and review digests (Terraform's plans/planfile): plain data in, text or digests out, no I/O.

A saved plan is the JSON plan plus exactly what it was computed from (desired set, settings, git
provenance, fingerprint of the live state), never credentials. Applying it re-plans under the lock and
is refused when the fingerprint no longer matches (stale). The review digest binds an apply to the plan
a reviewer approved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler import render
from reconciler.plan import Action, Plan, PlanSettings
from reconciler.provenance import GitProvenance
from reconciler.spec import DesiredSchedule, SourceLocation, as_plain

SAVED_PLAN_VERSION = 1


class NotASavedPlan(ValueError):
    """The text is not a saved plan of this version."""


@dataclass(frozen=True)
class SavedPlan:
    """What an apply of a saved plan needs: the desired set and settings it was computed from, the
    fingerprint of the live state it saw, and the git tree it came from (None: planned outside git)."""

    desired: list[DesiredSchedule]
    settings: PlanSettings
    fingerprint: str
    provenance: GitProvenance | None


def review_digest(plan: Plan) -> str:
    """A digest of what a reviewer approves: every pending change, never the moving parts.

    Covers key, action, schedule id, drift, each changed field old → new, and the declared result
    (`after`); leaves out next fire times, `computed_at` and unchanged rows, so the same plan computed
    again later — after the scheduler fired a few jobs — has the same digest, while any drift in the
    database or any other change in the files gives a different one.
    """
    items = [
        {
            "key": c.key,
            "action": c.action.value,
            "schedule_id": c.schedule_id,
            "previous_key": c.previous_key,
            "drift": c.drift,
            "fields": [[f.name, f.before, f.after] for f in c.fields],
            "after": None if c.action is Action.DELETE else c.after,
        }
        for c in sorted(plan.pending, key=lambda c: c.key)
    ]
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()


def plan_json(plan: Plan, origins: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The JSON plan plus what git awareness adds: `origin` per change and the review digest."""
    body = render.plan_as_dict(plan)
    for change in body["changes"]:
        change["origin"] = (origins or {}).get(change["key"])
    body["review_digest"] = review_digest(plan)
    return body


def saved_plan_text(
    plan: Plan,
    desired: Sequence[DesiredSchedule],
    settings: PlanSettings,
    git: GitProvenance | None = None,
) -> str:
    """The saved plan as JSON text: the rendered plan plus exactly what it was computed from."""
    body = plan_json(plan)
    body["saved_plan_version"] = SAVED_PLAN_VERSION
    # The tree the plan came from: an apply of this plan records it, and refuses a dirty one without --allow-dirty.
    body["provenance"] = (
        {"commit": git.commit, "author": git.author, "dirty": list(git.dirty)} if git is not None else None
    )
    body["settings"] = {
        "namespace": settings.namespace,
        "func": settings.func,
        "max_deletes": settings.max_deletes,
        "allow_empty": settings.allow_empty,
        "source": settings.source,
        "adopt_from": settings.adopt_from,
        "generation": settings.generation,
        "orchestrator": settings.orchestrator,
    }
    body["desired"] = [
        {**as_plain(d), "source": [d.source.path, d.source.line, d.source.column] if d.source else None}
        for d in desired
    ]
    return json.dumps(body, indent=2, default=str)


def read_saved_plan(text: str) -> SavedPlan:
    """A saved plan from its JSON text; raises NotASavedPlan, or ValueError / KeyError / TypeError when malformed."""
    body: dict[str, Any] = json.loads(text)
    if not isinstance(body, dict) or body.get("saved_plan_version") != SAVED_PLAN_VERSION:
        raise NotASavedPlan("not a saved plan of this version (use --plan-out to make one)")
    desired = []
    for d in body["desired"]:
        source = SourceLocation(*d.pop("source")) if d.get("source") else None
        d.pop("source", None)
        replaces = d.pop("replaces", None) or {}
        desired.append(
            DesiredSchedule(
                **d,
                source=source,
                replaces_job_id=replaces.get("job_id"),
                replaces_decorator=replaces.get("decorator"),
            )
        )
    settings = PlanSettings(**body["settings"])
    recorded = body.get("provenance")
    git = (
        GitProvenance(recorded.get("commit"), recorded.get("author"), tuple(recorded.get("dirty") or ()))
        if isinstance(recorded, dict)
        else None
    )
    return SavedPlan(desired, settings, str(body["fingerprint"]), git)
