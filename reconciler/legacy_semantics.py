"""What orchestrator-core's ``@scheduler(name, time_unit, period=1, at=None)`` meant, by version.

Up to 4.3 the decorator only tagged the function; ``python main.py scheduler run`` then called
``getattr(schedule.every(period), time_unit)``, ``.at(at)`` and ``.do(func)`` with the `schedule` package:
host-local wall-clock times, ``at`` honoured for days, hours, minutes and weekdays, singular units only
with period 1, weekday units (``monday``) weekly. From 4.4 the same decorator is an APScheduler shim:
``time_unit="day"`` with ``at="HH:MM"`` is a daily cron, anything else an interval of ``{unit: period}``
with ``at`` ignored, and the job is stored under ``id or func.__name__``.

The same call can mean different schedules: ``time_unit="hour", at=":30"`` ran hourly at :30 before
4.4 and hourly from the start after. Both readings are computed here (pure, no I/O) so that a caller
who does not know the version can tell whether it matters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Era(StrEnum):
    """The two meanings of the decorator."""

    SCHEDULE_PACKAGE = "schedule"  # orchestrator-core up to 4.3
    APSCHEDULER_SHIM = "apscheduler"  # orchestrator-core 4.4 and later

    @property
    def label(self) -> str:
        return "up to 4.3 (the `schedule` package)" if self is Era.SCHEDULE_PACKAGE else "4.4+ (APScheduler)"


_VERSION = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.\d+)?(?:[.-]?\w+)?\s*$")


def era_of_version(version: str) -> Era:
    """`4.2`, `4.3.1` → the `schedule` package; `4.4`, `4.8`, `5.5.0` → APScheduler. ValueError otherwise."""
    match = _VERSION.match(version)
    if not match:
        raise ValueError(f"orchestrator-core version {version!r} is not MAJOR.MINOR[.PATCH] (e.g. 4.2, 4.8, 5.5)")
    major, minor = int(match.group(1)), int(match.group(2))
    return Era.SCHEDULE_PACKAGE if (major, minor) <= (4, 3) else Era.APSCHEDULER_SHIM


@dataclass(frozen=True)
class Reading:
    """One meaning of a decorator: a trigger, or why it never scheduled anything (or cannot be written)."""

    trigger: str | None
    trigger_kwargs: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.trigger is None:
            return str(self.problem)
        args = ", ".join(f"{k}: {v!r}" for k, v in self.trigger_kwargs.items())
        return f"{self.trigger} {{{args}}}"

    def same_schedule(self, other: Reading) -> bool:
        """Whether both readings schedule the same (two that never scheduled anything agree too)."""
        if self.trigger is None and other.trigger is None:
            return True
        return (self.trigger, self.trigger_kwargs) == (other.trigger, other.trigger_kwargs)


SHIM_UNITS = {
    "second": "seconds",
    "seconds": "seconds",
    "minute": "minutes",
    "minutes": "minutes",
    "hour": "hours",
    "hours": "hours",
    "day": "days",
    "days": "days",
}
_SINGULAR = {"second": "seconds", "minute": "minutes", "hour": "hours", "day": "days", "week": "weeks"}
_PLURAL = frozenset(_SINGULAR.values())
_WEEKDAYS = {
    "monday": "mon",
    "tuesday": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}
_DAY_AT = re.compile(r"^([0-2]\d):([0-5]\d)(?::([0-5]\d))?$")
_HOUR_AT = re.compile(r"^([0-5]\d)?:([0-5]\d)$")
_MINUTE_AT = re.compile(r"^:([0-5]\d)$")


def _never(reason: str) -> Reading:
    return Reading(None, problem=f"{reason}, so it never scheduled anything; nothing to migrate")


def _by_hand(reason: str) -> Reading:
    return Reading(None, problem=f"{reason}; write it by hand")


def schedule_package_reading(time_unit: str, period: Any, at: str | None) -> Reading:
    """What ``getattr(schedule.every(period), time_unit).at(at)`` scheduled (orchestrator-core ≤ 4.3)."""
    if not isinstance(period, int) or isinstance(period, bool) or period < 1:
        return _by_hand(f"period={period!r} is not a whole number ≥ 1")
    weekday = _WEEKDAYS.get(time_unit)
    if time_unit in _SINGULAR:
        if period != 1:
            return _never(f'`every({period}).{time_unit}` raised IntervalError (use "{_SINGULAR[time_unit]}")')
        unit = _SINGULAR[time_unit]
    elif weekday is not None:
        if period != 1:
            return _never(f"`every({period}).{time_unit}` raised IntervalError (weekday jobs are weekly only)")
        unit = "weeks"
    elif time_unit in _PLURAL:
        unit = time_unit
    else:
        return _never(f"the `schedule` package has no unit {time_unit!r} (AttributeError)")
    if at is None:
        if weekday is not None:
            return _by_hand(f"it ran on {time_unit}s at the time of day its scheduler started")
        return Reading("interval", {unit: period}, notes=("counted from the scheduler's start, as before",))
    if not isinstance(at, str):
        return _never(f"at={at!r} raised TypeError")
    if unit in ("days", "weeks") and (unit == "days" or weekday is not None):
        match = _DAY_AT.match(at)
        if not match or int(match.group(1)) > 23:
            return _never(f'at="{at}" raised ScheduleValueError (HH:MM[:SS] expected)')
        hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
        time_of_day: dict[str, Any] = {"hour": hour, "minute": minute}
        if second:
            time_of_day["second"] = second
        if weekday is not None:
            return Reading("cron", {"day_of_week": weekday, **time_of_day})
        if period == 1:
            return Reading("cron", time_of_day)
        return Reading(
            "calendarinterval",
            {"days": period, **time_of_day},
            notes=(f"every {period} days counted from the first apply (before: from the scheduler's start)",),
        )
    if unit == "hours":
        match = _HOUR_AT.match(at)
        if not match:
            return _never(f'at="{at}" raised ScheduleValueError (MM:SS or :MM expected for hours)')
        minute, second = (int(match.group(1)), int(match.group(2))) if match.group(1) else (int(match.group(2)), 0)
        if period != 1:
            return _by_hand(f"every {period} hours at :{minute:02d} counted from the scheduler's start (phase unknown)")
        return Reading("cron", {"minute": minute, **({"second": second} if second else {})})
    if unit == "minutes":
        match = _MINUTE_AT.match(at)
        if not match:
            return _never(f'at="{at}" raised ScheduleValueError (:SS expected for minutes)')
        if period != 1:
            return _by_hand(f"every {period} minutes at :{match.group(1)} counted from the scheduler's start")
        return Reading("cron", {"second": int(match.group(1))})
    return _never(f'at="{at}" raised ScheduleValueError (at() is only for days, hours, minutes and weekdays)')


def shim_reading(time_unit: str, period: Any, at: str | None) -> Reading:
    """What orchestrator-core's APScheduler shim (4.4+) scheduled for the same arguments."""
    if time_unit == "day" and at:
        parts = at.split(":")
        try:
            if len(parts) != 2:
                raise ValueError(at)
            hour, minute = int(parts[0]), int(parts[1])
        except ValueError:
            return _never(f'at="{at}" is not HH:MM, so orchestrator-core raised ValueError')
        return Reading("cron", {"hour": hour, "minute": minute})
    notes = (f'at="{at}" was ignored: orchestrator-core only uses it with time_unit="day"',) if at else ()
    unit = SHIM_UNITS.get(time_unit.lower(), time_unit.lower())
    return Reading("interval", {unit: period}, notes=notes)
