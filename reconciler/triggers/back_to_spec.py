"""Back from a live trigger to a spec (trigger, trigger_kwargs, timezone) that builds the same schedule."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.crontab import format_weekdays
from reconciler.triggers.building import (
    _CALENDAR_TIME,
    _CALENDAR_UNITS,
    _INTERVAL_UNITS,
    TriggerError,
    _iana_name,
    _zone_label,
    build_trigger,
)
from reconciler.triggers.canonical import canonical_form
from reconciler.triggers.cron_fields import _expand

# ------------------------------------------------------------------------------------------ back to a spec


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _yaml_scalar(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def _spec(trigger: Any) -> tuple[str, dict[str, Any], tzinfo | None]:
    if isinstance(trigger, CronTrigger):
        return "cron", _cron_kwargs(trigger, only_given=True), trigger.timezone
    if isinstance(trigger, IntervalTrigger):
        seconds = trigger.interval.total_seconds()
        kwargs: dict[str, Any] = {}
        for unit, size in _INTERVAL_UNITS:
            if seconds >= size and (seconds / size).is_integer():
                kwargs[unit] = int(seconds / size)
                break
        else:
            kwargs["seconds"] = seconds
        kwargs["start_date"] = _iso(trigger.start_date)
        if trigger.end_date is not None:
            kwargs["end_date"] = _iso(trigger.end_date)
        if trigger.jitter:
            kwargs["jitter"] = trigger.jitter
        return "interval", kwargs, trigger.timezone
    if isinstance(trigger, DateTrigger):
        run_date: datetime = trigger.run_date
        return "date", {"run_date": run_date.isoformat()}, run_date.tzinfo
    if isinstance(trigger, CalendarIntervalTrigger):
        kwargs = {unit: getattr(trigger, unit) for unit in _CALENDAR_UNITS if getattr(trigger, unit)}
        for unit, _ in _CALENDAR_TIME:
            if getattr(trigger._time, unit):
                kwargs[unit] = getattr(trigger._time, unit)
        kwargs["start_date"] = trigger.start_date.isoformat()
        if trigger.end_date is not None:
            kwargs["end_date"] = trigger.end_date.isoformat()
        if trigger.jitter:
            kwargs["jitter"] = trigger.jitter
        return "calendarinterval", kwargs, trigger.timezone
    if isinstance(trigger, AndTrigger | OrTrigger):
        subs = [_spec(sub) for sub in trigger.triggers]
        zoned = [zone for sub, (name, _, zone) in zip(trigger.triggers, subs, strict=True)
                 if name in ("cron", "calendarinterval") or isinstance(sub, AndTrigger | OrTrigger)]  # fmt: skip
        labels = {_zone_label(zone) for zone in zoned}
        if len(labels) > 1:
            raise TriggerError(f"sub-triggers use different time zones ({', '.join(sorted(labels))})")
        zone = zoned[0] if zoned else subs[0][2]
        kwargs = {"triggers": [{"trigger": name, "trigger_kwargs": kw} for name, kw, _ in subs]}
        if trigger.jitter:
            kwargs["jitter"] = trigger.jitter
        return ("and" if isinstance(trigger, AndTrigger) else "or"), kwargs, zone
    raise TriggerError(f"cannot write a {type(trigger).__name__} as a schedule spec")


def _cron_kwargs(trigger: Any, *, only_given: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for f in trigger.fields:
        if only_given and f.is_default:
            continue
        if f.name == "day_of_week":
            values, _ = _expand(f)
            kwargs[f.name] = "*" if values is None else format_weekdays(values)  # names, never APS numbers
        else:
            kwargs[f.name] = _yaml_scalar(str(f))
    for key in ("start_date", "end_date"):
        if getattr(trigger, key) is not None:
            kwargs[key] = _iso(getattr(trigger, key))
    if trigger.jitter:
        kwargs["jitter"] = trigger.jitter
    return kwargs


def spec_from_trigger(trigger: BaseTrigger) -> tuple[str, dict[str, Any], str]:
    """``(trigger, trigger_kwargs, timezone)`` for a live trigger, as plain YAML-friendly values, such that
    :func:`build_trigger` of it has the same :func:`canonical_form` (interval keeps its ``start_date``)."""
    name, kwargs, zone = _spec(trigger)
    timezone = _iana_name(zone)
    expected = canonical_form(trigger)
    if canonical_form(build_trigger(name, kwargs, timezone)) != expected:
        kwargs = _spelled_out(trigger)
        if canonical_form(build_trigger(name, kwargs, timezone)) != expected:
            raise TriggerError(f"cannot write {trigger!r} as an equivalent schedule spec")
    return name, kwargs, timezone


def _spelled_out(trigger: Any) -> dict[str, Any]:
    """Like ``_spec`` but every cron field written, for triggers whose default fields were tampered with."""
    if isinstance(trigger, CronTrigger):
        return _cron_kwargs(trigger, only_given=False)
    if isinstance(trigger, AndTrigger | OrTrigger):
        kwargs: dict[str, Any] = {
            "triggers": [{"trigger": _spec(sub)[0], "trigger_kwargs": _spelled_out(sub)} for sub in trigger.triggers]
        }
        if trigger.jitter:
            kwargs["jitter"] = trigger.jitter
        return kwargs
    return _spec(trigger)[1]
