"""The canonical form of a trigger: equal for equivalent triggers, different otherwise."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.cron.fields import MAX_VALUES, MIN_VALUES
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.crontab import format_values, format_weekdays
from reconciler.triggers.building import _zone_label
from reconciler.triggers.cron_fields import _expand
from reconciler.triggers.moments import _utc

# ------------------------------------------------------------------------------------------- canonical form


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else _utc(moment).isoformat()


def _plain_number(value: float | int | None) -> float | int | None:
    if value is None or value == 0:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number


def _field_text(cron_field: Any) -> str:
    """A cron field as canonical text: its value set compressed again; specials (``last``) kept as text."""
    values, specials = _expand(cron_field)
    if values is None:
        return "*"
    name = cron_field.name
    if name == "day_of_week":
        text = format_weekdays(values) if values else ""
    else:
        text = format_values(values, MIN_VALUES[name], MAX_VALUES[name]) if values else ""
    return ",".join(part for part in [text, *specials] if part)


def canonical_form(trigger: BaseTrigger, *, phase: bool = True) -> dict[str, Any]:
    """A JSON-able dict that is equal for equivalent triggers and different otherwise.

    Cron fields are expanded to value sets and written again (``*/1``, ``0-59`` and ``*`` agree; ``mon`` and
    ``0`` agree; ``hour: 3`` equals ``hour: 3, minute: 0``); zones are labelled (every UTC spelling is
    ``UTC``); intervals are seconds; instants are UTC ISO strings; ``jitter`` 0 is ``None``; combining
    sub-triggers are sorted. The zone of ``interval`` and ``date`` triggers is left out (it does not change
    when they run). ``phase=False`` leaves out ``start_date`` of interval and calendarinterval triggers.
    """
    t: Any = trigger
    if isinstance(t, AndTrigger | OrTrigger):
        subs = [canonical_form(sub, phase=phase) for sub in t.triggers]
        subs.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return {"trigger": "and" if isinstance(t, AndTrigger) else "or", "triggers": subs,
                "jitter": _plain_number(t.jitter)}  # fmt: skip
    if isinstance(t, CronTrigger):
        form: dict[str, Any] = {"trigger": "cron"}
        form.update({f.name: _field_text(f) for f in t.fields})
        form.update(
            start_date=_instant(t.start_date),
            end_date=_instant(t.end_date),
            timezone=_zone_label(t.timezone),
            jitter=_plain_number(t.jitter),
        )
        return form
    if isinstance(t, IntervalTrigger):
        form = {"trigger": "interval", "seconds": _plain_number(t.interval.total_seconds())}
        if phase:
            form["start_date"] = _instant(t.start_date)
        form.update(end_date=_instant(t.end_date), jitter=_plain_number(t.jitter))
        return form
    if isinstance(t, DateTrigger):
        return {"trigger": "date", "run_date": _instant(t.run_date)}
    if isinstance(t, CalendarIntervalTrigger):
        form = {
            "trigger": "calendarinterval",
            "months": 12 * t.years + t.months,
            "days": 7 * t.weeks + t.days,
            "time": t._time.replace(tzinfo=None).isoformat(),
        }
        if phase:
            form["start_date"] = t.start_date.isoformat()
        form.update(
            end_date=t.end_date.isoformat() if t.end_date else None,
            timezone=_zone_label(t.timezone),
            jitter=_plain_number(t.jitter),
        )
        return form
    return {"trigger": type(t).__name__, "repr": repr(t)}
