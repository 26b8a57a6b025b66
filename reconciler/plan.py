"""The plan: desired schedules × live rows × ledger → `Plan`, pure data. No I/O happens here.

Ownership follows Argo CD and Terraform: only keys recorded in the ledger (for this namespace) are
ever updated or deleted; every other row is listed as unmanaged and left alone. A schedule is
compared with its row *semantically* (canonical trigger, name, inputs, options, linker), so an
equivalent spelling is a no-op and an unchanged row is never rewritten (an interval keeps its phase).
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from operator import attrgetter
from typing import Any, NamedTuple

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger

from reconciler import triggers
from reconciler.frozen import build, evolve, maker
from reconciler.jobstate import ORCHESTRATOR_4_FUNC, ORCHESTRATOR_FUNC, ORCHESTRATOR_FUNCS, utc_timestamp
from reconciler.spec import DesiredSchedule
from reconciler.state import ExpectedRow, LedgerEntry, LiveJob, LiveState, Workflow
from reconciler.suggest import missing_workflow

DEFAULT_NAMESPACE = "default"
_NAMESPACE_ROOT = uuid.UUID("6f0c3c1e-4f8e-5b8a-9d51-8a1f2f6c3e10")
NEXT_RUNS = 3
SPEC_HASH_VERSION = 1


class LedgerRecord(StrEnum):
    """What the ledger records for a key after the apply; decided by the plan, executed by apply."""

    KEEP = "keep"  # the entry stays exactly as it is (unchanged, a completed date, a row left alone)
    APPLIED = "applied"  # write `ledger_entry`; it names this apply's commit (created, changed, adopted, renamed)
    KEPT_COMMIT = "kept-commit"  # write `ledger_entry`, same spec: it keeps the commit that set it
    FORGET = "forget"  # remove the entry: the key left the files


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
    # Who applies: `<git remote or repository root>:<schedules directory>`, or `--source`. A plan never
    # changes what another source's ledger entries hold, unless `adopt_from` names that source.
    source: str | None = None
    adopt_from: str | None = None
    # The orchestrator-core generation the rows are written for (reconciler.orchestrator_versions): 4.x rows
    # carry no user_inputs. `orchestrator` says which was found and how, for the plan's header.
    generation: int = 5
    orchestrator: str = "orchestrator-core 5.x (default)"


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
    links_add: tuple[str, ...] = ()  # workflow ids to link the row to (after the row is written)
    links_drop: tuple[str, ...] = ()  # workflow ids whose linker rows to this row go
    ledger: LedgerRecord = LedgerRecord.KEEP
    # The entry to write (APPLIED / KEPT_COMMIT). Its row_hash is that of the row as the plan leaves it;
    # apply puts in the hash of the row it writes (the plan does not pickle).
    ledger_entry: LedgerEntry | None = None
    ledger_drop: tuple[str, ...] = ()  # keys of this namespace whose entries go first (replaced, renamed, deleted)
    desired: DesiredSchedule | None = None
    previous_key: str | None = None  # rename: the ledger key being replaced
    source: str | None = None
    completed: bool = False  # a fired date schedule: its row is gone by design
    name: str | None = None  # the resolved job name
    spec_hash: str | None = None  # digest of the desired spec, as the ledger records it
    owner: str | None = None  # the source whose ledger entry this is (None: unrecorded, or new)
    new_owner: str | None = None  # the source the entry names after the apply (None: no entry, or no source)
    replaces_job_id: str | None = None  # a legacy decorator's row deleted in the same transaction
    inherit_next_run: datetime | None = None  # that row's next run, kept by the new row (same trigger meaning)

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
    orchestrator: str = ""  # the generation planned for and how it was found (PlanSettings.orchestrator)

    def count(self, action: Action) -> int:
        return self._counts.get(action, 0)

    @functools.cached_property
    def _counts(self) -> dict[Action, int]:
        # One pass for every count: a summary line asks for six of them (10,000 changes each).
        return Counter(c.action for c in self.changes)

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
        return self._counts.get(Action.NOOP, 0) != len(self.changes)  # a change that is not NOOP touches the database

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
    """A new schedule's id: uuid5(namespace, key), a UUID as orchestrator-core's REST API requires.

    `str(uuid.uuid5(...))` spelled out (RFC 4122 §4.3: SHA-1, version 5, the RFC variant): a third of its
    cost, without the UUID object (tests/test_plan.py holds it equal to uuid5).
    """
    raw = bytearray(hashlib.sha1(namespace_uuid(namespace).bytes + key.encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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

    The repr() of (SPEC_HASH_VERSION, workflow_name, trigger, trigger_kwargs, timezone, user_inputs, enabled,
    misfire_grace_time, coalesce, max_instances, name, func, namespace), built from the schedule's cached
    `row_parts_repr`. repr() of plain values is stable across runs and much cheaper than sorted JSON; a
    respelling that only reorders keys just misses this fast path and is then compared semantically (still a
    no-op). Not protect, key, source or moved_from: they do not shape the row.
    """
    return _spec_digest(desired.row_parts_repr, name, settings.func, settings.namespace)


@functools.lru_cache(maxsize=1 << 16)
def _spec_digest(row_parts_repr: str, name: str, func: str, namespace: str) -> str:
    # Memoized: the read edge and the planner both ask for each schedule's digest (the strings' own hashes
    # are cached, so a hit costs a fraction of the sha256 and the formatting).
    text = f"({SPEC_HASH_VERSION!r}, {row_parts_repr}, {name!r}, {func!r}, {namespace!r})"
    return hashlib.sha256(text.encode()).hexdigest()


def _has_explicit_start(kwargs: dict[str, Any]) -> bool:
    if "start_date" in kwargs:
        return True
    subs = kwargs.get("triggers")
    return isinstance(subs, list) and any(
        isinstance(s, dict) and _has_explicit_start(s.get("trigger_kwargs") or {}) for s in subs
    )


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


def expected_row(
    desired: DesiredSchedule, entry: LedgerEntry | None, workflow: Workflow | None, digest: str
) -> ExpectedRow | None:
    """The row our ledger says we wrote for this very spec, with its one link; None when there is none to expect.

    A live row that matches it is unchanged: the edge may read only its digest, and the planner plans it as
    unchanged without comparing fields. Anything else (another spec, a disabled schedule, a missing
    workflow, a row we never hashed) is compared in full.
    """
    if entry is None or workflow is None or not desired.enabled or entry.row_hash is None:
        return None
    if entry.spec_hash != digest:
        return None
    return ExpectedRow(entry.row_hash, (workflow.workflow_id,))


def expected_rows(
    desired: Sequence[DesiredSchedule],
    ledger: Sequence[LedgerEntry],
    workflows: Sequence[Workflow],
    settings: PlanSettings,
) -> dict[str, ExpectedRow]:
    """schedule_id → `expected_row` for every declared key of this namespace that has one.

    The edge reads these rows as digests and decodes only those that do not match: whatever it hands
    the planner then is all the planner needs.
    """
    by_name = {w.name: w for w in workflows if not w.deleted}
    entries = {e.key: e for e in ledger if e.namespace == settings.namespace}
    found: dict[str, ExpectedRow] = {}
    for d in desired:
        entry = entries.get(d.key)
        if entry is None:
            continue
        workflow = by_name.get(d.workflow_name)
        expected = expected_row(d, entry, workflow, spec_hash(d, resolved_name(d, workflow), settings))
        if expected is not None:
            found[entry.schedule_id] = expected
    return found


def _links(workflow: Workflow | None, live: LiveJob | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(workflow ids to link, workflow ids to unlink) so the row is linked to exactly its workflow."""
    if workflow is None:
        return (), ()
    existing = live.workflow_ids if live is not None else ()
    add = () if workflow.workflow_id in existing else (workflow.workflow_id,)
    return add, tuple(w for w in existing if w != workflow.workflow_id)


def _same_spec(a: LedgerEntry, b: LedgerEntry) -> bool:
    # Not the row hash: a row the scheduler moved after a run (or hashed by an older version) is the same
    # application of the same spec, so its entry keeps the commit that set it.
    return (a.spec_hash, a.enabled, a.protect) == (b.spec_hash, b.enabled, b.protect)


class _EntryIdentity(NamedTuple):
    """What makes two entries of one key the same record (not who applied it, or when)."""

    spec_hash: str
    enabled: bool
    protect: bool
    row_hash: str | None
    source_path: str | None
    source_line: int | None
    schedule_id: str
    source: str | None


_identity_of = attrgetter(*_EntryIdentity._fields)  # a LedgerEntry's _EntryIdentity, as a plain tuple


def source_parts(source: str) -> tuple[str, str]:
    """(repository, directory) of a source name `<repository>:<directory>` (a `--source` name: (name, ""))."""
    repository, sep, directory = source.rpartition(":")
    return (repository, directory) if sep and not directory.startswith("/") else (source, "")


FORMAT_UPGRADE = (
    "one-time format upgrade: the row is in orchestrator-core 4.x's format (func prefix / no user_inputs), "
    "rewritten as 5.x writes it; its next run is kept"
)


def _format_upgrade(row_fields: Sequence[FieldChange], generation: int) -> bool:
    """A row that differs only by being in 4.x's format, planned for 5.x: after an upgrade, not drift."""
    if generation < 5 or not row_fields:
        return False
    for change in row_fields:
        if change.name == "func" and change.before == ORCHESTRATOR_4_FUNC and change.after == ORCHESTRATOR_FUNC:
            continue
        if change.name == "user_inputs" and change.before is None:
            continue
        return False
    return True


def inputs_on_4x(desired: DesiredSchedule) -> str:
    """The error for user_inputs on a 4.x database: its scheduler task would fail on every run."""
    where = f"{desired.source}: " if desired.source else ""
    return (
        f"{where}{desired.key}: user_inputs {json.dumps(desired.user_inputs)} cannot reach the workflow: "
        "orchestrator-core 4.x's scheduler task takes no user_inputs (every run would fail); remove them, "
        "or upgrade orchestrator-core to 5.x"
    )


def default_user_inputs(user_inputs: Sequence[dict[str, Any]]) -> bool:
    """`[{}]` (or `[]`): no input at all, which orchestrator-core 4.x's scheduler task can run."""
    return all(not item for item in user_inputs)


_unchanged_change = maker(Change, action=Action.NOOP)  # the fast path's Change: one per unchanged schedule


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
        self.claimed: set[str] = set()
        self.left_alone: set[str] = set()  # declared rows that are unreadable: reported, never touched
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

    # -- desired schedules -------------------------------------------------------------------------
    def plan_desired(self, desired: DesiredSchedule, renamed_from: LedgerEntry | None) -> Change:
        unchanged = self._unchanged(desired)
        if unchanged is not None:
            return unchanged
        change = self._plan_desired(desired, renamed_from)
        if desired.replaces_job_id and desired.replaces_job_id != change.schedule_id:
            change = self._take_over(change, desired)
        return self._adopted(change)

    def _adopted(self, change: Change) -> Change:
        """`--adopt-from`: a change to an entry that source owns moves the entry to ours (`< adopt`).

        Every change is labelled with its entry's owner where it is built (`_compare`, `_plan_removed`).
        """
        owner, ours = change.owner, self.settings.source
        if owner is None or owner == ours or owner != self.settings.adopt_from or change.action is Action.DELETE:
            return change
        return evolve(
            change,
            action=Action.ADOPT if change.action is Action.NOOP else change.action,
            fields=(*change.fields, FieldChange("owner", owner, ours)),
        )

    def ownership_errors(self, changes: Sequence[Change]) -> None:
        """Refuse a plan that would change or delete what another source owns, with the ways out."""
        ours = self.settings.source
        if ours is None:
            return  # a caller that names no source (a library call) plans as before ownership was recorded
        touched: dict[str, list[str]] = {}
        for change in changes:
            owner = change.owner
            if owner is None or owner == ours or owner == self.settings.adopt_from:
                continue
            if change.touches_database or change.ledger is not LedgerRecord.KEEP:
                touched.setdefault(owner, []).append(change.key)
        for owner, keys in sorted(touched.items()):
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            message = (
                f"{len(keys)} schedule(s) in namespace '{self.settings.namespace}' are owned by {owner} ({shown}); "
                f"this plan would change or delete them. Use a namespace of your own (--namespace NAME), "
                f"or take them over in one apply with --adopt-from '{owner}'"
            )
            if ours is not None:
                (their_repo, their_dir), (our_repo, our_dir) = source_parts(owner), source_parts(ours)
                if their_repo == our_repo and their_dir != our_dir:
                    message += (
                        f". The schedules directory moved from {their_dir} to {our_dir} in {our_repo}? "
                        f"Then run this command again with --adopt-from '{owner}'"
                    )
            self.errors.append(message)
        if not any(e.source is None for e in self.ledger.values()):
            return  # every entry names its source (the common case): nothing to count
        unrecorded = sum(1 for c in changes if c.owner is None and c.key in self.ledger)
        if unrecorded:
            self.warnings.append(
                f"{unrecorded} schedule(s) recorded before sources were tracked: adopted by {ours} with this apply"
            )

    def _take_over(self, change: Change, desired: DesiredSchedule) -> Change:
        """`replaces:` — the legacy decorator's row goes in the same transaction, so one job remains.

        The first time, the new row keeps the old one's next run (when the trigger means the same). When
        the ledger already holds the key, the row came back: the decorator is still in the orchestrator's
        code and its scheduler wrote it again on start; the plan says so and removes it again.
        """
        old_id = desired.replaces_job_id
        assert old_id is not None
        old = self.jobs.get(old_id)
        if old is None or change.action is Action.DELETE:
            return change
        where = desired.replaces_decorator or "its decorator"
        if old_id in self.owner_of or old_id in self.owned_elsewhere:
            note = f"replaces: job {old_id} is a reconciler schedule, not a decorator's job; left alone"
            return evolve(change, warnings=(*change.warnings, note))
        if old.state is None:
            note = f"replaces: job {old_id} is unreadable ({old.unreadable or 'job_state not read'}); left alone"
            return evolve(change, warnings=(*change.warnings, note))
        old_state = old.state
        self.claimed.add(old_id)
        self.identities[old_id] = _content_identity(old_state)
        removed = FieldChange("decorator job", old_id, None)
        if desired.key in self.ledger:
            note = (
                f"job {old_id} is back: the decorator at {where} is still in the orchestrator's code and its "
                "scheduler writes the row again on every start; delete the decorator (this apply removes the row again)"
            )
            return evolve(
                change,
                action=Action.UPDATE if change.action is Action.NOOP else change.action,
                replaces_job_id=old_id,
                fields=(*change.fields, removed),
                warnings=(*change.warnings, note),
            )
        trigger = triggers.build_trigger(desired.trigger, desired.trigger_kwargs, desired.timezone, now=self.now)
        phase = _has_explicit_start(desired.trigger_kwargs)
        same_meaning = triggers.canonical_form(old_state["trigger"], phase=phase) == triggers.canonical_form(
            trigger, phase=phase
        )
        old_next = old_state.get("next_run_time")
        inherit = old_next if same_meaning and change.write_row and old_next is not None else None
        kept = "next run kept" if inherit is not None else "next run recomputed (the trigger differs)"
        note = f"takes over job {old_id}, stored by the decorator at {where}: one job remains, {kept}"
        return evolve(
            change,
            action=Action.ADOPT if change.action is Action.CREATE else change.action,
            replaces_job_id=old_id,
            inherit_next_run=inherit,
            before=change.before or _live_view(old_state),
            fields=(*change.fields, FieldChange("id", old_id, change.schedule_id), removed),
            next_runs_before=self.runs(old_state["trigger"], old_next),
            next_runs_after=self.runs(trigger, inherit) if inherit is not None else change.next_runs_after,
            warnings=(*change.warnings, note),
        )

    def _unchanged(self, desired: DesiredSchedule) -> Change | None:
        """The common case in one step: a key whose row, links and ledger entry are exactly what the ledger
        recorded for this very spec. None for anything else, which `_plan_desired` plans in full.

        The Change is the one the full path makes for such a key (the test of one answer holds the two
        equal): NOOP, the entry kept, nothing to link. Every condition below is one the full path tests.
        """
        entry = self.ledger.get(desired.key)
        if entry is None or not entry.enabled:  # (a disabled spec has another digest than an enabled entry's)
            return None
        workflow = self.workflows.get(desired.workflow_name)
        if workflow is None or not workflow.is_task or desired.replaces_job_id is not None:
            return None  # an error, a warning, or a takeover to plan
        schedule_id = entry.schedule_id
        if desired.schedule_id and desired.schedule_id != schedule_id:
            return None
        if self.settings.generation < 5 and not default_user_inputs(desired.user_inputs):
            return None
        live = self.jobs.get(schedule_id)
        if live is None or live.row_hash != entry.row_hash or live.workflow_ids != (workflow.workflow_id,):
            return None
        name = resolved_name(desired, workflow)
        digest = spec_hash(desired, name, self.settings)
        source = desired.source
        path, line = (source.path, source.line) if source else (None, None)
        recorded = (entry.spec_hash, entry.protect, entry.source_path, entry.source_line)
        if (digest, desired.protect, path, line) != recorded:
            return None  # another spec, or the entry learns a new protect or position
        ours, owner = self.settings.source, entry.source
        if owner != (ours or owner) or (owner is not None and owner == self.settings.adopt_from and owner != ours):
            return None  # the entry gets a new owner, or --adopt-from moves it
        self.claimed.add(schedule_id)
        self.identities[schedule_id] = digest
        return _unchanged_change(
            key=desired.key,
            schedule_id=schedule_id,
            desired=desired,
            source=str(source) if source else None,
            name=name,
            spec_hash=digest,
            owner=owner,
            new_owner=ours,
        )

    def _plan_desired(self, desired: DesiredSchedule, renamed_from: LedgerEntry | None) -> Change:
        entry = self.ledger.get(desired.key)
        workflow = self.workflows.get(desired.workflow_name)
        change = self._compare(desired, entry, workflow, renamed_from)
        if change.completed or change.schedule_id in self.left_alone:
            return change  # a fired date, or an unreadable row: no row, no link, the entry as it is
        return self._record(change, desired, entry, workflow)

    def _record(
        self, change: Change, desired: DesiredSchedule, entry: LedgerEntry | None, workflow: Workflow | None
    ) -> Change:
        """The ledger and linker decisions for a declared key, from what the comparison found."""
        live = self.jobs.get(change.schedule_id)
        links_add: tuple[str, ...] = ()
        links_drop: tuple[str, ...] = ()
        if desired.enabled and not change.remove_row:
            links_add, links_drop = _links(workflow, live)
        kept = live is not None and not change.write_row and not change.remove_row and desired.enabled
        assert change.spec_hash is not None
        row_hash = live.row_hash if kept and live is not None else None
        path, line = (desired.source.path, desired.source.line) if desired.source else (None, None)
        # Without a source (a library caller), an entry keeps the owner it has.
        source = self.settings.source or (entry.source if entry is not None else None)
        wanted = _EntryIdentity(
            spec_hash=change.spec_hash,
            enabled=desired.enabled,
            protect=desired.protect,
            row_hash=row_hash,
            source_path=path,
            source_line=line,
            schedule_id=change.schedule_id,
            source=source,
        )
        if change.action is Action.NOOP and entry is not None and _identity_of(entry) == wanted:
            # The entry stays as it is, and there is nothing to link: a NOOP's row is linked exactly to its
            # workflow (the fast path's test, or no "linked workflow" field), and a disabled one is not linked.
            return change
        recorded = build(
            LedgerEntry,
            namespace=self.settings.namespace,
            key=desired.key,
            schedule_id=change.schedule_id,
            workflow_name=desired.workflow_name,
            spec_hash=change.spec_hash,
            row_hash=row_hash,
            enabled=desired.enabled,
            protect=desired.protect,
            source_path=path,
            source_line=line,
            source=source,
        )
        record = LedgerRecord.APPLIED
        if change.action is Action.NOOP and entry is not None and _same_spec(entry, recorded):
            # Row untouched; only the ledger learns the new row hash or source position.
            record = LedgerRecord.KEPT_COMMIT
            recorded = evolve(
                recorded,
                applied_commit=entry.applied_commit,
                applied_author=entry.applied_author,
                applied_at=entry.applied_at,
            )
        drop = (desired.key,) if entry is not None else ()
        if change.previous_key:
            drop = (*drop, change.previous_key)
        return evolve(
            change,
            links_add=links_add,
            links_drop=links_drop,
            ledger=record,
            ledger_entry=recorded,
            ledger_drop=drop,
        )

    def _compare(
        self,
        desired: DesiredSchedule,
        entry: LedgerEntry | None,
        workflow: Workflow | None,
        renamed_from: LedgerEntry | None,
    ) -> Change:
        source = str(desired.source) if desired.source else None
        warnings: list[str] = []
        if self.settings.generation < 5 and not default_user_inputs(desired.user_inputs):
            self.errors.append(inputs_on_4x(desired))
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

        owned_by = entry or renamed_from
        entry_source = owned_by.source if owned_by else None
        base = build(
            Change,
            key=desired.key,
            action=action,
            schedule_id=schedule_id,
            desired=desired,
            previous_key=previous_key,
            source=source,
            name=name,
            spec_hash=digest,
            owner=entry_source,
            new_owner=self.settings.source,
        )
        # Fast path: the row is byte for byte what we last wrote from this spec, linked exactly to its
        # workflow (the very test the edge made to skip decoding it): nothing to compare. An expected row
        # implies a ledger entry, so the action is NOOP and there is no previous key.
        expected = expected_row(desired, entry, workflow, digest)
        if live is not None and expected is not None and expected.matches(live.row_hash, live.workflow_ids):
            self.identities[live.id] = digest
            return evolve(base, warnings=tuple(warnings)) if warnings else base

        fields: list[FieldChange] = []
        if previous_key:
            fields.append(FieldChange("key", previous_key, desired.key))

        trigger = triggers.build_trigger(desired.trigger, desired.trigger_kwargs, desired.timezone, now=self.now)
        after_view = _desired_view(desired, name, trigger)

        if live is None:
            # A renamed key is judged by the entry it takes over: a fired date stays completed under its new key.
            return self._plan_missing_row(base, entry or renamed_from, desired, trigger, after_view, fields, warnings)

        if live.state is None:
            # Unreadable (or, against the edge's contract, not read): reported and left alone.
            self.identities[live.id] = live.row_hash
            self.left_alone.add(live.id)
            warnings.append(f"job row {live.id} is unreadable ({live.unreadable or 'job_state not read'}); left alone")
            return evolve(base, action=Action.NOOP, warnings=tuple(warnings), after=after_view, fields=tuple(fields))

        state = live.state
        self.identities[live.id] = _content_identity(state)
        before_view = _live_view(state)
        if not desired.enabled:
            fields.append(FieldChange("enabled", True, False))
            return evolve(
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
        takes_inputs = self.settings.generation >= 5  # 4.x's scheduler task takes workflow_name only
        compare = [
            ("name", state.get("name"), name),
            ("workflow_name", kwargs.get("workflow_name"), desired.workflow_name),
            ("user_inputs", kwargs.get("user_inputs"), desired.user_inputs if takes_inputs else None),
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
        if tuple(live.workflow_ids) != wanted_links:
            fields.append(FieldChange("linked workflow", list(live.workflow_ids), list(wanted_links)))
        row_fields = [f for f in fields if f.name not in ("key", "linked workflow")]
        if not fields and action is Action.NOOP:
            # Semantically what the ledger recorded: fingerprint it as such, so a job that merely
            # fired since the plan was saved does not make the plan stale.
            self.identities[live.id] = digest
            return evolve(base, warnings=tuple(warnings))
        if action is Action.NOOP:
            action = Action.UPDATE
        drift = entry is not None and entry.spec_hash == digest and bool(fields)
        if _format_upgrade(row_fields, self.settings.generation):
            drift = False
            warnings.append(FORMAT_UPGRADE)
        elif drift:
            warnings.append("changed outside reconciler (drift); apply restores the declared state")
        runs_before = self.runs(state["trigger"], state.get("next_run_time"))
        runs_after = self.runs(trigger) if trigger_changed else runs_before
        return evolve(
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
            action = Action.UPDATE if base.action is Action.NOOP and fields else base.action
            if action is Action.CREATE:
                warnings.append("enabled: false — recorded in the ledger, no job is created")
            return evolve(base, action=action, after=after_view, fields=tuple(fields), warnings=tuple(warnings))
        if entry is not None and entry.enabled and isinstance(trigger, DateTrigger):
            run_date = trigger.run_date
            if run_date <= self.now:
                return evolve(base, action=Action.NOOP, completed=True, warnings=tuple(warnings))
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
        return evolve(
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
        message = missing_workflow(desired.key, desired.workflow_name, self.workflows, self.deleted_workflows)
        return f"{where}{message}"

    # -- ledger entries that are no longer declared ---------------------------------------------------
    def plan_removed(self, entry: LedgerEntry) -> Change:
        return self._adopted(self._plan_removed(entry))

    def _plan_removed(self, entry: LedgerEntry) -> Change:
        live = self.jobs.get(entry.schedule_id)
        self.claimed.add(entry.schedule_id)
        before = None
        runs: tuple[str, ...] = ()
        if live is not None:
            if live.state is not None:
                before = _live_view(live.state)
                self.identities[live.id] = _content_identity(live.state)
                runs = self.runs(live.state["trigger"], live.state.get("next_run_time"))
            else:
                self.identities[live.id] = live.row_hash
        source = f"{entry.source_path}:{entry.source_line}" if entry.source_path else None
        if entry.protect:
            kept = ("protect: true — removed from the files but kept; set protect: false to delete it",)
            return Change(entry.key, Action.NOOP, entry.schedule_id, before=before, source=source,
                          next_runs_before=runs, warnings=kept, owner=entry.source)  # fmt: skip
        return Change(
            key=entry.key,
            action=Action.DELETE,
            schedule_id=entry.schedule_id,
            before=before,
            source=source,
            owner=entry.source,
            next_runs_before=runs,
            remove_row=live is not None,
            ledger=LedgerRecord.FORGET,
            ledger_drop=(entry.key,),
        )

    # -- everything else ---------------------------------------------------------------------------
    def unmanaged(self) -> list[UnmanagedJob]:
        found: list[UnmanagedJob] = []
        for job in sorted(self.jobs.values(), key=lambda j: j.id):
            if job.id in self.claimed:
                continue
            when = datetime.fromtimestamp(job.next_run_time, UTC).isoformat() if job.next_run_time else None
            if job.state is None:
                self.identities[job.id] = job.row_hash
                detail = job.unreadable or "job_state not read"
                found.append(UnmanagedJob(job.id, "unreadable", None, None, None, when, detail))
                continue
            state = job.state
            self.identities[job.id] = _content_identity(state)
            if job.id in self.owned_elsewhere:
                source = f"gitops:{self.owned_elsewhere[job.id]}"
            elif (state["func"] == self.settings.func or state["func"] in ORCHESTRATOR_FUNCS) and job.workflow_ids:
                source = "api"
            else:
                source = "decorator"
            kwargs = state.get("kwargs") or {}
            found.append(
                UnmanagedJob(
                    job.id,
                    source,
                    state.get("name"),
                    kwargs.get("workflow_name"),
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

    `live` holds decoded rows; a row read as its digest only is one that matched `expected_rows`.
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
    changes.sort(key=attrgetter("key"))
    planner.ownership_errors(changes)

    deletes = sum(1 for c in changes if c.action is Action.DELETE)
    if not desired and planner.ledger and not settings.allow_empty:
        planner.errors.append(
            f"the schedules directory declares nothing but the ledger owns {len(planner.ledger)} schedule(s): "
            "refusing to delete them all (pass --allow-empty if that is intended)"
        )
    elif deletes > settings.max_deletes:
        planner.errors.append(
            f"the plan deletes {deletes} schedules, more than --max-deletes {settings.max_deletes} "
            f"(pass --max-deletes {deletes} if that is intended)"
        )
    unmanaged = planner.unmanaged()
    fingerprint = _fingerprint(live, planner.identities)
    return Plan(
        namespace=settings.namespace,
        changes=tuple(changes),
        unmanaged=tuple(unmanaged),
        errors=tuple(planner.errors),
        warnings=tuple(planner.warnings),
        fingerprint=fingerprint,
        computed_at=now.isoformat(),
        orchestrator=settings.orchestrator,
    )


def _fingerprint(live: LiveState, identities: dict[str, str]) -> str:
    """The live state a plan was computed from, minus what the running scheduler moves on its own."""
    lines = [
        f"job {job.id} {identities.get(job.id) or job.row_hash} {','.join(job.workflow_ids)}\n"
        for job in sorted(live.jobs, key=attrgetter("id"))
    ]
    lines.extend(
        f"ledger {e.namespace} {e.key} {e.schedule_id} {e.spec_hash} {e.enabled} {e.protect}\n"
        for e in sorted(live.ledger, key=attrgetter("namespace", "key"))
    )
    lines.extend(
        f"workflow {w.name} {w.workflow_id} {w.deleted} {w.description}\n"
        for w in sorted(live.workflows, key=attrgetter("name"))
    )
    return hashlib.sha256("".join(lines).encode()).hexdigest()  # one digest of the whole text, as line by line
