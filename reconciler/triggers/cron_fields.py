"""The value sets of APScheduler's compiled cron fields."""

from __future__ import annotations

from typing import Any

from apscheduler.triggers.cron.expressions import (
    AllExpression,
    LastDayOfMonthExpression,
    RangeExpression,
    WeekdayPositionExpression,
)
from apscheduler.triggers.cron.fields import MAX_VALUES, MIN_VALUES


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
