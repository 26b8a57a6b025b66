"""What the terminal wants: colour or not (NO_COLOR, FORCE_COLOR, TERM=dumb, a TTY), and log lines for people.

The conventions of no-color.org and force-color.org: FORCE_COLOR (non-empty, not "0") wins, then NO_COLOR
(non-empty), then TERM=dumb; otherwise colour only on a terminal.
"""

from __future__ import annotations

import os
from typing import TextIO


def colour_wanted(stream: TextIO) -> bool:
    """Whether text written to `stream` may carry colour."""
    force = os.environ.get("FORCE_COLOR", "")
    if force and force != "0":
        return True
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def human_logs_wanted(stream: TextIO) -> bool:
    """Log lines for a person (one readable line per event) on a terminal; JSON lines for machines otherwise."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
