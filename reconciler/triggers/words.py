"""Short human words for a trigger."""

from __future__ import annotations

import re
from datetime import time
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.crontab import WEEKDAY_NAMES, weekday_phrase
from reconciler.triggers.building import _CACHE_LIMIT, _CALENDAR_UNITS, _INTERVAL_UNITS, _zone_label
from reconciler.triggers.canonical import _field_text
from reconciler.triggers.moments import _hm, _when

# --------------------------------------------------------------------------------------------------- words


def _plural(number: float | int, unit: str) -> str:
    shown = int(number) if float(number).is_integer() else number
    return f"{shown} {unit}" + ("" if shown == 1 else "s")


def _interval_words(seconds: float) -> str:
    for unit, size in _INTERVAL_UNITS:
        if seconds >= size and (seconds / size).is_integer():
            return _plural(seconds / size, unit[:-1])
    return _plural(seconds, "second")


def describe(trigger: BaseTrigger) -> str:
    """Short human words for a trigger: "every 1 hour", "at 09:00 Monday–Friday (UTC)", "once at ..."."""
    # Built triggers are shared per distinct spec, so a plan of 10,000 schedules describes each once.
    hit = _DESCRIBED.get(id(trigger))
    if hit is not None and hit[0] is trigger:
        return hit[1]
    words = _describe(trigger)
    if len(_DESCRIBED) >= _CACHE_LIMIT:
        _DESCRIBED.clear()
    _DESCRIBED[id(trigger)] = (trigger, words)  # holding the trigger keeps its id from being reused
    return words


_DESCRIBED: dict[int, tuple[BaseTrigger, str]] = {}


def _describe(trigger: BaseTrigger) -> str:
    t: Any = trigger
    if isinstance(t, IntervalTrigger):
        return "every " + _interval_words(t.interval.total_seconds())
    if isinstance(t, DateTrigger):
        return f"once at {_when(t.run_date)}"
    if isinstance(t, CalendarIntervalTrigger):
        parts = [_plural(getattr(t, unit), unit[:-1]) for unit in _CALENDAR_UNITS if getattr(t, unit)]
        return f"every {' and '.join(parts)} at {_hm(t._time)} ({_zone_label(t.timezone)})"
    if isinstance(t, CronTrigger):
        words = _cron_words(t)
        return f"{words or str(t)} ({_zone_label(t.timezone)})"
    if isinstance(t, OrTrigger):
        return " or ".join(describe(sub) for sub in t.triggers)
    return str(t)


def _cron_words(t: Any) -> str | None:
    text = {f.name: _field_text(f) for f in t.fields}
    if any(text[name] != "*" for name in ("year", "week")):
        return None
    single = re.compile(r"^\d+$")
    days = _day_words(text)
    if days is None:
        return None
    if all(single.match(text[name]) for name in ("hour", "minute", "second")):
        clock = time(int(text["hour"]), int(text["minute"]), int(text["second"]))
        return f"at {_hm(clock)} {days}"
    if days != "every day" or text["second"] != "0":
        return None
    if text["hour"] == "*" and text["minute"] == "*":
        return "every minute"
    if text["hour"] == "*" and text["minute"].startswith("*/"):
        return "every " + _plural(int(text["minute"][2:]), "minute")
    if text["hour"] == "*" and single.match(text["minute"]):
        return f"every hour at :{int(text['minute']):02d}"
    if text["hour"].startswith("*/") and single.match(text["minute"]):
        return f"every {_plural(int(text['hour'][2:]), 'hour')} at :{int(text['minute']):02d}"
    return None


def _day_words(text: dict[str, str]) -> str | None:
    day, month, dow = text["day"], text["month"], text["day_of_week"]
    if month != "*":
        return None
    if day == "*" and dow == "*":
        return "every day"
    if day == "*":
        values = {WEEKDAY_NAMES.index(name) for name in _weekday_names(dow)}
        return weekday_phrase(values)
    if dow == "*" and re.fullmatch(r"\d+", day):
        return f"on day {day} of every month"
    if dow == "*" and day == "last":
        return "on the last day of every month"
    return None


def _weekday_names(text: str) -> list[str]:
    names: list[str] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        a = WEEKDAY_NAMES.index(first)
        b = WEEKDAY_NAMES.index(last) if last else a
        names.extend(WEEKDAY_NAMES[a : b + 1])
    return names
