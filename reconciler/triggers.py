"""Schedule triggers: spec ↔ APScheduler 3.11 trigger, semantic checks, next fire times, canonical form.

A schedule's ``trigger`` / ``trigger_kwargs`` / ``timezone`` become a real APScheduler 3.11 trigger object
(the object that is pickled into ``apscheduler_jobs``), always with an explicit ``ZoneInfo`` so nothing
depends on the host's zone. Around that:

* :func:`trigger_problems` finds what builds but does not do what the author thinks: ``and`` triggers that
  hang APScheduler 3.11, ``or`` triggers that silently drop runs, dates in the past, APScheduler's
  Monday-is-0 weekday numbers, and cron times that a DST change skips, shifts or repeats;
* :func:`next_fire_times` predicts runs without ever hanging;
* :func:`canonical_form` says whether two triggers are the same schedule (pickles and ``str()`` do not);
* :func:`describe` and :func:`spec_from_trigger` go back from a trigger to words and to a spec.

Facts about APScheduler used here are in ``reference/apscheduler.md`` (§2 triggers, §2.6 combining-trigger
defects, §2.7 canonicalisation, §3.3 DST) and were checked against the installed 3.11.3.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.cron.expressions import (
    AllExpression,
    LastDayOfMonthExpression,
    RangeExpression,
    WeekdayPositionExpression,
)
from apscheduler.triggers.cron.fields import MAX_VALUES, MIN_VALUES
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.crontab import (
    MONTH_NAMES,
    WEEKDAY_NAMES,
    CrontabError,
    crontab_to_cron_fields,
    crontab_weekdays,
    format_values,
    format_weekdays,
    weekday_phrase,
)
from reconciler.problems import Severity
from reconciler.spec import TRIGGER_NAMES

__all__ = [
    "TriggerError",
    "build_trigger",
    "canonical_form",
    "describe",
    "next_fire_times",
    "spec_from_trigger",
    "trigger_problems",
    "zone_from_name",
]

Where = tuple[str | int, ...]
TriggerProblem = tuple[Severity, Where, str]

AND_MAX_ITERATIONS = 1000  # AndTrigger rounds before we call it "never converges"
MISSED_RUNS_MAX = 10_000  # runs before `now` that next_fire_times walks past before giving up
MISSED_RESTART = 100  # after this many missed runs, ask the trigger afresh from `now` (previous=None)
CALENDAR_CHAIN_MAX = 100_000  # calendarinterval steps walked to skip a past start_date
DST_HORIZON = timedelta(days=366)

CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
_DATE_FIELDS = ("year", "month", "day", "week", "day_of_week")
_INTERVAL_UNITS = (("weeks", 604800), ("days", 86400), ("hours", 3600), ("minutes", 60), ("seconds", 1))
_CALENDAR_UNITS = ("years", "months", "weeks", "days")
_CALENDAR_TIME = (("hour", 23), ("minute", 59), ("second", 59))

_ALLOWED: dict[str, tuple[str, ...]] = {
    "interval": ("weeks", "days", "hours", "minutes", "seconds", "start_date", "end_date", "jitter"),
    "cron": (*CRON_FIELDS, "start_date", "end_date", "jitter", "crontab"),
    "date": ("run_date",),
    "calendarinterval": (*_CALENDAR_UNITS, "hour", "minute", "second", "start_date", "end_date", "jitter"),
    "and": ("triggers", "jitter"),
    "or": ("triggers", "jitter"),
}
# Zone names that are not a place: the host's own zone, and tzdata's "unknown" placeholder.
_REFUSED_ZONES = frozenset({"localtime", "Factory", "posixrules"})
_UTC_NAMES = frozenset(
    {"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu", "GMT", "Etc/GMT",
     "GMT0", "GMT+0", "GMT-0", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "Greenwich", "Etc/Greenwich"}
)  # fmt: skip
_ETC_GMT = re.compile(r"^Etc/GMT([+-])(\d{1,2})$")
_NAME_COMPILERS_FIELDS = ("month", "day", "day_of_week")


class TriggerError(ValueError):
    """Invalid trigger spec. `.where` is the path inside trigger_kwargs of the offending argument, e.g.
    ("hour",) or ("triggers", 1, "trigger_kwargs", "minute"); () means the trigger as a whole."""

    def __init__(self, message: str, where: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.where = where


# --------------------------------------------------------------------------------------------- time zones


def zone_from_name(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA zone name; :class:`TriggerError` (``where=()``) for anything else.

    ``localtime`` (the host's zone), ``Factory`` and the leap-second ``right/`` zones are refused: a schedule
    never depends on the host.
    """
    if not isinstance(name, str) or not name or name in _REFUSED_ZONES or name.startswith("right/"):
        raise TriggerError(f"unknown time zone {name!r}" + _zone_hint(name))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise TriggerError(f"unknown time zone {name!r}" + _zone_hint(name)) from None


def _zone_hint(name: object) -> str:
    if not isinstance(name, str) or not name:
        return "; use an IANA name such as Europe/Amsterdam or UTC"
    close = difflib.get_close_matches(name, sorted(_known_zones()), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else "; use an IANA name such as Europe/Amsterdam or UTC"


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones() - _REFUSED_ZONES)


def _zone_label(zone: tzinfo | None) -> str:
    """Canonical text of a zone: every UTC spelling is ``UTC``, fixed offsets are ``+HH:MM``."""
    if zone is None:
        return "UTC"
    key = getattr(zone, "key", None) or getattr(zone, "zone", None)  # ZoneInfo / pytz
    if isinstance(key, str):
        if key in _UTC_NAMES:
            return "UTC"
        match = _ETC_GMT.match(key)
        if match:  # POSIX sign: Etc/GMT-2 is UTC+2
            hours = int(match[2]) * (-1 if match[1] == "+" else 1)
            return _offset_text(timedelta(hours=hours))
        return key
    offset = zone.utcoffset(None)
    if offset is None:
        return str(zone)
    return _offset_text(offset)


def _offset_text(offset: timedelta) -> str:
    if offset == timedelta(0):
        return "UTC"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _iana_name(zone: tzinfo | None) -> str:
    """An IANA name that ``zone_from_name`` accepts and that has the same canonical label as ``zone``."""
    label = _zone_label(zone)
    if label == "UTC" or "/" in label or label in _known_zones():
        return label
    match = re.fullmatch(r"([+-])(\d\d):00", label)
    if match and int(match[2]) <= (14 if match[1] == "+" else 12):
        hours = int(match[2])
        return f"Etc/GMT{'-' if match[1] == '+' else '+'}{hours}"  # POSIX sign is inverted
    raise TriggerError(f"time zone {label} has no IANA name")


def _is_fixed_zone(zone: tzinfo) -> bool:
    label = _zone_label(zone)
    return label == "UTC" or label[0] in "+-"


# ------------------------------------------------------------------------------------------ argument values


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: object, where: Where, what: str) -> float:
    if not _is_number(value):
        kind = "a boolean" if isinstance(value, bool) else type(value).__name__
        raise TriggerError(f"{what} must be a number, got {kind} {value!r}", where)
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number) or math.isinf(number):
        raise TriggerError(f"{what} must be a finite number, got {value!r}", where)
    if number < 0:
        raise TriggerError(f"{what} must not be negative, got {value!r}", where)
    return number


def _whole(value: object, where: Where, what: str, maximum: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        kind = "a boolean" if isinstance(value, bool) else type(value).__name__
        raise TriggerError(f"{what} must be a whole number, got {kind} {value!r}", where)
    if value < 0 or (maximum is not None and value > maximum):
        limit = f"0-{maximum}" if maximum is not None else "0 or more"
        raise TriggerError(f"{what} must be {limit}, got {value}", where)
    return value


def _jitter(kwargs: Mapping[str, Any], where: Where) -> int | float | None:
    if kwargs.get("jitter") is None:
        return None
    _number(kwargs["jitter"], (*where, "jitter"), "jitter")
    value: int | float = kwargs["jitter"]
    return value


def _datetime_arg(value: object, where: Where, what: str) -> datetime | date:
    """A date-like argument: ISO string, datetime or date. Naive values stay naive (wall time, localised
    by APScheduler in the trigger's zone); aware ones are kept as the same instant."""
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            return datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            pass
        raise TriggerError(
            f"{what} {value!r} is not an ISO date or date-time (e.g. 2031-01-15T03:00:00 or 2031-01-15)", where
        )
    raise TriggerError(f"{what} must be an ISO date-time string, got {type(value).__name__} {value!r}", where)


def _in_zone(value: datetime | date, zone: ZoneInfo) -> datetime | date:
    """Aware datetimes are moved into the trigger's zone (same instant), so pickles hold only ``ZoneInfo``."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(zone)
    return value


def _date_only(value: object, where: Where, what: str) -> date:
    parsed = _datetime_arg(value, where, what)
    if isinstance(parsed, datetime):
        if parsed.tzinfo is not None or parsed.time() != time(0):
            raise TriggerError(
                f"{what} of a calendarinterval trigger is a date (the time of day comes from "
                f"hour/minute/second), got {value!r}",
                where,
            )
        return parsed.date()
    return parsed


def _aware_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


# -------------------------------------------------------------------------------------------------- building


@dataclass
class _Node:
    """A built trigger together with the spec it came from and where that spec sits in trigger_kwargs."""

    name: str
    kwargs: Mapping[str, Any]
    at: Where  # path of this trigger itself ("triggers", 1) — () for the top
    kw: Where  # path prefix of its arguments ("triggers", 1, "trigger_kwargs") — () for the top
    trigger: Any
    children: list[_Node] = field(default_factory=list)


def build_trigger(
    trigger: str, trigger_kwargs: Mapping[str, Any], timezone: str, *, now: datetime | None = None
) -> BaseTrigger:
    """Build the real APScheduler 3.11 trigger for a spec, in the schedule's zone.

    ``now`` fixes the defaults APScheduler would take from the clock: an ``interval`` without ``start_date``
    starts at ``now + interval``, a ``calendarinterval`` without ``start_date`` starts on ``now``'s date in
    ``timezone``. A ``date`` trigger needs ``run_date``. Raises :class:`TriggerError` (a ``ValueError``) with
    ``.where`` pointing at the offending argument.
    """
    built: BaseTrigger = _build(trigger, trigger_kwargs, timezone, now).trigger
    return built


# Each distinct spec is built once: 10,000 schedules typically hold a few hundred distinct triggers, and
# building a CronTrigger (8 compiled fields) is most of the cost of validating or planning them. The built
# objects are shared, so nothing may mutate them (nothing does: APScheduler never mutates a trigger).
_BUILT: dict[tuple[Any, ...], _Node] = {}
_PROBLEMS: dict[tuple[Any, ...], tuple[TriggerProblem, ...]] = {}
_CACHE_LIMIT = 200_000
_CLOCK_FREE = frozenset({"cron", "date"})  # built without reading the clock when fully specified


def _cache_key(trigger: str, trigger_kwargs: Mapping[str, Any], timezone: str, now: datetime | None) -> tuple[Any, ...]:
    # repr() is stable for plain YAML values and far cheaper than JSON; equal specs written in another
    # key order just get a cache entry of their own.
    frozen = repr(trigger_kwargs)
    return (trigger, frozen, timezone, None if trigger in _CLOCK_FREE else now)


def _build(trigger: str, trigger_kwargs: Mapping[str, Any], timezone: str, now: datetime | None) -> _Node:
    key = _cache_key(trigger, trigger_kwargs, timezone, now)
    node = _BUILT.get(key)
    if node is None:
        zone = zone_from_name(timezone)
        node = _build_node(trigger, trigger_kwargs, zone, _aware_now(now), (), ())
        if len(_BUILT) >= _CACHE_LIMIT:
            _BUILT.clear()
        _BUILT[key] = node
    return node


def _build_node(name: object, kwargs: object, zone: ZoneInfo, now: datetime, at: Where, kw: Where) -> _Node:
    if not isinstance(name, str) or name not in TRIGGER_NAMES:
        raise TriggerError(
            f"unknown trigger {name!r} (use one of {', '.join(TRIGGER_NAMES)})", (*at, "trigger") if at else ()
        )
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, Mapping):
        raise TriggerError(f"trigger_kwargs must be a mapping, got {type(kwargs).__name__}", at)
    for key in kwargs:
        if key == "timezone":
            raise TriggerError("use the schedule's `timezone` field, not trigger_kwargs.timezone", (*kw, "timezone"))
        if key not in _ALLOWED[name]:
            close = difflib.get_close_matches(str(key), _ALLOWED[name], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise TriggerError(
                f"unknown argument {key!r} for a {name} trigger ({hint}allowed: {', '.join(_ALLOWED[name])})",
                (*kw, key),
            )
    node: _Node = _BUILDERS[name](kwargs, zone, now, at, kw)
    return node


def _build_interval(kwargs: Mapping[str, Any], zone: ZoneInfo, now: datetime, at: Where, kw: Where) -> _Node:
    units = {unit: _number(kwargs[unit], (*kw, unit), unit) for unit, _ in _INTERVAL_UNITS if unit in kwargs}
    try:
        length = timedelta(**units)
    except OverflowError:
        raise TriggerError("the interval is too long", kw) from None
    if length <= timedelta(0):
        raise TriggerError(
            "an interval needs a length above zero (weeks/days/hours/minutes/seconds); "
            "APScheduler would silently use 1 second",
            kw,
        )
    jitter = _jitter(kwargs, kw)
    start = kwargs.get("start_date")
    end = kwargs.get("end_date")
    start_value = (
        _in_zone(_datetime_arg(start, (*kw, "start_date"), "start_date"), zone)
        if start is not None
        else (now + length).astimezone(zone)
    )
    end_value = _in_zone(_datetime_arg(end, (*kw, "end_date"), "end_date"), zone) if end is not None else None
    try:
        built = IntervalTrigger(
            **{k: v for k, v in kwargs.items() if k in units},
            start_date=start_value,
            end_date=end_value,
            timezone=zone,
            jitter=jitter,
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise TriggerError(f"interval: {exc}", kw) from None
    return _Node("interval", kwargs, at, kw, built)


def _cron_field_text(value: object, where: Where, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TriggerError(
            f"{name} must be a cron expression (string or whole number), got {type(value).__name__} {value!r}",
            where,
        )
    return str(value).strip()


def _cron_field_error(name: str, text: str, where: Where) -> TriggerError | None:
    """Build one field the way CronTrigger does; the error APScheduler raises for it, as a TriggerError."""
    try:
        CronTrigger.FIELDS_MAP[name](name, text)
    except (TypeError, ValueError) as exc:
        message = f"{name} {text!r}: {exc}"
        if name == "day_of_week" and "maximum value (6)" in str(exc):
            message += " (APScheduler numbers days 0 = Monday ... 6 = Sunday; write names such as sun)"
        return TriggerError(message, where)
    return None


def _check_cron_names(name: str, text: str, where: Where) -> None:
    """Refuse text that APScheduler would silently truncate.

    Name and position expressions (``jan-mar``, ``mon-fri``, ``last``, ``1st mon``) are matched without an end
    anchor in 3.11, so ``jan-mar/2`` silently means ``jan-mar`` and ``mon-fri/2`` means ``mon-fri``.
    """
    if name not in _NAME_COMPILERS_FIELDS or not re.search(r"[a-zA-Z]", text):
        return
    for token in re.split(r" *, *", text):
        for compiler in CronTrigger.FIELDS_MAP[name].COMPILERS:
            found = compiler.value_re.match(token)
            if found:
                if found.end() != len(token):
                    raise TriggerError(
                        f"{name} {text!r}: APScheduler 3.11 would silently ignore {token[found.end() :]!r} "
                        f"in {token!r}" + ("; use numbers for a step (e.g. 1-3/2)" if "/" in token else ""),
                        where,
                    )
                break


def _build_cron(kwargs: Mapping[str, Any], zone: ZoneInfo, now: datetime, at: Where, kw: Where) -> _Node:
    jitter = _jitter(kwargs, kw)
    dates: dict[str, Any] = {}
    for key in ("start_date", "end_date"):
        if kwargs.get(key) is not None:
            dates[key] = _in_zone(_datetime_arg(kwargs[key], (*kw, key), key), zone)
    if "crontab" in kwargs:
        mixed = [k for k in kwargs if k in CRON_FIELDS]
        if mixed:
            raise TriggerError(
                f"`crontab` cannot be combined with cron fields ({', '.join(mixed)}); write them into the "
                "crontab line or drop `crontab`",
                (*kw, "crontab"),
            )
        line = kwargs["crontab"]
        if not isinstance(line, str):
            raise TriggerError(f"crontab must be a string such as '30 2 * * 1-5', got {line!r}", (*kw, "crontab"))
        try:
            field_sets = crontab_to_cron_fields(line)
        except CrontabError as exc:
            raise TriggerError(f"crontab {line!r}: {exc}", (*kw, "crontab")) from None
        try:
            crons = [CronTrigger(**fields, **dates, timezone=zone) for fields in field_sets]
        except (TypeError, ValueError) as exc:  # pragma: no cover - the translation only emits valid fields
            raise TriggerError(f"crontab {line!r}: {exc}", (*kw, "crontab")) from None
        if len(crons) == 1:
            crons[0].jitter = jitter
            return _Node("cron", kwargs, at, kw, crons[0])
        # crontab fires when day of month OR day of week matches: one CronTrigger for each, OR-ed.
        return _Node("cron", kwargs, at, kw, OrTrigger(crons, jitter=jitter))
    fields: dict[str, str] = {}
    for name in CRON_FIELDS:
        if name in kwargs and kwargs[name] is not None:
            text = _cron_field_text(kwargs[name], (*kw, name), name)
            _check_cron_names(name, text, (*kw, name))
            fields[name] = text
    try:
        built = CronTrigger(**fields, **dates, timezone=zone, jitter=jitter)
    except (TypeError, ValueError, OverflowError) as exc:
        for name, text in fields.items():  # say which field it was
            error = _cron_field_error(name, text, (*kw, name))
            if error is not None:
                raise error from None
        raise TriggerError(f"cron: {exc}", kw) from None
    return _Node("cron", kwargs, at, kw, built)


def _build_date(kwargs: Mapping[str, Any], zone: ZoneInfo, now: datetime, at: Where, kw: Where) -> _Node:
    if kwargs.get("run_date") is None:
        raise TriggerError("a date trigger needs `run_date` (e.g. 2031-01-15T03:00:00)", (*kw, "run_date"))
    run_date = _in_zone(_datetime_arg(kwargs["run_date"], (*kw, "run_date"), "run_date"), zone)
    try:
        built = DateTrigger(run_date=run_date, timezone=zone)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TriggerError(f"run_date: {exc}", (*kw, "run_date")) from None
    return _Node("date", kwargs, at, kw, built)


def _build_calendar(kwargs: Mapping[str, Any], zone: ZoneInfo, now: datetime, at: Where, kw: Where) -> _Node:
    values: dict[str, Any] = {}
    for unit in _CALENDAR_UNITS:
        if unit in kwargs:
            values[unit] = _whole(kwargs[unit], (*kw, unit), unit)
    if not any(values.values()):
        raise TriggerError("a calendarinterval needs years, months, weeks or days above zero", kw)
    for unit, maximum in _CALENDAR_TIME:
        if unit in kwargs:
            values[unit] = _whole(kwargs[unit], (*kw, unit), unit, maximum)
    start = kwargs.get("start_date")
    values["start_date"] = (
        _date_only(start, (*kw, "start_date"), "start_date") if start is not None else now.astimezone(zone).date()
    )
    if kwargs.get("end_date") is not None:
        values["end_date"] = _date_only(kwargs["end_date"], (*kw, "end_date"), "end_date")
    try:
        built = CalendarIntervalTrigger(**values, timezone=zone, jitter=_jitter(kwargs, kw))
    except (TypeError, ValueError, OverflowError) as exc:
        where = (*kw, "end_date") if "end_date" in str(exc) else kw
        raise TriggerError(f"calendarinterval: {exc}", where) from None
    return _Node("calendarinterval", kwargs, at, kw, built)


def _combining_builder(name: str) -> Any:
    def build(kwargs: Mapping[str, Any], zone: ZoneInfo, now: datetime, at: Where, kw: Where) -> _Node:
        subs = kwargs.get("triggers")
        where = (*kw, "triggers")
        if not isinstance(subs, list) or len(subs) < 2:
            raise TriggerError(
                f"an {name} trigger needs `triggers`: a list of at least 2 {{trigger, trigger_kwargs}} entries",
                where,
            )
        children: list[_Node] = []
        for index, sub in enumerate(subs):
            sub_at = (*where, index)
            if not isinstance(sub, Mapping):
                raise TriggerError(
                    f"each entry of `triggers` is a mapping {{trigger, trigger_kwargs}}, got {sub!r}", sub_at
                )
            for key in sub:
                if key == "timezone":
                    raise TriggerError(
                        "sub-triggers use the schedule's `timezone` field; remove this one", (*sub_at, key)
                    )
                if key not in ("trigger", "trigger_kwargs"):
                    raise TriggerError(
                        f"unknown key {key!r} in a sub-trigger (allowed: trigger, trigger_kwargs)", (*sub_at, key)
                    )
            if "trigger" not in sub:
                raise TriggerError("a sub-trigger needs `trigger`", sub_at)
            children.append(
                _build_node(sub["trigger"], sub.get("trigger_kwargs"), zone, now, sub_at, (*sub_at, "trigger_kwargs"))
            )
        cls = AndTrigger if name == "and" else OrTrigger
        built = cls([child.trigger for child in children], jitter=_jitter(kwargs, kw))
        return _Node(name, kwargs, at, kw, built, children)

    return build


_BUILDERS: dict[str, Any] = {
    "interval": _build_interval,
    "cron": _build_cron,
    "date": _build_date,
    "calendarinterval": _build_calendar,
    "and": _combining_builder("and"),
    "or": _combining_builder("or"),
}


# --------------------------------------------------------------------------------------------- fire times


def next_fire_times(
    trigger: BaseTrigger, count: int, now: datetime, *, previous: datetime | None = None
) -> list[datetime]:
    """The next ``count`` fire times at or after ``now``, chained previous → next as the scheduler does.

    With ``previous`` (the last run, or a job's stored next_run_time), the times are the runs after it.

    Never hangs: ``AndTrigger`` is evaluated with a bounded copy of its loop (raises :class:`TriggerError`
    "never converges" after ``AND_MAX_ITERATIONS`` rounds or as soon as it repeats itself); a
    ``calendarinterval`` whose ``start_date`` is past is stepped forward to ``now``; runs before ``now``
    (a past ``date``, a ``previous`` long ago) are skipped. Stops early when the trigger is exhausted.
    Jitter is left out: these are the earliest times, APScheduler adds up to ``jitter`` seconds.
    Values are what the trigger returns (in its zone); compare them as instants.
    """
    now = _aware_now(now)
    plain = _without_jitter(trigger)
    result: list[datetime] = []
    prev = previous
    # The scheduler asks for the run after `previous` when it processes it, i.e. at `previous` at the earliest
    # (a cron asked with now < previous would answer `previous` itself).
    current = previous if previous is not None and _utc(previous) > _utc(now) else now
    missed = 0
    while len(result) < count:
        upcoming = _next(plain, prev, current, top=True)
        if upcoming is None:
            break
        if _utc(upcoming) < _utc(now):  # a missed run: the scheduler would coalesce it into one run now
            missed += 1
            if isinstance(plain, IntervalTrigger):  # step the chain straight to the last run before now
                steps = math.ceil((_utc(now) - _utc(upcoming)) / plain.interval)
                upcoming = datetime.fromtimestamp(
                    upcoming.timestamp() + (steps - 1) * plain.interval_length, upcoming.tzinfo
                )
            elif missed == MISSED_RESTART and prev is not None:
                prev, current = None, now  # far behind: ask afresh from now, as a resumed job does
                continue
            if missed > 2 * MISSED_RUNS_MAX:
                raise TriggerError(f"more than {MISSED_RUNS_MAX} runs before now; cannot reach the next one")
            prev, current = upcoming, now
            continue
        result.append(upcoming)
        prev = current = upcoming
    return result


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _without_jitter(trigger: Any) -> Any:
    if isinstance(trigger, AndTrigger | OrTrigger):
        copied = copy.copy(trigger)
        copied.triggers = [_without_jitter(sub) for sub in trigger.triggers]
        copied.jitter = None
        return copied
    if getattr(trigger, "jitter", None):
        copied = copy.copy(trigger)
        copied.jitter = None
        return copied
    return trigger


def _next(trigger: Any, prev: datetime | None, now: datetime, *, top: bool = False) -> datetime | None:
    if isinstance(trigger, AndTrigger):
        return _and_next(trigger, prev, now)
    if isinstance(trigger, OrTrigger):
        times = [_next(sub, prev, now, top=top) for sub in trigger.triggers]
        present = [moment for moment in times if moment is not None]
        return min(present) if present else None  # min() as OrTrigger does (wall time within one zone)
    if isinstance(trigger, CalendarIntervalTrigger) and prev is None and top:
        return _calendar_first(trigger, now)
    upcoming: datetime | None = trigger.get_next_fire_time(prev, now)
    return upcoming


def _and_next(trigger: Any, prev: datetime | None, now: datetime) -> datetime | None:
    """AndTrigger.get_next_fire_time with a bound: ask every sub-trigger, move `now` to the latest answer."""
    seen_now: datetime | None = None
    for _ in range(AND_MAX_ITERATIONS):
        times = [_next(sub, prev, now) for sub in trigger.triggers]
        if None in times:
            return None
        present: list[datetime] = [moment for moment in times if moment is not None]
        if min(present) == max(present):
            return present[0]
        latest = max(present)
        if seen_now is not None and _same_input(latest, seen_now):
            break  # the same `now` again: APScheduler would loop forever
        seen_now = now = latest
    raise TriggerError(
        "APScheduler 3.11's AndTrigger never converges for this trigger (its sub-triggers never agree on a "
        "time, so the scheduler thread would loop forever)"
    )


def _same_input(a: datetime, b: datetime) -> bool:
    return a.replace(tzinfo=None) == b.replace(tzinfo=None) and a.fold == b.fold and a.tzinfo is b.tzinfo


def _calendar_first(trigger: Any, now: datetime) -> datetime | None:
    """The first run at or after ``now`` (CalendarIntervalTrigger itself returns ``start_date`` even if past)."""
    first: datetime | None = trigger.get_next_fire_time(None, now)
    if first is None or _utc(first) >= _utc(now):
        return first
    target = now.astimezone(trigger.timezone).date() - timedelta(days=1)
    anchor = _calendar_chain_date_before(trigger, target)
    moment: datetime | None = datetime.combine(anchor, trigger._time) if anchor else first
    for _ in range(CALENDAR_CHAIN_MAX):
        if moment is None or _utc(moment) >= _utc(now):
            return moment
        moment = trigger.get_next_fire_time(moment, now)
    raise TriggerError("cannot step this calendarinterval forward to now")


def _calendar_step(trigger: Any, day: date) -> date | None:
    """The chain date after ``day`` (CalendarIntervalTrigger's date arithmetic, DST aside)."""
    year, month = day.year, day.month
    while True:
        month += trigger.months
        year += trigger.years + (month - 1) // 12
        month = (month - 1) % 12 + 1
        if year > 9999:
            return None
        try:
            following = date(year, month, day.day)
        except ValueError:
            continue  # that month has no such day: the trigger skips it
        try:
            return following + timedelta(days=trigger.days + 7 * trigger.weeks)
        except OverflowError:
            return None


def _calendar_chain_date_before(trigger: Any, target: date) -> date | None:
    """The last date of the trigger's chain (start_date, step, step, ...) on or before ``target``."""
    start: date = trigger.start_date
    if target < start:
        return None
    months = 12 * trigger.years + trigger.months
    days = trigger.days + 7 * trigger.weeks
    if months == 0:
        return start + timedelta(days=(target - start).days // days * days)
    if days == 0:
        steps = ((target.year - start.year) * 12 + target.month - start.month) // months
        for back in range(steps, -1, -1):
            total = start.month - 1 + back * months
            try:
                candidate = date(start.year + total // 12, total % 12 + 1, start.day)
            except ValueError:
                continue
            if candidate <= target:
                return candidate
        return start
    current = start
    for _ in range(CALENDAR_CHAIN_MAX):
        following = _calendar_step(trigger, current)
        if following is None or following > target:
            return current
        current = following
    raise TriggerError("calendarinterval start_date is too far in the past to step forward")


# ------------------------------------------------------------------------------------------------ problems


def trigger_problems(
    trigger: str, trigger_kwargs: Mapping[str, Any], timezone: str, *, now: datetime
) -> list[tuple[Severity, tuple[str | int, ...], str]]:
    """Semantic checks of a spec: ``(severity, where, message)`` for each finding, ``[]`` when fine.

    Errors: anything :func:`build_trigger` rejects; ``and`` triggers APScheduler 3.11 loops forever on;
    a ``date`` in the past; an ``end_date`` in the past or before ``start_date``; a cron day that never
    occurs. Warnings: APScheduler-numbered ``day_of_week``; ``or`` over date/interval/calendarinterval;
    a calendarinterval starting in the past; a cron without fields (every second); cron and
    calendarinterval times that a DST change in the next 366 days skips, shifts or repeats (only for crons
    that name particular hours: an every-hour cron simply has one run less or more that day).
    """
    now = _aware_now(now)
    key = (*_cache_key(trigger, trigger_kwargs, timezone, now)[:3], now)  # checks read the clock
    cached = _PROBLEMS.get(key)
    if cached is not None:
        return list(cached)
    try:
        root = _build(trigger, trigger_kwargs, timezone, now)
    except TriggerError as exc:
        return [(Severity.ERROR, exc.where, exc.message)]
    found: list[TriggerProblem] = []
    _check(root, now, found)
    if len(_PROBLEMS) >= _CACHE_LIMIT:
        _PROBLEMS.clear()
    _PROBLEMS[key] = tuple(found)
    return found


def _check(node: _Node, now: datetime, found: list[TriggerProblem]) -> None:
    checks = {
        "date": _check_date,
        "interval": _check_interval,
        "cron": _check_cron,
        "calendarinterval": _check_calendar,
        "and": _check_and,
        "or": _check_or,
    }
    checks[node.name](node, now, found)
    for child in node.children:
        _check(child, now, found)


def _when(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        text = moment.strftime("%Y-%m-%d %H:%M" + (":%S" if moment.second else ""))
        return f"{text} {_zone_label(moment.tzinfo)}"
    return moment.isoformat()


def _check_date(node: _Node, now: datetime, found: list[TriggerProblem]) -> None:
    run_date: datetime = node.trigger.run_date
    where = (*node.kw, "run_date")
    if _utc(run_date) < _utc(now):
        found.append((Severity.ERROR, where, f"run_date {_when(run_date)} is in the past: it would never run"))
        return
    written = _datetime_arg(node.kwargs["run_date"], where, "run_date")
    if isinstance(written, datetime) and written.tzinfo is None:
        zone = run_date.tzinfo
        shifted = run_date.replace(tzinfo=None) != written
        if shifted:
            found.append(
                (
                    Severity.WARNING,
                    where,
                    f"run_date {written:%H:%M} does not exist on {written:%Y-%m-%d} in {_zone_label(zone)} "
                    f"(a DST change skips it): APScheduler runs it at {run_date:%H:%M}",
                )
            )
        elif written.replace(fold=1).replace(tzinfo=zone).utcoffset() != run_date.utcoffset():
            found.append(
                (
                    Severity.WARNING,
                    where,
                    f"run_date {written:%H:%M} occurs twice on {written:%Y-%m-%d} in {_zone_label(zone)} "
                    "(clocks go back): APScheduler runs it at the first of the two; write an offset "
                    "(e.g. +02:00) to choose",
                )
            )


def _check_end(node: _Node, now: datetime, found: list[TriggerProblem], trig: Any = None) -> None:
    trig = node.trigger if trig is None else trig
    end = trig.end_date
    if end is None:
        return
    start = trig.start_date
    if isinstance(end, datetime):
        past = _utc(end) < _utc(now)
        before_start = start is not None and _utc(end) < _utc(start)
    else:
        past = end < now.astimezone(trig.timezone).date()
        before_start = False
    if past:
        found.append(
            (Severity.ERROR, (*node.kw, "end_date"), f"end_date {_when(end)} is in the past: it would never run")
        )
    elif before_start:
        found.append(
            (
                Severity.ERROR,
                (*node.kw, "end_date"),
                f"end_date {_when(end)} is before start_date {_when(start)}: it would never run",
            )
        )


def _check_interval(node: _Node, now: datetime, found: list[TriggerProblem]) -> None:
    _check_end(node, now, found)


def _check_calendar(node: _Node, now: datetime, found: list[TriggerProblem]) -> None:
    _check_end(node, now, found)
    trig = node.trigger
    today = now.astimezone(trig.timezone).date()
    if "start_date" in node.kwargs and trig.start_date < today:
        upcoming = next_fire_times(trig, 1, now)
        then = f" (next: {_when(upcoming[0])})" if upcoming else ""
        found.append(
            (
                Severity.WARNING,
                (*node.kw, "start_date"),
                f"start_date {trig.start_date} is in the past: APScheduler 3.11's CalendarIntervalTrigger "
                "ignores `now` and reports that date as the first run, so a (re)started job first catches up "
                f"on a missed run; runs continue in steps from start_date{then}",
            )
        )
    for message in _calendar_dst_notes(trig, now):
        found.append((Severity.WARNING, node.kw, message))


def _leaf_names(node: _Node) -> set[str]:
    if node.name in ("and", "or"):
        return {name for child in node.children for name in _leaf_names(child)}
    return {node.name}


def _check_or(node: _Node, now: datetime, found: list[TriggerProblem]) -> None:
    shared = "APScheduler 3.11's OrTrigger gives every sub-trigger the same previous fire time, so this"
    for child in node.children:
        # A nested `or` is checked on its own; an `and` inherits the defect from what it contains.
        leaves = _leaf_names(child) if child.name == "and" else {child.name}
        if "date" in leaves:
            what = "`date`" if child.name == "date" else "`and` (it contains a date)"
            message = (
                f"{shared} {what} runs only if it comes before every other run of the `or` (once anything "
                "has run it is dropped); use a separate schedule"
            )
        elif leaves & {"interval", "calendarinterval"}:
            kind = sorted(leaves & {"interval", "calendarinterval"})[0]
            what = f"`{kind}`" if child.name == kind else f"`and` (it contains an {kind})"
            message = (
                f"{shared} {what} counts from whichever sub-trigger ran last (or of every 2 s and every 3 s "
                "runs every 2 s only); use separate schedules"
            )
        else:
            continue
        found.append((Severity.WARNING, child.at, message))


def _check_and(node: _Node, now: datetime, found: list[TriggerProblem]) -> None:
    crons = [child for child in node.children if child.name == "cron"]
    calendars = [child for child in node.children if child.name == "calendarinterval"]
    advice = (
        "write one cron trigger with the fields combined instead (e.g. {day_of_week: mon, hour: 3} "
        "rather than `and` of {hour: 3} and {day_of_week: mon})"
    )
    if len(crons) >= 2:
        reason = "an `and` of two or more cron triggers never returns after its first run"
    elif calendars:
        reason = "an `and` with a calendarinterval never returns (CalendarIntervalTrigger ignores `now`)"
    else:
        try:
            next_fire_times(node.trigger, 3, now)
            return
        except TriggerError:
            reason = "the sub-triggers of this `and` never agree on their next 3 run times"
    found.append(
        (
            Severity.ERROR,
            node.at,
            f"APScheduler 3.11's AndTrigger loops forever here ({reason}), which hangs the whole scheduler; " + advice,
        )
    )


# ----------------------------------------------------------------------------------------- cron checks


def _cron_leaves(trigger: Any) -> list[Any]:
    if isinstance(trigger, AndTrigger | OrTrigger):
        return [leaf for sub in trigger.triggers for leaf in _cron_leaves(sub)]
    return [trigger] if isinstance(trigger, CronTrigger) else []


def _check_cron(node: _Node, now: datetime, found: list[TriggerProblem]) -> None:
    leaves = _cron_leaves(node.trigger)
    _check_end(node, now, found, leaves[0])  # the crontab OR-pair shares start_date/end_date
    kwargs = node.kwargs
    if "crontab" not in kwargs and not any(kwargs.get(name) is not None for name in CRON_FIELDS):
        found.append(
            (
                Severity.WARNING,
                node.at,
                "a cron trigger without fields runs every second; give the fields you mean "
                "(e.g. minute: 0) or second: '*' to confirm",
            )
        )
    dow = kwargs.get("day_of_week")
    if "crontab" not in kwargs and dow is not None and re.search(r"\d", str(dow)):
        found.append((Severity.WARNING, (*node.kw, "day_of_week"), _numeric_weekday_message(str(dow))))
    where = (*node.kw, "crontab") if "crontab" in kwargs else ((*node.kw, "hour") if "hour" in kwargs else node.kw)
    for leaf in leaves:
        never = _cron_never_fires(leaf, now)
        if never:
            found.append((Severity.ERROR, where, never))
            continue
        for message in _cron_dst_notes(leaf, now):
            found.append((Severity.WARNING, where, message))


def _numeric_weekday_message(text: str) -> str:
    days = _expand(CronTrigger.FIELDS_MAP["day_of_week"]("day_of_week", text))[0] or set(range(7))
    message = (
        f"day_of_week {text!r} is APScheduler numbering (0 = Monday): {weekday_phrase(days)}; "
        f"write names to be clear ({format_weekdays(days)}"
    )
    try:
        crontab_days = crontab_weekdays(text)
    except CrontabError:
        crontab_days = days
    if crontab_days != days:
        message += f", or {format_weekdays(crontab_days)} if you meant crontab's {weekday_phrase(crontab_days)}"
    return message + ")"


def _expand(cron_field: Any) -> tuple[set[int] | None, list[str]]:
    """A cron field's numeric values (``None`` = every value) and its special expressions as text."""
    low, high = MIN_VALUES[cron_field.name], MAX_VALUES[cron_field.name]
    values: set[int] = set()
    specials: list[str] = []
    for expr in cron_field.expressions:
        if isinstance(expr, WeekdayPositionExpression | LastDayOfMonthExpression):
            specials.append(str(expr))
        elif isinstance(expr, RangeExpression):
            last = expr.last if expr.last is not None else high
            values.update(range(expr.first, min(last, high) + 1, expr.step or 1))
        elif isinstance(expr, AllExpression):
            if not expr.step:
                return None, []
            values.update(range(low, high + 1, expr.step))
        else:  # pragma: no cover - no other expression class exists in 3.11
            specials.append(str(expr))
    if len(values) == high - low + 1:  # APScheduler validated every value into [low, high]
        return None, []
    return values, sorted(set(specials))


_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _cron_never_fires(trigger: Any, now: datetime) -> str | None:
    fields = {f.name: f for f in trigger.fields}
    years, year_specials = _expand(fields["year"])
    if years is not None and not year_specials and max(years) < now.astimezone(trigger.timezone).year:
        return f"year {fields['year']} is in the past: this cron never runs"
    days, day_specials = _expand(fields["day"])
    months, _ = _expand(fields["month"])
    if days is not None and not day_specials:
        month_list = sorted(months) if months is not None else list(range(1, 13))
        if all(min(days) > _DAYS_IN_MONTH[m - 1] for m in month_list):
            names = ",".join(MONTH_NAMES[m - 1] for m in month_list)
            return f"day {fields['day']} never occurs in {names}: this cron never runs"
    return None


def _matches(cron_field: Any, moment: datetime) -> bool:
    value: int | None = cron_field.get_next_value(moment)
    current: int = cron_field.get_value(moment)
    return value == current


@lru_cache(maxsize=256)
def _transitions(zone_key: str, day: date) -> tuple[tuple[datetime, timedelta, timedelta], ...]:
    """Offset changes of a zone in the 367 days from ``day`` (UTC instant, offset before, offset after)."""
    zone = ZoneInfo(zone_key)
    found: list[tuple[datetime, timedelta, timedelta]] = []
    step = timedelta(hours=6)
    moment = datetime.combine(day, time(0), UTC)
    end = moment + DST_HORIZON + timedelta(days=1)
    offset = moment.astimezone(zone).utcoffset()
    while moment < end:
        following = moment + step
        new_offset = following.astimezone(zone).utcoffset()
        if new_offset != offset:
            low, high = moment, following  # offset(low) == old, offset(high) == new
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            high = high.replace(microsecond=0)
            assert offset is not None and new_offset is not None
            found.append((high, offset, new_offset))
            offset = new_offset
        moment = following
    return tuple(found)


def _zone_changes(zone: tzinfo, now: datetime) -> list[tuple[datetime, timedelta, timedelta]]:
    if not isinstance(zone, ZoneInfo) or _is_fixed_zone(zone):
        return []
    horizon = _utc(now) + DST_HORIZON
    return [item for item in _transitions(zone.key, _utc(now).date()) if _utc(now) < item[0] <= horizon]


def _hm(moment: datetime | time) -> str:
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")


def _slots(walls: list[datetime]) -> str:
    names = [_hm(w) for w in walls]
    if len(names) == 1:
        return names[0]
    if len(names) <= 3:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return f"{names[0]}–{names[-1]} ({len(names)} run times)"


def _cron_dst_notes(trigger: Any, now: datetime) -> list[str]:
    zone = trigger.timezone
    changes = _zone_changes(zone, now)
    if not changes:
        return []
    key = (
        zone.key,
        tuple(str(f) for f in trigger.fields),
        trigger.start_date,
        trigger.end_date,
        _utc(now).date(),
    )
    return list(_cron_dst_notes_cached(key, trigger, _utc(now).replace(minute=0, second=0, microsecond=0)))


_DST_CACHE: dict[tuple[Any, ...], tuple[str, ...]] = {}


def _cron_dst_notes_cached(key: tuple[Any, ...], trigger: Any, now: datetime) -> tuple[str, ...]:
    cached = _DST_CACHE.get(key)
    if cached is not None:
        return cached
    if len(_DST_CACHE) > 50_000:
        _DST_CACHE.clear()
    notes = tuple(_compute_cron_dst_notes(trigger, now))
    _DST_CACHE[key] = notes
    return notes


def _compute_cron_dst_notes(trigger: Any, now: datetime) -> Iterator[str]:
    fields = {f.name: f for f in trigger.fields}
    hours, _ = _expand(fields["hour"])
    if hours is None:
        return  # every hour: the DST day just has one run less or more, nothing surprising
    zone = trigger.timezone
    plain = _without_jitter(trigger)
    for instant, before, after in _zone_changes(zone, now):
        if trigger.start_date is not None and _utc(trigger.start_date) > instant + timedelta(days=1):
            continue
        if trigger.end_date is not None and _utc(trigger.end_date) < instant - timedelta(days=1):
            continue
        wall_before = (instant + before).replace(tzinfo=None)  # the clock reading when it changes
        wall_after = (instant + after).replace(tzinfo=None)
        if after > before:
            walls = _cron_walls(fields, wall_before, wall_after)
            if walls:
                yield _gap_note(plain, zone, instant, after - before, walls, wall_before, wall_after)
        else:
            walls = _cron_walls(fields, wall_after, wall_before)
            if walls:
                yield _fold_note(plain, zone, instant, before - after, walls, wall_before, wall_after)


def _cron_walls(fields: dict[str, Any], start: datetime, end: datetime, limit: int = 4000) -> list[datetime]:
    """Wall-clock times in [start, end) that the cron's fields match, in order (at most ``limit``)."""
    found: list[datetime] = []
    days_matching: dict[date, bool] = {}
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end and len(found) < limit:
        if _matches(fields["hour"], hour):
            day_matches = days_matching.get(hour.date())
            if day_matches is None:
                day_matches = all(_matches(fields[name], hour) for name in _DATE_FIELDS)
                days_matching[hour.date()] = day_matches
            if day_matches:
                _minute_walls(fields, max(hour, start), min(end, hour + timedelta(hours=1)), found, limit)
        hour += timedelta(hours=1)
    return found


def _minute_walls(fields: dict[str, Any], start: datetime, end: datetime, found: list[datetime], limit: int) -> None:
    """Matching times in [start, end) within one hour, jumping from match to match as the cron fields do."""
    minute = start.replace(second=0)
    while minute < end and len(found) < limit:
        value: int | None = fields["minute"].get_next_value(minute)
        if value is None:
            return
        minute = minute.replace(minute=value)
        moment = max(minute, start)
        while moment < end and moment.minute == minute.minute and len(found) < limit:
            second: int | None = fields["second"].get_next_value(moment)
            if second is None:
                break
            moment = moment.replace(second=second)
            if moment >= end:
                return
            found.append(moment)
            moment += timedelta(seconds=1)
        minute += timedelta(minutes=1)


def _real_fires(trigger: Any, start: datetime, stop: datetime, limit: int = 5000) -> list[datetime]:
    """What APScheduler really returns between two UTC instants, chaining prev → next as the scheduler."""
    fires: list[datetime] = []
    prev: datetime | None = None
    current = start.astimezone(trigger.timezone)
    for _ in range(limit):
        upcoming: datetime | None = trigger.get_next_fire_time(prev, current)
        if upcoming is None or _utc(upcoming) >= stop:
            break
        fires.append(upcoming)
        prev = current = upcoming
    return fires


def _gap_note(
    trigger: Any,
    zone: ZoneInfo,
    instant: datetime,
    length: timedelta,
    walls: list[datetime],
    wall_before: datetime,
    wall_after: datetime,
) -> str:
    fires = _real_fires(trigger, instant - length - timedelta(seconds=1), instant + length + timedelta(seconds=1))
    fired_at: dict[datetime, datetime] = {}
    regular: set[datetime] = set()
    for fire in fires:
        wall = fire.replace(tzinfo=None)
        if wall_before <= wall < wall_after:  # APScheduler returned the non-existent wall time itself
            fired_at[wall] = _utc(fire).astimezone(zone)
        else:
            regular.add(_utc(fire))

    def moved(wall: datetime) -> str:
        at = fired_at[wall]
        same = f" (the same moment as its {_hm(at)} run)" if _utc(at) in regular else ""
        return f"{_hm(at)}{same}"

    shifted = [w for w in walls if w in fired_at]
    skipped = [w for w in walls if w not in fired_at]
    head = (
        f"{_slots(walls)} {'does' if len(walls) == 1 else 'do'} not exist on {walls[0]:%Y-%m-%d} in {zone.key} "
        f"(clocks jump {_hm(wall_before)}→{_hm(wall_after)}): APScheduler "
    )
    if len(walls) == 1:
        return head + (f"fires it at {moved(walls[0])} instead" if shifted else "skips it")
    parts = []
    if shifted:
        listed = ", ".join(f"{_hm(w)} at {moved(w)}" for w in shifted[:3])
        parts.append(f"fires {listed}" + (" ..." if len(shifted) > 3 else ""))
    if skipped:
        parts.append(f"skips {_slots(skipped)}")
    return head + " and ".join(parts)


def _fold_note(
    trigger: Any,
    zone: ZoneInfo,
    instant: datetime,
    length: timedelta,
    walls: list[datetime],
    wall_before: datetime,
    wall_after: datetime,
) -> str:
    fires = _real_fires(trigger, instant - length - timedelta(seconds=1), instant + length)
    counts: dict[datetime, set[datetime]] = {}
    for fire in fires:
        counts.setdefault(_utc(fire).astimezone(zone).replace(tzinfo=None), set()).add(_utc(fire))
    times = {len(counts.get(w, ())) for w in walls}
    head = (
        f"{_slots(walls)} {'occurs' if len(walls) == 1 else 'occur'} twice on {walls[0]:%Y-%m-%d} in {zone.key} "
        f"(clocks go back {_hm(wall_before)}→{_hm(wall_after)}): APScheduler fires "
    )
    pronoun = "it" if len(walls) == 1 else "them"
    if times == {2}:
        return head + f"{pronoun} twice"
    if times == {1}:
        return head + f"{pronoun} once"
    return (
        head
        + f"{pronoun} "
        + " or ".join({0: "never", 1: "once", 2: "twice"}.get(t, f"{t} times") for t in sorted(times))
    )


def _calendar_dst_notes(trigger: Any, now: datetime) -> list[str]:
    zone = trigger.timezone
    notes: list[str] = []
    at = trigger._time.replace(tzinfo=None)
    for instant, before, after in _zone_changes(zone, now):
        if after <= before:
            continue  # an ambiguous time runs once, at the first of the two: nothing to say
        wall_before = (instant + before).replace(tzinfo=None)
        wall_after = (instant + after).replace(tzinfo=None)
        moment = datetime.combine(wall_before.date(), at)
        if not wall_before <= moment < wall_after:
            continue
        chain = _calendar_chain_date_before(trigger, moment.date())
        if chain != moment.date() or (trigger.end_date is not None and chain > trigger.end_date):
            continue
        notes.append(
            f"{_hm(at)} does not exist on {moment:%Y-%m-%d} in {zone.key} (clocks jump {_hm(wall_before)}→"
            f"{_hm(wall_after)}): APScheduler's calendarinterval skips that day's run"
        )
    return notes


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
