"""The one time format a person reads, everywhere: `2026-12-02 02:30 CET (01:30 UTC)`.

In the schedule's own zone with its abbreviation, UTC beside it where they differ (with the date when
that differs too); minutes, or seconds when there are any; never microseconds. Machines get ISO 8601
with an offset (JSON): this module is only for text. Pure: no I/O.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _clock(moment: datetime, *, with_date: bool) -> str:
    pattern = ("%Y-%m-%d " if with_date else "") + ("%H:%M:%S" if moment.second else "%H:%M")
    return moment.strftime(pattern)


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def human_time(moment: datetime, zone: str | None = None) -> str:
    """`moment` for a person: in `zone` (an IANA name; default: the moment's own zone, UTC if naive)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.replace(microsecond=0)
    shown = moment.astimezone(_zone(zone) or moment.tzinfo)
    offset = shown.utcoffset() or timedelta(0)
    label = shown.tzname() or "UTC"
    if label.startswith("UTC") and len(label) > 3:  # a fixed offset without a zone name: "+01:00" says it
        label = label[3:]
    text = f"{_clock(shown, with_date=True)} {label}"
    if offset == timedelta(0):
        return text
    utc = shown.astimezone(UTC)
    return f"{text} ({_clock(utc, with_date=utc.date() != shown.date())} UTC)"


# A plan of 10,000 schedules renders ~30,000 next runs, and schedules share them (every daily 02:00 in one
# zone): each distinct one is formatted once.
@functools.lru_cache(maxsize=8192)
def human_iso(iso: str | None, zone: str | None = None) -> str:
    """`human_time` of an ISO 8601 text ("" for None; the text itself when it is not ISO 8601)."""
    if not iso:
        return ""
    try:
        return human_time(datetime.fromisoformat(iso), zone)
    except ValueError:
        return iso
