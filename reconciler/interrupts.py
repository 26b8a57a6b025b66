"""How far an apply got, so that Ctrl-C, SIGTERM or a timeout can say it in one honest line.

An apply is in one of three phases: before its commit (nothing is applied, whatever happens), committing
(the COMMIT is on its way), or committed (its N changes are in the database; waking the scheduler and
verifying are left). SIGINT and SIGTERM during an apply raise `Interrupted` with the line of the phase it
was in — `interrupted before commit: nothing was applied` or `interrupted after commit: N changes applied;
verification skipped` — and exit 130 / 143. A signal that arrives while the commit is under way is held
until the commit has finished, so the line is never a guess; a second one is not held.

`pause_point(name)` lets a test stop an apply at a named moment (planned, written, committed): with
RECONCILER_PAUSE_AT=name it prints `paused at NAME` on stderr and waits while the file named by
RECONCILER_PAUSE_FILE exists (at most a minute). Without those variables it does nothing.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from types import FrameType

PAUSE_AT = "RECONCILER_PAUSE_AT"
PAUSE_FILE = "RECONCILER_PAUSE_FILE"
PAUSE_POINTS = ("planned", "written", "committed")
PAUSE_LIMIT = 60.0


class Phase(Enum):
    BEFORE_COMMIT = "before commit"
    COMMITTING = "during commit"
    COMMITTED = "after commit"


@dataclass
class _Progress:
    phase: Phase = Phase.BEFORE_COMMIT
    changes: int = 0
    held_signal: int | None = None


_progress = _Progress()


def outcome() -> str:
    """What the current apply has done, as the end of one line: `nothing was applied`, ..."""
    if _progress.phase is Phase.BEFORE_COMMIT:
        return "nothing was applied"
    if _progress.phase is Phase.COMMITTING:
        return "the commit was under way: run `schedules reconcile --dry-run` to see whether it was applied"
    count = _progress.changes
    return f"{count} change{'' if count == 1 else 's'} applied; verification skipped"


def phase() -> Phase:
    return _progress.phase


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM during an apply; the message is the whole line the user reads.

    A KeyboardInterrupt, so that no `except Exception` swallows it and psycopg cancels a running query.
    """

    exit_code = 130

    def __init__(self) -> None:
        super().__init__(f"interrupted {_progress.phase.value}: {outcome()}")


class Terminated(Interrupted):
    """SIGTERM (exit 143)."""

    exit_code = 143


def _interrupted(signum: int) -> Interrupted:
    return Terminated() if signum == signal.SIGTERM else Interrupted()


def committing() -> None:
    """The COMMIT is about to be sent: a signal from now on waits for its answer."""
    _progress.phase = Phase.COMMITTING


def committed(changes: int) -> None:
    """The commit succeeded with `changes` changes; a signal held during it is raised now."""
    _progress.phase = Phase.COMMITTED
    _progress.changes = changes
    held, _progress.held_signal = _progress.held_signal, None
    if held is not None:
        raise _interrupted(held)


def commit_failed() -> None:
    """The COMMIT raised: the database rolled the transaction back."""
    _progress.phase = Phase.BEFORE_COMMIT
    held, _progress.held_signal = _progress.held_signal, None
    if held is not None:
        raise _interrupted(held)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    if _progress.phase is Phase.COMMITTING and _progress.held_signal is None:
        _progress.held_signal = signum  # answered as soon as the commit has its answer
        return
    raise _interrupted(signum)


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT/SIGTERM inside the block raise `Interrupted` with the line of the phase the apply is in.

    Outside the main thread (an apply called from a worker) signals stay as they are.
    """
    _progress.phase, _progress.changes, _progress.held_signal = Phase.BEFORE_COMMIT, 0, None
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, _on_signal)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _progress.phase, _progress.changes, _progress.held_signal = Phase.BEFORE_COMMIT, 0, None


def pause_point(name: str) -> None:
    """A test's named stop (see the module docstring); nothing unless RECONCILER_PAUSE_AT names it."""
    if os.environ.get(PAUSE_AT) != name:
        return
    flag = os.environ.get(PAUSE_FILE)
    print(f"paused at {name}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + PAUSE_LIMIT
    while flag and os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.02)
