"""The schedule file format (DESIGN.md §2) as pydantic models, and the resolved `DesiredSchedule`.

`ScheduleFile` is what a YAML file may contain; it is the source of `schema/schedules.schema.json`.
`DesiredSchedule` is one schedule after the file's `defaults:` and the global defaults were applied:
plain, frozen data that the planner compares with the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reconciler.frozen import cached_value

KEY_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
TRIGGER_NAMES = ("interval", "cron", "date", "calendarinterval", "and", "or")
TriggerName = Literal["interval", "cron", "date", "calendarinterval", "and", "or"]

# orchestrator-core's job defaults (APScheduler's, with coalesce set by orchestrator-core).
DEFAULT_MISFIRE_GRACE_TIME = 1
DEFAULT_COALESCE = True
DEFAULT_MAX_INSTANCES = 1
DEFAULT_TIMEZONE = "UTC"
DEFAULT_USER_INPUTS: tuple[dict[str, Any], ...] = ({},)


class _Strict(BaseModel):
    # strict: YAML already types its scalars, so "yes" for a bool or "1" for an int is a mistake to report.
    model_config = ConfigDict(extra="forbid", strict=True)


# APScheduler compares the lateness of a run with timedelta(seconds=misfire_grace_time): a longer grace
# raises OverflowError in the runner's thread for every run, so it is refused here.
MAX_GRACE_SECONDS = timedelta.max.days * 86_400


class FileDefaults(_Strict):
    """Values that fill the fields the schedules of the same file leave out."""

    timezone: str | None = Field(None, description="IANA time zone name, e.g. Europe/Amsterdam.")
    user_inputs: list[dict[str, Any]] | None = None
    enabled: bool | None = None
    misfire_grace_time: int | None = Field(None, ge=1, le=MAX_GRACE_SECONDS)
    coalesce: bool | None = None
    max_instances: int | None = Field(None, ge=1)
    protect: bool | None = None


_NO_DEFAULTS = FileDefaults()  # a file without `defaults:` (read only: every field None)


class ReplacesSpec(_Strict):
    """A job a legacy decorator wrote, which this schedule takes over (written by `load-initial-schedule`)."""

    job_id: str = Field(min_length=1, max_length=191, description="The decorator's `id=`: its row in apscheduler_jobs.")
    decorator: str | None = Field(
        None,
        description="path:line of the decorator: named when its scheduler writes the row back.",
    )


class ScheduleSpec(_Strict):
    """One schedule as written in a file (before defaults are applied)."""

    key: str = Field(
        pattern=KEY_PATTERN,
        description="Identity of the schedule, unique across the whole directory.",
    )
    workflow_name: str = Field(min_length=1, description="A row of `workflows` (not soft-deleted).")
    name: str | None = Field(None, description="Display name; default: the workflow's description.")
    trigger: TriggerName = Field(description="APScheduler 3.11 trigger type.")
    trigger_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Arguments of the trigger class; `cron` also takes {crontab: 'm h dom mon dow'}; "
        "`and`/`or` take {triggers: [{trigger, trigger_kwargs}, ...]}.",
    )
    timezone: str | None = Field(None, description="IANA time zone; default: defaults.timezone, else UTC.")
    user_inputs: list[dict[str, Any]] | None = Field(None, description="Workflow inputs; default [{}].")
    enabled: bool | None = Field(None, description="false: no job in apscheduler_jobs, ledger entry kept.")
    misfire_grace_time: int | None = Field(None, ge=1, le=MAX_GRACE_SECONDS, description="Seconds; default 1.")
    coalesce: bool | None = None
    max_instances: int | None = Field(None, ge=1)
    protect: bool | None = Field(None, description="true: reconcile never deletes it.")
    moved_from: str | None = Field(None, pattern=KEY_PATTERN, description="Former key: rename without delete + create.")
    schedule_id: str | None = Field(
        None,
        min_length=1,
        max_length=191,
        description="Adopt the existing job with this id (written by `schedules import`); "
        "default: uuid5(namespace, key).",
    )
    replaces: ReplacesSpec | None = Field(
        None,
        description="A legacy decorator's job: the apply that creates this schedule deletes that row in the same "
        "transaction and keeps its next run, so one job remains.",
    )


class ScheduleFile(_Strict):
    """The top level of a file in schedules.d/."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        title="reconciler schedule file",
        json_schema_extra={"$id": "https://reconciler.invalid/schemas/schedules.schema.json"},
    )

    defaults: FileDefaults | None = None
    schedules: list[ScheduleSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class SourceLocation:
    """Where a schedule was declared."""

    path: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class DesiredSchedule:
    """A schedule as the repository wants it, every default resolved."""

    key: str
    workflow_name: str
    trigger: str
    trigger_kwargs: dict[str, Any]
    timezone: str
    name: str | None = None  # None: the workflow's description, looked up at plan time
    user_inputs: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    enabled: bool = True
    misfire_grace_time: int = DEFAULT_MISFIRE_GRACE_TIME
    coalesce: bool = DEFAULT_COALESCE
    max_instances: int = DEFAULT_MAX_INSTANCES
    protect: bool = False
    moved_from: str | None = None
    schedule_id: str | None = None
    source: SourceLocation | None = None
    replaces_job_id: str | None = None  # a legacy decorator's row this schedule takes over
    replaces_decorator: str | None = None  # that decorator's path:line

    @cached_value
    def row_parts_repr(self) -> str:
        """repr() of the fields the job row is built from, comma-joined as inside a tuple's repr.

        The plan's spec digest is asked twice per schedule (by the read edge and by the planner); the repr of
        the trigger's and inputs' dicts is most of its cost, so it is made once. Not a field: a copy made with
        `dataclasses.replace` starts without it.
        """
        parts = (
            self.workflow_name,
            self.trigger,
            self.trigger_kwargs,
            self.timezone,
            self.user_inputs,
            self.enabled,
            self.misfire_grace_time,
            self.coalesce,
            self.max_instances,
        )
        return ", ".join(map(repr, parts))

    def found_at(self, source: SourceLocation) -> DesiredSchedule:
        """This schedule, declared at `source`: a copy of its `__dict__`, at a fifth of `dataclasses.replace`'s
        cost (one per schedule when sources become repository-relative). `row_parts_repr`, if cached, stays:
        the source is not among its fields."""
        moved: DesiredSchedule = object.__new__(DesiredSchedule)
        moved.__dict__.update(self.__dict__, source=source)
        return moved


def _pick(own: Any, file_default: Any, fallback: Any) -> Any:
    if own is not None:
        return own
    if file_default is not None:
        return file_default
    return fallback


def resolve(spec: ScheduleSpec, defaults: FileDefaults | None, source: SourceLocation) -> DesiredSchedule:
    """Apply file defaults, then global defaults: absent means default, never "as in the database"."""
    d = defaults or _NO_DEFAULTS

    return DesiredSchedule(
        key=spec.key,
        workflow_name=spec.workflow_name,
        name=spec.name,
        trigger=spec.trigger,
        trigger_kwargs=dict(spec.trigger_kwargs),
        timezone=_pick(spec.timezone, d.timezone, DEFAULT_TIMEZONE),
        user_inputs=_pick(spec.user_inputs, d.user_inputs, [dict(x) for x in DEFAULT_USER_INPUTS]),
        enabled=_pick(spec.enabled, d.enabled, True),
        misfire_grace_time=_pick(spec.misfire_grace_time, d.misfire_grace_time, DEFAULT_MISFIRE_GRACE_TIME),
        coalesce=_pick(spec.coalesce, d.coalesce, DEFAULT_COALESCE),
        max_instances=_pick(spec.max_instances, d.max_instances, DEFAULT_MAX_INSTANCES),
        protect=_pick(spec.protect, d.protect, False),
        moved_from=spec.moved_from,
        schedule_id=spec.schedule_id,
        source=source,
        replaces_job_id=spec.replaces.job_id if spec.replaces else None,
        replaces_decorator=spec.replaces.decorator if spec.replaces else None,
    )


def as_plain(schedule: DesiredSchedule) -> dict[str, Any]:
    """A DesiredSchedule as a JSON-able dict (for plans and tests)."""
    return {
        "key": schedule.key,
        "workflow_name": schedule.workflow_name,
        "name": schedule.name,
        "trigger": schedule.trigger,
        "trigger_kwargs": schedule.trigger_kwargs,
        "timezone": schedule.timezone,
        "user_inputs": schedule.user_inputs,
        "enabled": schedule.enabled,
        "misfire_grace_time": schedule.misfire_grace_time,
        "coalesce": schedule.coalesce,
        "max_instances": schedule.max_instances,
        "protect": schedule.protect,
        "moved_from": schedule.moved_from,
        "schedule_id": schedule.schedule_id,
        "replaces": (
            {"job_id": schedule.replaces_job_id, "decorator": schedule.replaces_decorator}
            if schedule.replaces_job_id
            else None
        ),
    }
