"""The hold rule: when a job row may be in a scheduler's hands, so an apply must not write it yet.

APScheduler 3.11's `_process_jobs` reads every due row (`get_due_jobs`: next_run_time <= now), submits
each, then writes each row's next run (`update_job`, or `remove_job` for an exhausted trigger) — one
transaction per row, no lock held in between. A row written by another process inside that span is
overwritten by the scheduler's `update_job` (the change is lost); a row deleted inside it makes
`update_job` raise JobLookupError, which kills orchestrator-core's scheduler thread.

So a row is *held* from just before its next_run_time (`lead`: the scheduler's clock may run ahead of
ours) until its next_run_time column has moved on — the scheduler's `update_job` committed — or until
`bound` seconds after it fell due: a row still unmoved then is overdue because no scheduler is
processing it, and is not guarded. Measured with bench/hold_span.py (APScheduler 3.11.3 configured as
orchestrator-core 5.5.0 configures it, PostgreSQL on this machine): due → moved takes 15 ms median and
28 ms at most for one due row, up to 0.5 s for the last of 50 rows due at the same instant.

The rule is safe only together with how apply uses it (apply.py): on PostgreSQL it evaluates the
reading taken under `LOCK TABLE apscheduler_jobs IN ACCESS EXCLUSIVE MODE`, which no `get_due_jobs`
can pass, and writes in that same lock; so the only danger left is a pass that read a row *before*
the lock and has not written it back yet — exactly a due row not yet moved, which this rule holds.

Everything here is pure: readings and clocks come in as numbers (UTC epoch seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

HOLD_LEAD = 0.1  # s before next_run_time: clock skew between the scheduler's host and ours
DEFAULT_BOUND = 10.0  # s after next_run_time (--guard-seconds): an unmoved row is overdue, not held
POLL = 0.02  # s between readings while a due row waits for the scheduler to move it
SETTLE = 0.02  # s after next_run_time before the first reading (the move takes ~15 ms)

# A reading: schedule id → its next_run_time column (None = paused, never due).
Reading = Mapping[str, float | None]


@dataclass(frozen=True)
class HoldRule:
    """The two edges of the span in which a scheduler may hold a row."""

    lead: float = HOLD_LEAD
    bound: float = DEFAULT_BOUND

    def __post_init__(self) -> None:
        if self.lead < 0 or self.bound < 0:
            raise ValueError("the hold rule's lead and bound are seconds, not negative")


@dataclass(frozen=True)
class Hold:
    """What a reading says: which rows not to touch now, and when to read again."""

    held: frozenset[str]
    wait: float  # seconds until a new reading can change the answer; 0.0 when nothing is held
    moved: frozenset[str] = frozenset()  # rows whose next_run_time changed since the previous reading

    @property
    def free(self) -> bool:
        return not self.held


def hold(current: Reading, now: float, rule: HoldRule, previous: Reading | None = None) -> Hold:
    """Which rows of `current` a scheduler may hold at `now`, and how long until the next useful reading.

    Per row with next_run_time `t`: free when paused (None), when `now < t - lead` (not due yet), or when
    `now >= t + bound` (overdue: no scheduler moved it). Otherwise held: until `t` (+ the move's own
    time) when it is about to fall due, else for one short poll while the scheduler moves it.
    """
    held: set[str] = set()
    wait = float("inf")
    for row_id, due in current.items():
        row_wait = _row_wait(due, now, rule)
        if row_wait is not None:
            held.add(row_id)
            wait = min(wait, row_wait)
    moved = frozenset(
        row_id
        for row_id, due in current.items()
        if previous is not None and row_id in previous and previous[row_id] != due
    )
    return Hold(frozenset(held), wait if held else 0.0, moved)


def _row_wait(due: float | None, now: float, rule: HoldRule) -> float | None:
    """None when the row is free at `now`; else the seconds until it is worth reading it again."""
    if due is None or now < due - rule.lead or now >= due + rule.bound:
        return None
    if now < due:
        return due - now + SETTLE  # about to fall due: the scheduler moves it right after `due`
    return min(POLL, due + rule.bound - now)  # due and unmoved: read again soon (or when it is overdue)


def patience(rule: HoldRule) -> float:
    """How long an apply waits for one set of rows before giving up.

    Each row's hold ends at most `lead + bound` after it is first seen held (moved by a scheduler, or
    overdue because none runs). Waiting longer means the set keeps falling due somewhere — many 1 s jobs
    at different phases, so that at no instant are all of them free — and the apply stops with an error
    instead of waiting forever.
    """
    return rule.lead + rule.bound + 2.0
