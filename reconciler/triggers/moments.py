"""Moments as UTC instants and as text, shared by the checks, the canonical form and the words."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from reconciler.triggers.building import _zone_label


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _when(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        text = moment.strftime("%Y-%m-%d %H:%M" + (":%S" if moment.second else ""))
        return f"{text} {_zone_label(moment.tzinfo)}"
    return moment.isoformat()


def _hm(moment: datetime | time) -> str:
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")
