"""Next fire times, predicted without ever hanging (a bounded ``AndTrigger``, past runs skipped)."""

from __future__ import annotations

import copy
import math
from datetime import date, datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.combining import AndTrigger, OrTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.triggers.building import TriggerError, _aware_now
from reconciler.triggers.moments import _utc

AND_MAX_ITERATIONS = 1000  # AndTrigger rounds before we call it "never converges"
MISSED_RUNS_MAX = 10_000  # runs before `now` that next_fire_times walks past before giving up
MISSED_RESTART = 100  # after this many missed runs, ask the trigger afresh from `now` (previous=None)
CALENDAR_CHAIN_MAX = 100_000  # calendarinterval steps walked to skip a past start_date
WINDOW_FIRES_MAX = 100_000  # fire times fire_times_between lists for one trigger before it stops (truncated)


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
        try:
            upcoming = _next(plain, prev, current, top=True)
        except TriggerError:
            raise
        except (OverflowError, ValueError):
            if not result:
                raise  # not even one run: the spec is broken (validation reports it with its place)
            break  # the calendar ends (year 9999) before `count` runs: the preview stops there
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


def fire_times_between(
    trigger: BaseTrigger, start: datetime, end: datetime, *, limit: int = WINDOW_FIRES_MAX
) -> tuple[list[datetime], bool]:
    """Every fire time in ``[start, end]``, oldest first, and whether ``limit`` cut the list short.

    The trigger's own history over a window: the first run at or after ``start``, then each next one chained
    from the previous, as the scheduler chains them (so ``start_date``, ``end_date``, DST gaps and repeated
    hours are the trigger's own answers). Same guards as :func:`next_fire_times` (a bounded ``AndTrigger``,
    a past calendarinterval ``start_date``); jitter is left out. An ``IntervalTrigger`` is stepped by
    arithmetic on UTC timestamps, which is what its own ``get_next_fire_time`` does one call at a time.
    """
    start, end = _aware_now(start), _aware_now(end)
    plain = _without_jitter(trigger)
    if isinstance(plain, IntervalTrigger):
        return _interval_between(plain, start, end, limit)
    found: list[datetime] = []
    upcoming = _next(plain, None, start, top=True)
    while upcoming is not None and _utc(upcoming) <= _utc(end):
        if _utc(upcoming) >= _utc(start):  # a DateTrigger answers its run_date even when it lies before start
            if len(found) == limit:
                return found, True
            found.append(upcoming)
        following = _next(plain, upcoming, upcoming)
        if following is not None and _utc(following) <= _utc(upcoming):
            break  # a trigger that does not move forward would loop here forever
        upcoming = following
    return found, False


def _interval_between(trigger: Any, start: datetime, end: datetime, limit: int) -> tuple[list[datetime], bool]:
    first: datetime | None = trigger.get_next_fire_time(None, start)
    if first is None:
        return [], False
    step = trigger.interval_length
    last = end.timestamp()
    if trigger.end_date is not None:
        last = min(last, trigger.end_date.timestamp())
    origin = first.timestamp()
    count = int((last - origin) // step) + 1 if last >= origin else 0
    zone = first.tzinfo
    found = [datetime.fromtimestamp(origin + i * step, zone) for i in range(min(count, limit))]
    return found, count > limit


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
