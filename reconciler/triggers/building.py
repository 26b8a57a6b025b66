"""Building: a spec (trigger, trigger_kwargs, timezone) → a real APScheduler 3.11 trigger.

Also what building needs: :class:`TriggerError`, time zones and argument values.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.crontab import CrontabError, crontab_to_cron_fields

Where = tuple[str | int, ...]


CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
_INTERVAL_UNITS = (("weeks", 604800), ("days", 86400), ("hours", 3600), ("minutes", 60), ("seconds", 1))
_CALENDAR_UNITS = ("years", "months", "weeks", "days")
_CALENDAR_TIME = (("hour", 23), ("minute", 59), ("second", 59))

# The arguments of each trigger, by its name in a spec (spec.TRIGGER_NAMES, in the same order: a test checks; not
# imported from there, so reading triggers from the database never builds the file format's pydantic models).
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
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int of hundreds of digits: no float, no timedelta holds it
        raise TriggerError(f"{what} is too large ({len(str(value))} digits)", where) from None
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
    if not isinstance(name, str) or name not in _ALLOWED:
        raise TriggerError(
            f"unknown trigger {name!r} (use one of {', '.join(_ALLOWED)})", (*at, "trigger") if at else ()
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
    try:
        node: _Node = _BUILDERS[name](kwargs, zone, now, at, kw)
    except TriggerError:
        raise
    except (ArithmeticError, ValueError, TypeError) as exc:
        # Whatever APScheduler or the standard library raise for a value the checks above let through
        # (a date at the end of the calendar, a count too large for C): still an error with a place.
        raise TriggerError(f"{name} trigger: {exc}", at) from None
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
