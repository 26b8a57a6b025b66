"""Cron expressions: crontab(5) lines to APScheduler 3.11 ``CronTrigger`` fields, and value sets to field text.

A schedule may write ``cron`` as ``{crontab: "30 2 * * 1-5"}``. That string means what crontab(5) (Vixie
cron / cronie) means, which differs from APScheduler's own fields in two ways that bite:

* day-of-week numbers: crontab has 0 and 7 = Sunday, 1 = Monday; APScheduler has 0 = Monday
  (``CronTrigger.from_crontab`` keeps APScheduler's numbering, so ``1-5`` would be Tuesday–Saturday);
* day-of-month and day-of-week: when both are restricted (neither field starts with ``*``), crontab fires
  when *either* matches; APScheduler's fields always all have to match.

:func:`crontab_to_cron_fields` therefore expands every field to its value set, writes days of the week as
APScheduler *names* (``mon-fri``), and returns two field sets (to be OR-ed) when crontab's either-day rule
applies. Accepted syntax per field: ``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n``, ``a/n`` (= ``a-max/n``), comma
lists; month and weekday names (``jan``, ``mon``; any case, also inside ranges); the macros ``@yearly``,
``@annually``, ``@monthly``, ``@weekly``, ``@daily``, ``@midnight`` and ``@hourly``. A day-of-week range may
wrap (``fri-mon``, ``sat-sun``, ``5-1``); other reversed ranges are errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# APScheduler's weekday numbering: 0 = Monday ... 6 = Sunday.
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_WORDS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# crontab's weekday numbering: 0 (and 7) = Sunday, 1 = Monday ... 6 = Saturday.
_CRONTAB_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class CrontabError(ValueError):
    """A crontab line that crontab(5) would not accept (or that this translation refuses)."""


@dataclass(frozen=True)
class _Field:
    name: str  # crontab's name, used in messages
    low: int
    high: int  # for day-of-week 7 (= Sunday again), as in crontab
    names: tuple[str, ...] = ()
    first_name_value: int = 0


_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day of month", 1, 31)
_MONTH = _Field("month", 1, 12, MONTH_NAMES, 1)
_DOW = _Field("day of week", 0, 7, _CRONTAB_WEEKDAYS, 0)

_ITEM = re.compile(r"^(?:(?P<star>\*)|(?P<first>[0-9]+|[a-z]+)(?:-(?P<last>[0-9]+|[a-z]+))?)(?:/(?P<step>[0-9]+))?$")


def _value(token: str, field: _Field, text: str) -> int:
    if token.isdigit():
        number = int(token)
    elif token in field.names:
        number = field.names.index(token) + field.first_name_value
    else:
        if field.names:
            raise CrontabError(f"{field.name} {text!r}: unknown name {token!r} (use {', '.join(field.names)})")
        raise CrontabError(f"{field.name} {text!r}: {token!r} is not a number")
    if not field.low <= number <= field.high:
        raise CrontabError(f"{field.name} {text!r}: {number} is outside {field.low}-{field.high}")
    return number


def _parse(text: str, field: _Field) -> set[int]:
    """The values a crontab field selects (day of week: 0 and 7 are Sunday; callers take them mod 7)."""
    values: set[int] = set()
    for item in text.lower().split(","):
        match = _ITEM.match(item)
        if not match:
            raise CrontabError(f"{field.name} {text!r}: cannot read {item!r}")
        step = int(match["step"]) if match["step"] is not None else 1
        if step < 1:
            raise CrontabError(f"{field.name} {text!r}: a step must be at least 1")
        if match["star"]:
            sequence = list(range(field.low, field.high + 1))
        else:
            first = _value(match["first"], field, text)
            if match["last"] is not None:
                last = _value(match["last"], field, text)
            elif match["step"] is not None:
                last = field.high  # "a/n" = "a-max/n"
            else:
                last = first
            if first <= last:
                sequence = list(range(first, last + 1))
            elif field is _DOW:  # fri-mon wraps over Sunday; 7-2 is Sunday (7, the same as 0) to Tuesday
                sequence = list(range(first, 7)) + list(range(last + 1))
            else:
                raise CrontabError(f"{field.name} {text!r}: range {first}-{last} is reversed")
        values.update(sequence[::step])
    return values


def format_values(values: Iterable[int], low: int, high: int) -> str:
    """Write a set of field values as APScheduler field text, the same text for the same set.

    The whole range is ``*``; an arithmetic run from ``low`` to the end is ``*/n``; otherwise runs are
    ``a-b`` (step 1, two or more values) or ``a-b/n`` (three or more values), joined with commas.
    """
    ordered = sorted(set(values))
    if not ordered:
        raise ValueError("empty value set")
    if ordered == list(range(low, high + 1)):
        return "*"
    if len(ordered) >= 2 and ordered[0] == low:
        step = ordered[1] - ordered[0]
        if ordered == list(range(low, high + 1, step)):
            return f"*/{step}"
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        if i + 1 < len(ordered):
            step = ordered[i + 1] - ordered[i]
            j = i + 1
            while j + 1 < len(ordered) and ordered[j + 1] - ordered[j] == step:
                j += 1
            if step == 1 or j - i >= 2:
                parts.append(f"{ordered[i]}-{ordered[j]}" + ("" if step == 1 else f"/{step}"))
                i = j + 1
                continue
        parts.append(str(ordered[i]))
        i += 1
    return ",".join(parts)


def format_weekdays(days: Iterable[int]) -> str:
    """APScheduler day numbers (0 = Monday) as APScheduler weekday names: ``mon-fri``, ``mon,wed,sun``, ``*``."""
    chosen = set(days)
    if chosen == set(range(7)):
        return "*"
    return ",".join(WEEKDAY_NAMES[a] if a == b else f"{WEEKDAY_NAMES[a]}-{WEEKDAY_NAMES[b]}" for a, b in _runs(chosen))


def weekday_phrase(days: Iterable[int]) -> str:
    """APScheduler day numbers (0 = Monday) in words: ``Monday–Friday``, ``Monday, Wednesday and Sunday``."""
    chosen = set(days)
    if chosen == set(range(7)):
        return "every day"
    parts: list[str] = []
    for a, b in _runs(chosen):
        if b - a >= 2:
            parts.append(f"{WEEKDAY_WORDS[a]}–{WEEKDAY_WORDS[b]}")
        else:
            parts.extend(WEEKDAY_WORDS[d] for d in range(a, b + 1))
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _runs(days: Iterable[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for day in sorted(set(days)):
        if runs and runs[-1][1] == day - 1:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def crontab_weekdays(text: str) -> set[int]:
    """Read a day-of-week field with crontab numbering; return APScheduler day numbers (0 = Monday)."""
    return {(day + 6) % 7 for day in _parse(text, _DOW)}


def crontab_to_cron_fields(expr: str) -> list[dict[str, str]]:
    """Translate a crontab(5) line to APScheduler ``CronTrigger`` field keyword arguments.

    Returns one dict, or two when both day of month and day of week are restricted (neither field starts
    with ``*``, crontab's own test): crontab then fires when either matches, so the caller builds an
    ``OrTrigger`` of one ``CronTrigger`` per dict. ``minute`` is always present (so ``second`` defaults
    to 0); fields that are ``*`` are left out. Raises :class:`CrontabError` with a message naming the field.
    """
    line = expr.strip()
    if line.startswith("@"):
        if line.lower() not in MACROS:
            raise CrontabError(f"unknown crontab macro {line!r} (use one of {', '.join(MACROS)})")
        line = MACROS[line.lower()]
    texts = line.split()
    if len(texts) != 5:
        raise CrontabError(
            f"a crontab line has 5 fields (minute hour day-of-month month day-of-week), got {len(texts)}"
            + ("; for seconds or years use cron fields instead of `crontab`" if len(texts) > 5 else "")
        )
    minute, hour, dom, month, dow = texts
    minutes = _parse(minute, _MINUTE)
    hours = _parse(hour, _HOUR)
    days = _parse(dom, _DOM)
    months = _parse(month, _MONTH)
    weekdays = crontab_weekdays(dow)

    base = {"minute": format_values(minutes, 0, 59)}
    if hours != set(range(24)):
        base["hour"] = format_values(hours, 0, 23)
    if months != set(range(1, 13)):
        base["month"] = format_values(months, 1, 12)
    day_text = format_values(days, 1, 31)
    weekday_text = format_weekdays(weekdays)

    dom_restricted = not dom.startswith("*")
    dow_restricted = not dow.startswith("*")
    if dom_restricted and dow_restricted:
        if day_text == "*" or weekday_text == "*":
            return [dict(base)]  # one side matches every day, so the OR does too
        return [{**base, "day": day_text}, {**base, "day_of_week": weekday_text}]
    # At most one is restricted in crontab's sense ("*/2" counts as unrestricted): all fields must match.
    both = dict(base)
    if day_text != "*":
        both["day"] = day_text
    if weekday_text != "*":
        both["day_of_week"] = weekday_text
    return [both]
