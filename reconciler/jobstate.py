"""The `apscheduler_jobs.job_state` wire format: read it safely, write it as APScheduler does.

Reading uses an allow-list unpickler: APScheduler trigger classes, their cron fields and expressions,
datetime, zoneinfo and pytz. Nothing else can be named by a row, so a row can never run code here,
and the job's `func` (a "module:name" string) is never imported. A row that fails is *unreadable*:
reported and left alone (APScheduler's own SQLAlchemyJobStore would delete it).

Writing builds a real `apscheduler.job.Job` and pickles `Job.__getstate__()` with protocol 5, exactly
as `SQLAlchemyJobStore.add_job` does in orchestrator-core's scheduler.
"""

from __future__ import annotations

import functools
import hashlib
import io
import pickle
from calendar import timegm
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.job import Job
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger

from reconciler.state import row_hash

ORCHESTRATOR_FUNC = "orchestrator.core.schedules.service:run_start_workflow_scheduler_task"  # 5.x
ORCHESTRATOR_4_FUNC = "orchestrator.schedules.service:run_start_workflow_scheduler_task"  # 4.7, 4.8
# Both are orchestrator-core's own scheduler task: a row with either (and a linker row) is an API schedule.
ORCHESTRATOR_FUNCS = frozenset({ORCHESTRATOR_FUNC, ORCHESTRATOR_4_FUNC})
JOB_STATE_KEYS = frozenset(
    {
        "version", "id", "func", "trigger", "executor", "args", "kwargs", "name",
        "misfire_grace_time", "coalesce", "max_instances", "next_run_time",
    }
)  # fmt: skip

_TRIGGER_CLASSES = {
    ("apscheduler.triggers.date", "DateTrigger"),
    ("apscheduler.triggers.interval", "IntervalTrigger"),
    ("apscheduler.triggers.cron", "CronTrigger"),
    ("apscheduler.triggers.calendarinterval", "CalendarIntervalTrigger"),
    ("apscheduler.triggers.combining", "AndTrigger"),
    ("apscheduler.triggers.combining", "OrTrigger"),
}
_ALLOWED = _TRIGGER_CLASSES | {
    ("apscheduler.triggers.cron.fields", name)
    for name in ("BaseField", "MonthField", "DayOfMonthField", "WeekField", "DayOfWeekField")
} | {
    ("apscheduler.triggers.cron.expressions", name)
    for name in (
        "AllExpression", "RangeExpression", "MonthRangeExpression", "WeekdayRangeExpression",
        "WeekdayPositionExpression", "LastDayOfMonthExpression",
    )
} | {
    ("datetime", name) for name in ("datetime", "date", "time", "timedelta", "timezone")
} | {("zoneinfo", "ZoneInfo"), ("pytz", "_p"), ("pytz", "_UTC")}  # fmt: skip
_ALLOWED_SUBTRIGGER_REFS = {f"{module}:{name}" for module, name in _TRIGGER_CLASSES}


class UnreadableJobState(ValueError):
    """A job_state blob that the allow-list unpickler refused, or that is not a version-1 job."""


def _guarded_getattr(obj: Any, name: str) -> Any:
    # Protocol 5 pickles ZoneInfo as getattr(ZoneInfo, "_unpickle"); allow exactly that.
    from zoneinfo import ZoneInfo

    if obj is ZoneInfo and name == "_unpickle":
        return ZoneInfo._unpickle  # type: ignore[attr-defined]
    raise pickle.UnpicklingError(f"getattr({obj!r}, {name!r}) is not allowed")


def _checked_combining(base: type[AndTrigger] | type[OrTrigger]) -> type:
    # AndTrigger/OrTrigger.__setstate__ imports every "module:Class" named in its state; check them
    # first, then hand the object back as the real class so it re-pickles byte for byte.
    class Checked(base):  # type: ignore[valid-type, misc]
        __slots__ = ()  # same layout as the base, so __class__ can be switched back

        def __setstate__(self, state: dict[str, Any]) -> None:
            for entry in state["triggers"]:  # a state without them fails here as in the base class
                ref = entry[0] if isinstance(entry, tuple | list) and entry else None
                if ref not in _ALLOWED_SUBTRIGGER_REFS:
                    raise pickle.UnpicklingError(f"sub-trigger class {ref!r} is not allowed")
            super().__setstate__(state)
            self.__class__ = base

    return Checked


class _AllowListUnpickler(pickle.Unpickler):
    # Allowed globals already looked up: a job state names about nine, and 10,000 rows are read at once.
    _found: dict[tuple[str, str], Any] = {}  # noqa: RUF012  (a cache shared by every instance, on purpose)

    def find_class(self, module: str, name: str) -> Any:
        known = self._found.get((module, name))
        if known is not None:
            return known
        if module == "builtins" and name == "getattr":
            return _guarded_getattr
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        found = super().find_class(module, name)
        if found is AndTrigger or found is OrTrigger:
            found = _checked_combining(found)
        self._found[(module, name)] = found
        return found


def load_job_state(blob: bytes) -> dict[str, Any]:
    """Unpickle a job_state with the allow-list; raises UnreadableJobState."""
    try:
        state = _AllowListUnpickler(io.BytesIO(blob)).load()
    except Exception as exc:  # any failure is "unreadable", never a crash
        raise UnreadableJobState(f"cannot unpickle job_state: {exc}") from exc
    if not isinstance(state, dict):
        raise UnreadableJobState("job_state is not a dict")
    if state.get("version", 1) != 1:
        raise UnreadableJobState(f"job_state has version {state.get('version')!r}; only version 1 is readable")
    missing = JOB_STATE_KEYS - state.keys()
    if missing:
        raise UnreadableJobState(f"job_state lacks {', '.join(sorted(missing))}")
    if not isinstance(state["trigger"], BaseTrigger):
        raise UnreadableJobState("job_state trigger is not an APScheduler trigger")
    if not isinstance(state["func"], str):
        raise UnreadableJobState("job_state func is not a text reference")
    if not isinstance(state["kwargs"], dict):  # APScheduler's Job refuses anything else too
        raise UnreadableJobState("job_state kwargs is not a mapping")
    return state


@dataclass(frozen=True)
class JobRow:
    """One `apscheduler_jobs` row, ready to write: column and pickle agree by construction."""

    id: str
    next_run_time: float | None
    job_state: bytes

    @functools.cached_property
    def state_digest(self) -> str:
        """sha256 hex of job_state: the ledger's row hash and the check after commit both need it."""
        return state_digest(self.job_state)

    @property
    def row_hash(self) -> str:
        return row_hash(self.state_digest, self.next_run_time)


def state_digest(job_state: bytes) -> str:
    """sha256 hex of a job_state, as PostgreSQL's encode(sha256(job_state), 'hex') computes it too."""
    return hashlib.sha256(job_state).hexdigest()


def _placeholder() -> None:
    """Stands in for the job's callable: Job.__getstate__ inspects func, which must not be imported."""


def utc_timestamp(moment: datetime | None) -> float | None:
    """The `next_run_time` column value: UTC epoch seconds, as APScheduler computes it."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC)
    # APScheduler: timegm(utctimetuple()) + microsecond / 1e6 — reproduced so the floats are identical.
    return timegm(utc.utctimetuple()) + utc.microsecond / 1_000_000


def build_job_row(
    *,
    job_id: str,
    trigger: BaseTrigger,
    workflow_name: str,
    user_inputs: list[dict[str, Any]] | None,
    name: str,
    next_run_time: datetime | None,
    misfire_grace_time: int | None = 1,
    coalesce: bool = True,
    max_instances: int = 1,
    func: str = ORCHESTRATOR_FUNC,
    extra_kwargs: Mapping[str, Any] | None = None,
) -> JobRow:
    """A row exactly as orchestrator-core's scheduler writes one, from APScheduler's own `Job`.

    One `pickle.dumps` per row. (A pickler that spliced each distinct trigger's pickle into every row was
    removed: on bench's 10,000-schedule tree it saved under 0.1 s of CPU, about 2% of a whole apply.)
    """
    job = Job.__new__(Job)
    job.id = job_id
    job.func_ref = func
    job.func = _placeholder
    job.trigger = trigger
    job.executor = "default"
    job.args = ()
    # user_inputs=None: orchestrator-core 4.x's scheduler task takes workflow_name only.
    inputs = {} if user_inputs is None else {"user_inputs": user_inputs}
    job.kwargs = {"workflow_name": workflow_name, **inputs, **(extra_kwargs or {})}
    job.name = name
    job.misfire_grace_time = misfire_grace_time
    job.coalesce = coalesce
    job.max_instances = max_instances
    job.next_run_time = next_run_time
    state = job.__getstate__()
    return JobRow(job_id, utc_timestamp(next_run_time), pickle.dumps(state, pickle.HIGHEST_PROTOCOL))


def repickle(state: Mapping[str, Any], **changes: Any) -> bytes:
    """Re-serialise a loaded state, optionally with some keys changed, the way APScheduler would."""
    merged = dict(state)
    merged.update(changes)
    job = Job.__new__(Job)
    job.func = _placeholder
    job.func_ref = merged["func"]
    for key in JOB_STATE_KEYS - {"version", "func"}:
        setattr(job, key, merged[key])
    return pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL)
