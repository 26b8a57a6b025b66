"""Logs and diagnostics go to stderr while a command runs: stdout carries only the requested output.

Mounted in an orchestrator-core `main.py`, the host's logging may write to stdout at DEBUG; then alembic's
and our dependencies' lines would land between plan lines and `--format json > plan.json` would not be JSON.
For the duration of one command, every logging handler writing to stdout is pointed at stderr, and the
libraries' chatter is held at WARNING unless the command runs with `-v`. Everything is put back afterwards,
so the host application's logging is as it was.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a command runs, not for `--help` (which logs nothing)
    import logging

QUIETED_LIBRARIES = ("git", "alembic", "sqlalchemy", "apscheduler", "psycopg", "redis", "urllib3", "httpx", "httpcore")
"""Loggers held at WARNING during a command unless verbose: their INFO/DEBUG lines are not for our users."""


def _all_loggers() -> list[logging.Logger]:
    import logging

    loggers = [logging.getLogger()]
    loggers.extend(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger))
    return loggers


def _writes_to_stdout(handler: logging.Handler) -> bool:
    import logging

    stream: Any = getattr(handler, "stream", None)
    return isinstance(handler, logging.StreamHandler) and stream is not None and stream in (sys.stdout, sys.__stdout__)


@contextmanager
def diagnostics_to_stderr(*, verbose: bool = False) -> Iterator[None]:
    """Within the block: log handlers on stdout write to stderr; libraries log WARNING and up (unless verbose)."""
    import logging

    moved: list[tuple[logging.StreamHandler[Any], Any]] = []
    for logger in _all_loggers():
        for handler in logger.handlers:
            if _writes_to_stdout(handler):
                assert isinstance(handler, logging.StreamHandler)
                moved.append((handler, handler.setStream(sys.stderr)))
    levels: list[tuple[logging.Logger, int]] = []
    if not verbose:
        for name in QUIETED_LIBRARIES:
            logger = logging.getLogger(name)
            if logger.getEffectiveLevel() < logging.WARNING:
                levels.append((logger, logger.level))
                logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in levels:
            logger.setLevel(level)
        for handler, stream in moved:
            handler.setStream(stream)
