"""Problems: semantic checks of a spec, what builds but does not do what its author thinks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.cron import CronTrigger

from reconciler.crontab import MONTH_NAMES, CrontabError, crontab_weekdays, format_weekdays, weekday_phrase
from reconciler.problems import Severity
from reconciler.triggers.building import (
    _CACHE_LIMIT,
    CRON_FIELDS,
    TriggerError,
    Where,
    _aware_now,
    _build,
    _cache_key,
    _datetime_arg,
    _Node,
    _zone_label,
)
from reconciler.triggers.cron_fields import _expand
from reconciler.triggers.dst import _calendar_dst_notes, _cron_dst_notes
from reconciler.triggers.fire_times import next_fire_times
from reconciler.triggers.moments import _utc, _when

TriggerProblem = tuple[Severity, Where, str]

# Findings of each distinct spec at each `now`, kept like the built triggers in building.py.
_PROBLEMS: dict[tuple[Any, ...], tuple[TriggerProblem, ...]] = {}


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
    try:
        _check(root, now, found)
        # The plan asks every trigger for its first fire times: a value that makes APScheduler overflow
        # there (a calendarinterval of 10^11 years) is an error of the file, found here with its place.
        next_fire_times(root.trigger, 1, now)
    except TriggerError:
        pass  # a combination that never converges: _check_and has reported it at its place
    except (ArithmeticError, ValueError, TypeError) as exc:
        found.append((Severity.ERROR, (), f"its fire times cannot be computed: {exc}"))
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
