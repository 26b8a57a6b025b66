"""DST notes: cron and calendarinterval times that a change of a zone's offset skips, shifts or repeats."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from reconciler.triggers.building import _is_fixed_zone
from reconciler.triggers.cron_fields import _expand
from reconciler.triggers.fire_times import _calendar_chain_date_before, _without_jitter
from reconciler.triggers.moments import _hm, _utc

DST_HORIZON = timedelta(days=366)
_DATE_FIELDS = ("year", "month", "day", "week", "day_of_week")


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
