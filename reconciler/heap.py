"""How a command uses the garbage collector: a short process that builds many acyclic objects.

Reference counting frees almost everything a command makes; the cyclic collector only rescans live data.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn


def tune_gc() -> None:
    """Fewer full garbage collections: a plan of 50,000 schedules builds millions of acyclic objects.

    With the default thresholds the collector rescans the whole growing heap again and again (validating
    50,000 schedules took 2.9 s instead of 1.8 s). The objects alive at start-up are frozen out of it.
    """
    global _ends_soon
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    _ends_soon = True


# Set by tune_gc: this process is one command (cli.main), not a library caller or a test run.
_ends_soon = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection inside the block (the collector as it was after it).

    For planning and writing: each collection there scans the 50,000 youngest objects, all of them alive
    (~10 ms each, four or five of them for 10,000 schedules), and frees nothing. In a command process
    (`tune_gc`) what the block made is frozen out of the collector too, as the start-up objects are: it lives
    until the process ends, and the first allocation after the block would otherwise start a collection
    that scans all of it (11 ms after a dry run of 10,000) to free nothing. A library caller's collector
    resumes as it was.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if _ends_soon:
                gc.freeze()
            gc.enable()


def end_process(stop: SystemExit) -> NoReturn:
    """Leave the process as `raise stop` would, without the interpreter's teardown of the heap.

    At exit CPython frees every object one by one; after planning 10,000 schedules that took 60–100 ms of a
    1.1 s dry run. The atexit handlers still run (logging flushes, temporary directories go) and the
    output is flushed first. With a non-daemon thread still running, the exit is the ordinary one (it waits
    for that thread). A daemon thread does not hold it: the ordinary exit would not wait for one either, and
    `--timeout`'s watchdog, told to stop, is often still waking when a command ends (counting it sent about
    half of all dry runs through the teardown).
    """
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        raise stop
    code = stop.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # what the interpreter does with a message for an exit code
        code = 1
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # the reader went away (or a stream was closed): as CPython, 120
        os._exit(120)
    os._exit(code or 0)
