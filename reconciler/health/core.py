"""Did each schedule run? Expected fires × observed starts → one verdict per schedule (pure: no I/O).

Inputs are plain values read elsewhere (`reading`): each job's decoded trigger and options, the
`processes` rows orchestrator-core's scheduler created, the engine's pause flag, the workflows. `now` is
passed in, so a report is a function of its inputs.

Expected fires
    The trigger's own fire times in the window (``triggers.fire_times_between``: start_date, end_date, DST
    gaps and repeated hours as APScheduler computes them), from ``max(since, not_before)``: for a schedule
    the reconciler applied, the fires before its last apply belonged to the trigger it had then (unknown).
    A paused job (NULL next_run_time) expects nothing. A fire too recent to have a process yet (within the
    tolerance of ``now``) is *pending*: neither started nor missed.

Attribution (no column links a process to the schedule that started it)
    A process of the schedule's workflow, created by ``SYSTEM`` (orchestrator-core's scheduler user), is the
    start of a fire ``f`` when ``f - early ≤ started_at ≤ f + misfire_grace_time + latency``:
    ``early`` (default 2 s) allows for the database clock (``started_at`` is the database's
    ``current_timestamp``) running behind the scheduler host's; ``misfire_grace_time`` is how late APScheduler
    still submits a run; ``latency`` (default 10 s) covers the scheduler waking, ``start_process`` and the
    insert. A job without a grace (None: "run however late") gets the whole window. Starts are taken in
    time order; each goes to the nearest fire not yet started of any schedule of its workflow. When fires
    not yet started of two or more schedules were within reach of one start, the nearest-fire rule decided:
    those fires are *ambiguous*, and each schedule involved says so. With ``coalesce`` (orchestrator-core's
    default), fires still within reach of a start that went to a later fire of the same job are *coalesced*:
    APScheduler runs the fires due at one wake-up once.
    A SYSTEM start that no fire explains is counted per workflow as *unexplained* (`schedules force`,
    a second scheduler, a workflow also started by other code).

Verdict
    missed (the instants), failed runs in the window (status failed / aborted / api_unavailable /
    inconsistent_data, with the first line of ``failed_reason``), the last run, *overdue* (``next_run_time``
    further in the past than the tolerance: no scheduler has processed that job), the workflow missing or
    soft-deleted, the row unreadable. Any of these, or a paused engine, is a problem (exit 2).
"""

from __future__ import annotations

import bisect
import functools
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from operator import attrgetter
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger

from reconciler import triggers

FAILED_STATUSES = frozenset({"failed", "aborted", "api_unavailable", "inconsistent_data"})
SCHEDULER_USER = "SYSTEM"  # orchestrator-core's start_process default user, which its scheduler uses


@dataclass(frozen=True)
class Tolerance:
    """How far a start may lie from its fire and still be that fire's start (see the module docstring)."""

    early: timedelta = timedelta(seconds=2)
    latency: timedelta = timedelta(seconds=10)

    def after(self, misfire_grace_time: float | None, window: timedelta) -> timedelta:
        """How late a start may be for a job with this grace (None: no limit, so the whole window)."""
        if misfire_grace_time is None:
            return window + self.latency
        return timedelta(seconds=misfire_grace_time) + self.latency

    def overdue_after(self, misfire_grace_time: float | None) -> timedelta:
        """How far in the past a job's next_run_time may lie while a scheduler is processing it."""
        return timedelta(seconds=misfire_grace_time or 0) + self.latency


@dataclass(frozen=True)
class ScheduleInput:
    """One schedule as read from the database (and, for a fired `date` job, from the ledger and files)."""

    job_id: str
    key: str  # the ledger key for managed schedules, else the job id
    name: str
    workflow_name: str | None  # None: the job does not say (a decorator job's own function)
    source: str  # gitops / api / decorator / unreadable
    trigger: BaseTrigger | None
    next_run_time: datetime | None  # the column, as a UTC instant; None = paused (or no row)
    misfire_grace_time: float | None = 1
    coalesce: bool = True
    row_present: bool = True  # False: a `date` job that fired, its row gone by design
    not_before: datetime | None = None  # fires before this instant are not judged (the last apply)
    error: str | None = None  # why the row could not be read


@dataclass(frozen=True)
class ProcessRun:
    """One `processes` row of a scheduled workflow (created by SYSTEM)."""

    pid: str
    workflow_name: str
    status: str
    started_at: datetime
    last_modified_at: datetime | None = None
    failed_reason: str | None = None


@dataclass(frozen=True)
class Observations:
    """What the database says beyond the jobs; None where it cannot say (no such table)."""

    runs: Sequence[ProcessRun] | None  # None: no processes table (the embedded SQLite default)
    engine_paused: bool | None  # None: no engine_settings table
    workflows: Mapping[str, bool] | None  # workflow name → soft-deleted; None: no workflows table


class Problem(StrEnum):
    MISSED = "missed"
    FAILED = "failed"
    OVERDUE = "overdue"
    WORKFLOW_MISSING = "workflow-missing"
    WORKFLOW_DELETED = "workflow-deleted"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class RunSeen:
    """A process attributed to one fire of a schedule."""

    pid: str
    fire: datetime
    started_at: datetime
    status: str
    failed_reason: str | None
    ambiguous: bool

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def reason_line(self) -> str | None:
        lines = (self.failed_reason or "").strip().splitlines()
        return lines[0].strip() if lines else None


@dataclass(frozen=True)
class ScheduleHealth:
    """The verdict for one schedule over the window."""

    key: str
    job_id: str
    name: str
    workflow: str | None
    source: str
    expected: int  # fires judged (pending ones excluded)
    started: int | None  # None: no processes table to look in
    missed: tuple[datetime, ...]
    coalesced: int
    pending: int
    runs: tuple[RunSeen, ...]
    next_run: datetime | None
    overdue_by: timedelta | None
    paused: bool
    row_present: bool
    workflow_state: str  # ok / missing / soft-deleted / unknown
    error: str | None
    truncated: bool  # more fires than triggers.WINDOW_FIRES_MAX: only the first were judged
    ambiguous: int = 0  # fires whose start was decided by the nearest-fire rule against another schedule

    # Computed once: every rendering asks each schedule for its failures and problems, some several times.
    @functools.cached_property
    def failures(self) -> tuple[RunSeen, ...]:
        return tuple(r for r in self.runs if r.failed)

    @functools.cached_property
    def last_run(self) -> RunSeen | None:
        return max(self.runs, key=lambda r: r.started_at) if self.runs else None

    @property
    def overdue(self) -> bool:
        return self.overdue_by is not None

    @functools.cached_property
    def problems(self) -> tuple[Problem, ...]:
        found = []
        if self.error is not None:
            found.append(Problem.UNREADABLE)
        if self.missed:
            found.append(Problem.MISSED)
        if self.failures:
            found.append(Problem.FAILED)
        if self.overdue:
            found.append(Problem.OVERDUE)
        if self.workflow_state == "missing":
            found.append(Problem.WORKFLOW_MISSING)
        elif self.workflow_state == "soft-deleted":
            found.append(Problem.WORKFLOW_DELETED)
        return tuple(found)


class Liveness(StrEnum):
    PROCESSING = "processing"  # no job is overdue
    STOPPED = "stopped"  # jobs overdue, and no scheduled start since: no scheduler processes this database
    PARTLY = "partly"  # jobs overdue, yet a scheduler started runs since: rows it has not seen
    UNKNOWN = "unknown"  # no active job to tell by


@dataclass(frozen=True)
class HealthReport:
    """Everything `health` found, as data (text, JSON, Markdown and Prometheus render it)."""

    now: datetime
    since: datetime
    tolerance: Tolerance
    schedules: tuple[ScheduleHealth, ...]
    processes_available: bool
    engine_paused: bool | None
    liveness: Liveness
    oldest_overdue: timedelta | None
    unexplained: Mapping[str, int] = field(default_factory=dict)  # workflow → SYSTEM starts no fire explains
    last_scheduled_start: datetime | None = None

    @property
    def problem_schedules(self) -> tuple[ScheduleHealth, ...]:
        return tuple(s for s in self.schedules if s.problems)

    @property
    def healthy(self) -> bool:
        return not self.problem_schedules and not self.engine_paused


# --------------------------------------------------------------------------------------------- expected


@dataclass(eq=False, slots=True)  # compared by identity: two schedules can have equal fires
class _Fire:
    at: datetime  # UTC
    schedule: int  # index into the inputs
    reach: timedelta  # how late a start may be
    run: ProcessRun | None = None
    ambiguous: bool = False
    coalesced: bool = False


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:
        return moment
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


FireCache = dict[tuple[Hashable, datetime], tuple[list[datetime], bool]]


def _trigger_key(trigger: Any) -> Hashable | None:
    """An exact identity for cron triggers (and `or`/`and` of them): the ones costly to step.

    ``str()`` of a CronTrigger lists every non-default field expression; zone, start, end and jitter are
    compared as the objects themselves. Any other trigger: None (not shared; intervals are arithmetic).
    """
    if isinstance(trigger, CronTrigger):
        return ("cron", str(trigger), trigger.timezone, trigger.start_date, trigger.end_date, trigger.jitter)
    if isinstance(trigger, AndTrigger | OrTrigger):
        parts = tuple(_trigger_key(sub) for sub in trigger.triggers)
        return None if None in parts else (type(trigger).__name__, parts, trigger.jitter)
    return None


def expected_fires(
    schedule: ScheduleInput, since: datetime, now: datetime, cache: FireCache | None = None
) -> tuple[list[datetime], bool]:
    """The fires of one schedule that the window judges (UTC instants), and whether the list was cut short.

    With ``cache``, schedules with the same cron trigger (see `_trigger_key`) share one computation: a cron
    step costs APScheduler a few hundred microseconds, and many jobs share a trigger.
    """
    if schedule.trigger is None or (schedule.row_present and schedule.next_run_time is None):
        return [], False  # unreadable, or paused: APScheduler runs nothing for a NULL next_run_time
    start = max(since, _utc(schedule.not_before)) if schedule.not_before else since
    if start > now:
        return [], False
    key = _trigger_key(schedule.trigger) if cache is not None else None
    if cache is None or key is None:
        return _window_fires(schedule.trigger, start, now)
    found = cache.get((key, start))
    if found is None:
        found = cache[(key, start)] = _window_fires(schedule.trigger, start, now)
    return found


def _window_fires(trigger: BaseTrigger, start: datetime, now: datetime) -> tuple[list[datetime], bool]:
    times, truncated = triggers.fire_times_between(trigger, start, now)
    return [_utc(t) for t in times], truncated


# ------------------------------------------------------------------------------------------- attribution


def _attribute(fires: list[_Fire], runs: Iterable[ProcessRun], early: timedelta, since: datetime) -> int:
    """Give each run (oldest first) the nearest fire within reach not yet started; returns the unexplained.

    A start so early in the window that it may belong to a fire before ``since`` is not called unexplained.
    """
    fires.sort(key=attrgetter("at"))
    instants = [f.at for f in fires]
    longest = max((f.reach for f in fires), default=timedelta(0))
    unexplained = 0
    for run in sorted(runs, key=attrgetter("started_at")):
        at = _utc(run.started_at)
        low = bisect.bisect_left(instants, at - longest)
        high = bisect.bisect_right(instants, at + early)
        free = [f for f in fires[low:high] if f.run is None and f.at - early <= at <= f.at + f.reach]
        if not free:
            if at - longest >= since:
                unexplained += 1
            continue
        if len(free) == 1:  # the common case: one fire within reach
            free[0].run = run
            continue
        chosen = min(free, key=lambda f: (abs(at - f.at), f.at))
        chosen.run = run
        if len({f.schedule for f in free}) > 1:  # the nearest rule decided between schedules: say so on all
            for fire in free:
                fire.ambiguous = True
    return unexplained


def _mark_coalesced(own: list[_Fire]) -> None:
    """Fires of one coalescing job (oldest first) still within reach of a start that went to a later fire."""
    reached_by: datetime | None = None  # the start of the next started fire, walking backwards
    for fire in reversed(own):
        if fire.run is not None:
            reached_by = _utc(fire.run.started_at)
        elif reached_by is not None and reached_by - fire.at <= fire.reach:
            fire.coalesced = True


# ---------------------------------------------------------------------------------------------- verdict


def _workflow_state(name: str | None, workflows: Mapping[str, bool] | None) -> str:
    if name is None or workflows is None:
        return "unknown"
    if name not in workflows:
        return "missing"
    return "soft-deleted" if workflows[name] else "ok"


def assess(
    inputs: Sequence[ScheduleInput],
    seen: Observations,
    *,
    now: datetime,
    since: datetime,
    tolerance: Tolerance = Tolerance(),
) -> HealthReport:
    """The verdict for every schedule over ``[since, now]``."""
    now, since = _utc(now), _utc(since)
    window = now - since
    # Each schedule's fires, oldest first (fire_times_between lists them strictly increasing), shared by
    # reference with its workflow's list, in which attribution looks for the nearest fire.
    fires_by_schedule: list[list[_Fire]] = []
    fires_by_workflow: dict[str | None, list[_Fire]] = defaultdict(list)
    truncated: set[int] = set()
    cache: FireCache = {}
    for index, schedule in enumerate(inputs):
        times, cut = expected_fires(schedule, since, now, cache)
        if cut:
            truncated.add(index)
        reach = tolerance.after(schedule.misfire_grace_time, window)
        own = [_Fire(at, index, reach) for at in times]
        fires_by_schedule.append(own)
        fires_by_workflow[schedule.workflow_name].extend(own)

    unexplained: dict[str, int] = {}
    runs_by_workflow: dict[str, list[ProcessRun]] = defaultdict(list)
    for run in seen.runs or ():
        if _utc(run.started_at) <= now:  # a window in the past (--until) ignores what started after it
            runs_by_workflow[run.workflow_name].append(run)
    if seen.runs is not None:
        scheduled = {s.workflow_name for s in inputs}
        for workflow, runs in runs_by_workflow.items():
            if workflow not in scheduled:
                continue  # started by SYSTEM, but no schedule names this workflow: not ours to judge
            count = _attribute(fires_by_workflow[workflow], runs, tolerance.early, since)
            if count:
                unexplained[workflow] = count
        for schedule, own in zip(inputs, fires_by_schedule, strict=True):
            if schedule.workflow_name is not None and schedule.coalesce:
                _mark_coalesced(own)

    results = [
        _verdict(schedule, own, seen, now, tolerance, index in truncated)
        for index, (schedule, own) in enumerate(zip(inputs, fires_by_schedule, strict=True))
    ]
    starts = [_utc(r.started_at) for r in seen.runs or () if _utc(r.started_at) <= now]
    liveness, oldest = _liveness(results, starts if seen.runs is not None else None)
    return HealthReport(
        now=now,
        since=since,
        tolerance=tolerance,
        schedules=tuple(results),
        processes_available=seen.runs is not None,
        engine_paused=seen.engine_paused,
        liveness=liveness,
        oldest_overdue=oldest,
        unexplained=unexplained,
        last_scheduled_start=max(starts) if starts else None,
    )


def _verdict(
    schedule: ScheduleInput,
    fires: list[_Fire],
    seen: Observations,
    now: datetime,
    tolerance: Tolerance,
    truncated: bool,
) -> ScheduleHealth:
    observed = seen.runs is not None and schedule.workflow_name is not None
    expected = pending = coalesced = ambiguous = 0
    runs: list[RunSeen] = []
    missed: list[datetime] = []
    for fire in fires:  # one pass, oldest first
        run = fire.run
        if run is None and not fire.coalesced and fire.at + fire.reach > now:
            pending += 1  # too recent to have a process yet: neither started nor missed
            continue
        expected += 1
        coalesced += fire.coalesced
        ambiguous += fire.ambiguous
        if run is not None:
            runs.append(RunSeen(run.pid, fire.at, _utc(run.started_at), run.status, run.failed_reason, fire.ambiguous))
        elif not fire.coalesced and observed:
            missed.append(fire.at)
    overdue_by = None
    if schedule.row_present and schedule.next_run_time is not None:
        late = now - _utc(schedule.next_run_time)
        if late > tolerance.overdue_after(schedule.misfire_grace_time):
            overdue_by = late
    return ScheduleHealth(
        key=schedule.key,
        job_id=schedule.job_id,
        name=schedule.name,
        workflow=schedule.workflow_name,
        source=schedule.source,
        expected=expected,
        started=len(runs) if observed else None,
        missed=tuple(missed),
        coalesced=coalesced,
        pending=pending,
        runs=tuple(runs),
        next_run=_utc(schedule.next_run_time) if schedule.next_run_time else None,
        overdue_by=overdue_by,
        paused=schedule.row_present and schedule.next_run_time is None and schedule.error is None,
        row_present=schedule.row_present,
        workflow_state=_workflow_state(schedule.workflow_name, seen.workflows),
        error=schedule.error,
        truncated=truncated,
        ambiguous=ambiguous,
    )


def _liveness(
    results: Sequence[ScheduleHealth], starts: Sequence[datetime] | None
) -> tuple[Liveness, timedelta | None]:
    """STOPPED when jobs are overdue and nothing says a scheduler ran since the oldest of them fell due.

    A job whose next run lies ahead says nothing (it may not have been due yet). With a processes table,
    a scheduled start after the oldest overdue instant shows a scheduler at work that does not see those
    rows (PARTLY); without one, only "every active job overdue" is STOPPED.
    """
    active = [r for r in results if r.row_present and r.next_run is not None]
    overdue = [r for r in active if r.overdue_by is not None]
    if not active:
        return Liveness.UNKNOWN, None
    if not overdue:
        return Liveness.PROCESSING, None
    oldest = max(r.overdue_by for r in overdue if r.overdue_by is not None)
    if starts is None:
        return (Liveness.STOPPED if len(overdue) == len(active) else Liveness.PARTLY), oldest
    stuck_since = min(r.next_run for r in overdue if r.next_run is not None)
    return (Liveness.PARTLY if any(at > stuck_since for at in starts) else Liveness.STOPPED), oldest
