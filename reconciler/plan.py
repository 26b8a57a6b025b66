"""The plan: desired schedules × live rows × ledger → `Plan`, pure data. No I/O happens here.

Ownership follows Argo CD and Terraform: only keys recorded in the ledger (for this namespace) are
ever updated or deleted; every other row is listed as unmanaged and left alone. A schedule is
compared with its row *semantically* (canonical trigger, name, inputs, options, linker), so an
equivalent spelling is a no-op and an unchanged row is never rewritten (an interval keeps its phase).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger

from reconciler import triggers
from reconciler.jobstate import ORCHESTRATOR_FUNC, UnreadableJobState, load_job_state, utc_timestamp
from reconciler.spec import DesiredSchedule
from reconciler.store import LedgerEntry, LiveJob, LiveState, Workflow

DEFAULT_NAMESPACE = "default"
_NAMESPACE_ROOT = uuid.UUID("6f0c3c1e-4f8e-5b8a-9d51-8a1f2f6c3e10")
NEXT_RUNS = 3
SPEC_HASH_VERSION = 1


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    NOOP = "noop"
    ADOPT = "adopt"
    RENAME = "rename"


@dataclass(frozen=True)
class PlanSettings:
    """The knobs of a plan; they travel with a saved plan."""

    namespace: str = DEFAULT_NAMESPACE
    func: str = ORCHESTRATOR_FUNC
    max_deletes: int = 10
    allow_empty: bool = False


@dataclass(frozen=True)
class FieldChange:
    """One field of a schedule that changes: before → after (plain values)."""

    name: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Change:
    """What happens to one schedule key."""

    key: str
    action: Action
    schedule_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    fields: tuple[FieldChange, ...] = ()
    next_runs_before: tuple[str, ...] = ()
    next_runs_after: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    drift: bool = False
    write_row: bool = False  # the apscheduler_jobs row must be (re)written
    remove_row: bool = False  # the row must be deleted (delete, or enabled: false)
    reschedule: bool = False  # the trigger changed: a new next_run_time
    link_workflow_id: str | None = None  # the workflow the linker row must point at
    desired: DesiredSchedule | None = None
    previous_key: str | None = None  # rename: the ledger key being replaced
    source: str | None = None
    completed: bool = False  # a fired date schedule: its row is gone by design
    name: str | None = None  # the resolved job name
    spec_hash: str | None = None  # digest of the desired spec, as the ledger records it

    @property
    def touches_database(self) -> bool:
        return self.action is not Action.NOOP


@dataclass(frozen=True)
class UnmanagedJob:
    """A row the reconciler does not own and never touches."""

    id: str
    source: str  # api | decorator | unreadable | gitops:<namespace>
    name: str | None
    workflow_name: str | None
    trigger: str | None
    next_run_time: str | None
    detail: str | None = None


@dataclass(frozen=True)
class Plan:
    """A complete plan: every change, what is left alone, and why it may be refused."""

    namespace: str
    changes: tuple[Change, ...]
    unmanaged: tuple[UnmanagedJob, ...]
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    fingerprint: str
    computed_at: str

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    @property
    def summary(self) -> dict[str, int]:
        return {
            "create": self.count(Action.CREATE),
            "update": self.count(Action.UPDATE) + self.count(Action.ADOPT) + self.count(Action.RENAME),
            "delete": self.count(Action.DELETE),
            "unchanged": self.count(Action.NOOP),
        }

    @property
    def has_changes(self) -> bool:
        return any(c.touches_database for c in self.changes)

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.touches_database]


@functools.lru_cache(maxsize=64)
def namespace_uuid(namespace: str) -> uuid.UUID:
    """The uuid5 namespace of an owner namespace (a UUID is used as it is)."""
    try:
        return uuid.UUID(namespace)
    except ValueError:
        return uuid.uuid5(_NAMESPACE_ROOT, namespace)


def schedule_id_for(namespace: str, key: str) -> str:
    """A new schedule's id: uuid5(namespace, key), a UUID as orchestrator-core's REST API requires."""
    return str(uuid.uuid5(namespace_uuid(namespace), key))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _json_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def resolved_name(desired: DesiredSchedule, workflow: Workflow | None) -> str:
    """The job name: the schedule's own, else the workflow's description (as orchestrator-core does)."""
    if desired.name is not None:
        return desired.name
    return workflow.description if workflow and workflow.description else desired.workflow_name


def spec_hash(desired: DesiredSchedule, name: str, settings: PlanSettings) -> str:
    """Digest of everything the row is built from; equal digests + untouched row = nothing to do.

    repr() of plain values is stable across runs and much cheaper than sorted JSON; a respelling that
    only reorders keys just misses this fast path and is then compared semantically (still a no-op).
    """
    parts = (
        SPEC_HASH_VERSION,
        desired.workflow_name,
        desired.trigger,
        desired.trigger_kwargs,
        desired.timezone,
        desired.user_inputs,
        desired.enabled,
        desired.misfire_grace_time,
        desired.coalesce,
        desired.max_instances,
        name,
        settings.func,
        settings.namespace,
    )  # not protect, key, source or moved_from: they do not shape the row
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _has_explicit_start(kwargs: dict[str, Any]) -> bool:
    if "start_date" in kwargs:
        return True
    subs = kwargs.get("triggers")
    return isinstance(subs, list) and any(
        isinstance(s, dict) and _has_explicit_start(s.get("trigger_kwargs") or {}) for s in subs
    )


@dataclass
class _Decoded:
    state: dict[str, Any] | None
    error: str | None


def decode(job: LiveJob) -> _Decoded:
    """Decode a live row with the allow-list unpickler; failure is data, not an exception."""
    if job.job_state is None:
        return _Decoded(None, "job_state not read")
    try:
        return _Decoded(load_job_state(job.job_state), None)
    except UnreadableJobState as exc:
        return _Decoded(None, str(exc))


class StatesNeeded(Exception):
    """The plan needs the job_state of rows that were read without it; read them and plan again."""

    def __init__(self, ids: frozenset[str]) -> None:
        super().__init__(f"{len(ids)} job row(s) needed whole")
        self.ids = ids


def _live_view(state: dict[str, Any]) -> dict[str, Any]:
    kwargs = state.get("kwargs") or {}
    trigger: BaseTrigger = state["trigger"]
    return {
        "name": state.get("name"),
        "workflow_name": kwargs.get("workflow_name"),
        "user_inputs": kwargs.get("user_inputs"),
        "trigger": triggers.describe(trigger),
        "trigger_canonical": triggers.canonical_form(trigger),
        "misfire_grace_time": state.get("misfire_grace_time"),
        "coalesce": state.get("coalesce"),
        "max_instances": state.get("max_instances"),
        "func": state.get("func"),
        "next_run_time": _iso(state.get("next_run_time")),
    }


def _desired_view(desired: DesiredSchedule, name: str, trigger: BaseTrigger) -> dict[str, Any]:
    return {
        "name": name,
        "workflow_name": desired.workflow_name,
        "user_inputs": desired.user_inputs,
        "trigger": triggers.describe(trigger),
        "trigger_spec": {"trigger": desired.trigger, **desired.trigger_kwargs, "timezone": desired.timezone},
        "misfire_grace_time": desired.misfire_grace_time,
        "coalesce": desired.coalesce,
        "max_instances": desired.max_instances,
        "enabled": desired.enabled,
        "protect": desired.protect,
    }


def _runs(trigger: BaseTrigger, now: datetime, first: datetime | None = None) -> tuple[str, ...]:
    """The next NEXT_RUNS fire times as ISO strings (from `first` when the job already has one)."""
    try:
        if first is not None:
            rest = triggers.next_fire_times(trigger, NEXT_RUNS - 1, now, previous=first)
            return tuple(t.isoformat() for t in [first, *rest])
        return tuple(t.isoformat() for t in triggers.next_fire_times(trigger, NEXT_RUNS, now))
    except triggers.TriggerError:
        return ()


def _content_identity(state: dict[str, Any]) -> str:
    """What a row *means*, without next_run_time (which the scheduler moves every time it fires)."""
    view = _live_view(state)
    view.pop("next_run_time")
    view.pop("trigger")
    return _json_hash(view)


class _Planner:
    def __init__(self, live: LiveState, settings: PlanSettings, now: datetime) -> None:
        self.settings = settings
        self.now = now
        self.jobs = {j.id: j for j in live.jobs}
        self.workflows = {w.name: w for w in live.workflows if not w.deleted}
        self.deleted_workflows = {w.name for w in live.workflows if w.deleted}
        self.ledger = {e.key: e for e in live.ledger if e.namespace == settings.namespace}
        self.owned_elsewhere = {e.schedule_id: e.namespace for e in live.ledger if e.namespace != settings.namespace}
        self.owner_of = {e.schedule_id: e.key for e in self.ledger.values()}  # schedule_id → our key
        self.decoded: dict[str, _Decoded] = {}
        self.unread: set[str] = set()  # rows read without job_state that the plan turned out to need
        self.claimed: set[str] = set()
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.identities: dict[str, str] = {}
        # Built triggers are shared per distinct spec: compute each one's next runs once per plan.
        self.runs_memo: dict[tuple[int, datetime | None], tuple[str, ...]] = {}
        self.keep_alive: list[BaseTrigger] = []

    def runs(self, trigger: BaseTrigger, first: datetime | None = None) -> tuple[str, ...]:
        key = (id(trigger), first)
        hit = self.runs_memo.get(key)
        if hit is None:
            self.keep_alive.append(trigger)  # ids stay unique while the memo lives
            hit = self.runs_memo[key] = _runs(trigger, self.now, first)
        return hit

    def state_of(self, job: LiveJob) -> _Decoded:
        if job.job_state is None:
            self.unread.add(job.id)
        if job.id not in self.decoded:
            self.decoded[job.id] = decode(job)
        return self.decoded[job.id]

    # -- desired schedules -------------------------------------------------------------------------
    def plan_desired(self, desired: DesiredSchedule, renamed_from: LedgerEntry | None) -> Change:
        entry = self.ledger.get(desired.key)
        source = str(desired.source) if desired.source else None
        workflow = self.workflows.get(desired.workflow_name)
        warnings: list[str] = []
        if workflow is None:
            self.errors.append(self._missing_workflow(desired))
        elif not workflow.is_task:
            warnings.append(f"workflow '{desired.workflow_name}' is not a task (is_task is false)")
        name = resolved_name(desired, workflow)
        digest = spec_hash(desired, name, self.settings)

        action = Action.NOOP
        previous_key = None
        if entry is not None:
            schedule_id = entry.schedule_id
        elif renamed_from is not None:
            schedule_id, action, previous_key = renamed_from.schedule_id, Action.RENAME, renamed_from.key
        else:
            schedule_id = desired.schedule_id or schedule_id_for(self.settings.namespace, desired.key)
            action = Action.CREATE
            owner = self.owner_of.get(schedule_id)
            if schedule_id in self.owned_elsewhere:
                self.errors.append(
                    f"{desired.key}: job {schedule_id} is owned by namespace '{self.owned_elsewhere[schedule_id]}'"
                )
            elif owner is not None:
                # Adopting a job another key of ours owns would plan it twice (or delete it under the adopter).
                self.errors.append(
                    f"{desired.key}: job {schedule_id} already belongs to '{owner}'; "
                    f"to rename '{owner}', write moved_from: {owner} instead of schedule_id"
                )
            elif schedule_id in self.claimed:
                self.errors.append(f"{desired.key}: schedule_id {schedule_id} is claimed by another schedule too")
            elif schedule_id in self.jobs:
                action = Action.ADOPT
        if entry is not None and desired.schedule_id and desired.schedule_id != entry.schedule_id:
            warnings.append(f"schedule_id {desired.schedule_id} ignored: the key already owns {entry.schedule_id}")
        self.claimed.add(schedule_id)
        live = self.jobs.get(schedule_id)
        link = workflow.workflow_id if workflow else None

        # Fast path: the row is byte for byte what we last wrote, from the same spec: nothing to decode.
        if (
            live is not None
            and entry is not None
            and entry.spec_hash == digest
            and entry.row_hash == live.row_hash
            and (workflow is None or workflow.workflow_id in live.workflow_ids)
            and desired.enabled
        ):
            self.identities[live.id] = digest
            return Change(desired.key, Action.NOOP, schedule_id, warnings=tuple(warnings), desired=desired,
                          source=source, link_workflow_id=link, name=name, spec_hash=digest)  # fmt: skip

        base = Change(
            key=desired.key,
            action=action,
            schedule_id=schedule_id,
            desired=desired,
            previous_key=previous_key,
            source=source,
            link_workflow_id=link,
            name=name,
            spec_hash=digest,
        )
        fields: list[FieldChange] = []
        if previous_key:
            fields.append(FieldChange("key", previous_key, desired.key))

        trigger = triggers.build_trigger(desired.trigger, desired.trigger_kwargs, desired.timezone, now=self.now)
        after_view = _desired_view(desired, name, trigger)

        if live is None:
            return self._plan_missing_row(base, entry, desired, trigger, after_view, fields, warnings)

        decoded = self.state_of(live)
        if decoded.state is None:
            self.identities[live.id] = live.row_hash
            warnings.append(f"job row {live.id} is unreadable ({decoded.error}); left alone")
            return replace(
                base,
                action=Action.NOOP if action is not Action.ADOPT else action,
                warnings=tuple(warnings),
                after=after_view,
                fields=tuple(fields),
            )

        state = decoded.state
        self.identities[live.id] = _content_identity(state)
        before_view = _live_view(state)
        if not desired.enabled:
            fields.append(FieldChange("enabled", True, False))
            return replace(
                base,
                action=Action.UPDATE if action is Action.NOOP else action,
                before=before_view,
                after=after_view,
                fields=tuple(fields),
                remove_row=True,
                next_runs_before=self.runs(state["trigger"], state.get("next_run_time")),
                warnings=tuple(warnings),
            )
        phase = _has_explicit_start(desired.trigger_kwargs)
        trigger_changed = triggers.canonical_form(state["trigger"], phase=phase) != triggers.canonical_form(
            trigger, phase=phase
        )
        kwargs = state.get("kwargs") or {}
        compare = [
            ("name", state.get("name"), name),
            ("workflow_name", kwargs.get("workflow_name"), desired.workflow_name),
            ("user_inputs", kwargs.get("user_inputs"), desired.user_inputs),
            ("misfire_grace_time", state.get("misfire_grace_time"), desired.misfire_grace_time),
            ("coalesce", state.get("coalesce"), desired.coalesce),
            ("max_instances", state.get("max_instances"), desired.max_instances),
            ("func", state.get("func"), self.settings.func),
            ("executor", state.get("executor"), "default"),
            ("args", tuple(state.get("args") or ()), ()),
        ]
        for field_name, old, new in compare:
            if old != new:
                fields.append(FieldChange(field_name, old, new))
        if trigger_changed:
            fields.append(FieldChange("trigger", triggers.describe(state["trigger"]), triggers.describe(trigger)))
        column_ok = live.next_run_time == utc_timestamp(state.get("next_run_time"))
        if not column_ok:
            fields.append(
                FieldChange("next_run_time column", live.next_run_time, utc_timestamp(state.get("next_run_time")))
            )
        wanted_links = (workflow.workflow_id,) if workflow else live.workflow_ids
        if workflow and tuple(live.workflow_ids) != wanted_links:
            fields.append(FieldChange("linked workflow", list(live.workflow_ids), list(wanted_links)))
        row_fields = [f for f in fields if f.name not in ("key", "linked workflow")]
        if not fields and action is Action.NOOP:
            # Semantically what the ledger recorded: fingerprint it as such, so a job that merely
            # fired since the plan was saved does not make the plan stale.
            self.identities[live.id] = digest
            return replace(base, warnings=tuple(warnings))
        if action is Action.NOOP:
            action = Action.UPDATE
        drift = entry is not None and entry.spec_hash == digest and bool(fields)
        if drift:
            warnings.append("changed outside reconciler (drift); apply restores the declared state")
        runs_before = self.runs(state["trigger"], state.get("next_run_time"))
        runs_after = self.runs(trigger) if trigger_changed else runs_before
        return replace(
            base,
            action=action,
            before=before_view,
            after=after_view,
            fields=tuple(fields),
            next_runs_before=runs_before,
            next_runs_after=runs_after,
            warnings=tuple(warnings),
            drift=drift,
            write_row=bool(row_fields),
            reschedule=trigger_changed,
        )

    def _plan_missing_row(
        self,
        base: Change,
        entry: LedgerEntry | None,
        desired: DesiredSchedule,
        trigger: BaseTrigger,
        after_view: dict[str, Any],
        fields: list[FieldChange],
        warnings: list[str],
    ) -> Change:
        if not desired.enabled:
            if entry is not None and entry.enabled:
                fields.append(FieldChange("enabled", True, False))
            action = base.action if base.action is not Action.NOOP or fields else Action.NOOP
            if action is Action.CREATE:
                warnings.append("enabled: false — recorded in the ledger, no job is created")
            return replace(base, action=action, after=after_view, fields=tuple(fields), warnings=tuple(warnings))
        if entry is not None and entry.enabled and isinstance(trigger, DateTrigger):
            run_date = trigger.run_date
            if run_date <= self.now:
                return replace(base, action=Action.NOOP, completed=True, warnings=tuple(warnings))
        runs = self.runs(trigger)
        if not runs:
            self.errors.append(f"{desired.key}: the trigger has no future fire time; nothing would run")
        action = base.action
        drift = False
        if entry is not None:
            action = Action.UPDATE if action is Action.NOOP else action
            if entry.enabled:
                drift = True
                warnings.append("job row was deleted outside reconciler (drift); apply recreates it")
            else:
                fields.append(FieldChange("enabled", False, True))
        return replace(
            base,
            action=action,
            after=after_view,
            fields=tuple(fields),
            next_runs_after=runs,
            warnings=tuple(warnings),
            drift=drift,
            write_row=True,
            reschedule=True,
        )

    def _missing_workflow(self, desired: DesiredSchedule) -> str:
        where = f"{desired.source}: " if desired.source else ""
        if desired.workflow_name in self.deleted_workflows:
            return f"{where}{desired.key}: workflow '{desired.workflow_name}' is soft-deleted"
        close = difflib.get_close_matches(desired.workflow_name, list(self.workflows), n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        return f"{where}{desired.key}: workflow '{desired.workflow_name}' does not exist{hint}"

    # -- ledger entries that are no longer declared ---------------------------------------------------
    def plan_removed(self, entry: LedgerEntry) -> Change:
        live = self.jobs.get(entry.schedule_id)
        self.claimed.add(entry.schedule_id)
        before = None
        runs: tuple[str, ...] = ()
        if live is not None:
            decoded = self.state_of(live)
            if decoded.state is not None:
                before = _live_view(decoded.state)
                self.identities[live.id] = _content_identity(decoded.state)
                runs = self.runs(decoded.state["trigger"], decoded.state.get("next_run_time"))
            else:
                self.identities[live.id] = live.row_hash
        source = f"{entry.source_path}:{entry.source_line}" if entry.source_path else None
        kept = ("protect: true — removed from the files but kept; set protect: false to delete it",)
        return Change(
            key=entry.key,
            action=Action.NOOP if entry.protect else Action.DELETE,
            schedule_id=entry.schedule_id,
            before=before,
            source=source,
            next_runs_before=runs,
            warnings=kept if entry.protect else (),
            remove_row=live is not None and not entry.protect,
        )

    # -- everything else ---------------------------------------------------------------------------
    def unmanaged(self) -> list[UnmanagedJob]:
        found: list[UnmanagedJob] = []
        for job in sorted(self.jobs.values(), key=lambda j: j.id):
            if job.id in self.claimed:
                continue
            decoded = self.state_of(job)
            when = datetime.fromtimestamp(job.next_run_time, UTC).isoformat() if job.next_run_time else None
            if decoded.state is None:
                self.identities[job.id] = job.row_hash
                found.append(UnmanagedJob(job.id, "unreadable", None, None, None, when, decoded.error))
                continue
            state = decoded.state
            self.identities[job.id] = _content_identity(state)
            if job.id in self.owned_elsewhere:
                source = f"gitops:{self.owned_elsewhere[job.id]}"
            elif state["func"] == self.settings.func and job.workflow_ids:
                source = "api"
            else:
                source = "decorator"
            kwargs = state.get("kwargs") or {}
            found.append(
                UnmanagedJob(
                    job.id,
                    source,
                    state.get("name"),
                    kwargs.get("workflow_name") if isinstance(kwargs, dict) else None,
                    triggers.describe(state["trigger"]),
                    when,
                    None if source != "decorator" else f"func {state['func']}",
                )
            )
        return found


def compute_plan(
    desired: Sequence[DesiredSchedule],
    live: LiveState,
    settings: PlanSettings,
    now: datetime,
) -> Plan:
    """The plan that takes the database from `live` to `desired`. Pure: same inputs, same plan.

    Raises StatesNeeded when it needs a job_state that `live` holds only the digest of.
    """
    planner = _Planner(live, settings, now)
    declared = {d.key for d in desired}
    renames: dict[str, LedgerEntry] = {}
    for d in desired:
        if d.moved_from and d.key not in planner.ledger and d.moved_from in planner.ledger:
            renames[d.key] = planner.ledger[d.moved_from]
    rename_sources = {e.key for e in renames.values()}

    changes: list[Change] = [planner.plan_desired(d, renames.get(d.key)) for d in desired]
    for key in sorted(planner.ledger):
        if key not in declared and key not in rename_sources:
            changes.append(planner.plan_removed(planner.ledger[key]))
    changes.sort(key=lambda c: c.key)

    deletes = sum(1 for c in changes if c.action is Action.DELETE)
    if not desired and planner.ledger and not settings.allow_empty:
        planner.errors.append(
            f"the schedules directory declares nothing but the ledger owns {len(planner.ledger)} schedule(s): "
            "refusing to delete them all (pass --allow-empty if that is intended)"
        )
    elif deletes > settings.max_deletes:
        planner.errors.append(
            f"the plan deletes {deletes} schedules, more than --max-deletes {settings.max_deletes}: refused"
        )
    unmanaged = planner.unmanaged()
    if planner.unread:
        raise StatesNeeded(frozenset(planner.unread))
    fingerprint = _fingerprint(live, planner.identities)
    return Plan(
        namespace=settings.namespace,
        changes=tuple(changes),
        unmanaged=tuple(unmanaged),
        errors=tuple(planner.errors),
        warnings=tuple(planner.warnings),
        fingerprint=fingerprint,
        computed_at=now.isoformat(),
    )


def _fingerprint(live: LiveState, identities: dict[str, str]) -> str:
    """The live state a plan was computed from, minus what the running scheduler moves on its own."""
    digest = hashlib.sha256()
    for job in sorted(live.jobs, key=lambda j: j.id):
        digest.update(f"job {job.id} {identities.get(job.id, job.row_hash)} {','.join(job.workflow_ids)}\n".encode())
    for e in sorted(live.ledger, key=lambda e: (e.namespace, e.key)):
        digest.update(f"ledger {e.namespace} {e.key} {e.schedule_id} {e.spec_hash} {e.enabled} {e.protect}\n".encode())
    for w in sorted(live.workflows, key=lambda w: w.name):
        digest.update(f"workflow {w.name} {w.workflow_id} {w.deleted} {w.description}\n".encode())
    return digest.hexdigest()
