"""A value computed by a forked child process while this one goes on: the machine's other core.

The child is only a head start, never a second truth: `result()` is the child's value, or None when it gave
nothing usable (no fork on this platform, the child failed or was killed, a result that does not unpickle),
and the caller then computes the value itself. So what a child computes must be a pure function of what
the parent held at the fork; it must never use an inherited connection or write to the terminal.

The child exits with `os._exit`: none of the parent's cleanup, buffered output, atexit handlers or
connection finalizers run twice (a finalizer would end the parent's database session). It dies on
SIGINT/SIGTERM, with its parent (on Linux, however the parent ends) and, under --timeout, by SIGALRM when
the bound is past. RECONCILER_FORK=0 turns every
child off (a platform where forking a process that imported libraries is unsafe).
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import pickle
import signal
import struct
import sys
import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO, Generic, TypeVar

from reconciler import deadline

ENV = "RECONCILER_FORK"  # 0: compute everything in this process

T = TypeVar("T")


def enabled() -> bool:
    """Whether this process may fork helpers: the platform can, and RECONCILER_FORK is not 0."""
    return hasattr(os, "fork") and os.environ.get(ENV, "1") != "0"


class Forked(Generic[T]):
    """The parent's handle on a child computing a `T`: `result()` waits for it, `close()` ends it."""

    def __init__(self, pid: int, out: BinaryIO, kind: type[T]) -> None:
        self._pid: int | None = pid
        self._out = out
        self._kind = kind
        self._value: T | None = None

    @classmethod
    def start(cls, compute: Callable[[], T], kind: type[T]) -> Forked[T] | None:
        """Fork a child that runs `compute()`; None where helpers are off. `kind`: what `result()` accepts."""
        if not enabled():
            return None
        # A file, not a pipe: the child writes its whole result and exits without waiting for the parent
        # to drain 64 KiB at a time (the unlinked file stays in the page cache).
        out = tempfile.TemporaryFile()  # noqa: SIM115 - held open across the fork; result() and close() close it
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _child(out.fileno(), compute, parent)
        return cls(pid, out, kind)

    @property
    def pid(self) -> int | None:
        """The child's process id; None once it has been waited for."""
        return self._pid

    def result(self) -> T | None:
        """The child's value (waiting for it the first time), or None when it gave nothing usable: then
        compute it here."""
        if self._out.closed:
            return self._value
        code = self._reap(kill=False)
        try:
            self._out.seek(0)
            data = self._out.read()
        finally:
            self._out.close()
        if code != 0 or not data:
            return None
        try:
            found = pickle.loads(data)
        except Exception:
            return None
        self._value = found if isinstance(found, self._kind) else None
        return self._value

    def close(self) -> None:
        """End the child if it is still running (its value is no longer wanted)."""
        self._reap(kill=True)
        self._out.close()

    def _reap(self, *, kill: bool) -> int:
        if self._pid is None:
            return -1
        pid, self._pid = self._pid, None
        if kill:
            with contextlib.suppress(ProcessLookupError):  # it has exited already
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)


def _child(fd: int, compute: Callable[[], object], parent: int) -> None:
    code = 1
    try:
        _die_with(parent)
        # The parent's handlers say what an apply was doing; this process just ends.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        left = deadline.remaining()
        if left is not None:  # the parent's watchdog thread is not in this process: the kernel ends it
            signal.alarm(math.ceil(left + deadline.GRACE))
        data = pickle.dumps(compute(), protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        code = 0
    except BaseException:  # whatever it was, the parent computes for itself
        code = 1
    finally:
        os._exit(code)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with(parent: int) -> None:
    """Linux: have the kernel end this child when its parent ends, however it ends (killed by CI, or exiting at
    its --timeout while this child is still blocked on a frozen server, where no `close()` runs); the alarm
    `_child` sets otherwise kept such a child up to its whole bound. Elsewhere that alarm is the only bound."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the request was made
        os._exit(1)


R = TypeVar("R")


class NotHere(Exception):
    """Raised by a computation the helper child must leave to the parent (it needs the parent's connection)."""


class BothEnds(Generic[R]):
    """`[compute(i) for i in range(count)]` shared by two processes: this one takes items from the front
    (`front`), a child forked after this object was made takes them from the back (`back`), until they meet.

    The two claim items through two counters in memory the fork shares. Claims may cross (both compute an
    item: the front's answer is kept) or both stop short of one (the front computes it afterwards), so every
    item is computed once in the list, which is the one a plain loop makes. An item whose computation
    raises `NotHere` in the child is left to the front, which computes it with everything it holds.
    """

    def __init__(self, count: int, compute: Callable[[int], R]) -> None:
        self.count = count
        self._compute = compute
        # Called by `front` between its items: a helper's hook to take what its child has sent meanwhile.
        self.meanwhile: Callable[[], None] | None = None
        self._cursors = mmap.mmap(-1, 16)  # [next front claim, lowest back claim], shared across a fork
        self._set(0, 0)
        self._set(1, count)

    def back(self) -> dict[int, R]:
        """The child's part: items from the last one down, until it meets the front; by index."""
        done: dict[int, R] = {}
        self._back(done.__setitem__)
        return done

    def back_into(self, stream: Stream) -> None:
        """`back()` with each item sent on `stream` as `(index, item)` as soon as it is computed, so the front
        takes it between its own items (`meanwhile`) instead of unpickling the whole part after they met."""
        self._back(lambda i, value: stream.send((i, value)))

    def _back(self, put: Callable[[int, R], object]) -> None:
        for i in range(self.count - 1, -1, -1):
            self._set(1, i)  # claimed, then checked: the front does the same from its end
            if i < self._get(0):
                break
            try:
                value = self._compute(i)
            except NotHere:
                continue
            put(i, value)

    def front(self, theirs: Callable[[], dict[int, R] | None] | None) -> list[R]:
        """This process's part, then the list: `theirs()` waits for the child's part (None: it gave none,
        or there is no child). It is called only if the child claimed an item before the front was done."""
        found: dict[int, R] = {}
        i = 0
        while i < self.count:
            self._set(0, i + 1)
            if theirs is not None and i >= self._get(1):
                for j, value in (theirs() or {}).items():
                    found.setdefault(j, value)
                break
            found[i] = self._compute(i)
            if self.meanwhile is not None:
                self.meanwhile()
            i += 1
        return [found[j] if j in found else self._compute(j) for j in range(self.count)]

    def _set(self, slot: int, value: int) -> None:
        struct.pack_into("q", self._cursors, slot * 8, value)

    def _get(self, slot: int) -> int:
        value: int = struct.unpack_from("q", self._cursors, slot * 8)[0]
        return value


class Stream:
    """Values a child sends one by one while it works (`send`), taken by the parent as they arrive
    (`arrived`, which never waits). Made before the fork; the parent knows the stream is complete once the
    child has ended (`Forked.result`).

    The child appends each value, pickled and preceded by its length, to a file, then moves a counter in
    memory the fork shares past it: the parent reads only up to the counter, so only whole values. A value
    that does not unpickle ends the stream for the parent (`broken`): what it took before stays good, as
    each value is whole on its own.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - held open across the fork; close() closes it
        self._committed = mmap.mmap(-1, 8)  # bytes of whole values written so far
        struct.pack_into("q", self._committed, 0, 0)
        self._taken = 0  # the parent's: bytes already read
        self.broken = False

    def send(self, value: object) -> None:
        """The child's: append `value` and make it visible to the parent."""
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        record = memoryview(struct.pack("q", len(data)) + data)
        offset: int = struct.unpack_from("q", self._committed, 0)[0]
        while record:
            written = os.pwrite(self._file.fileno(), record, offset)
            record, offset = record[written:], offset + written
        struct.pack_into("q", self._committed, 0, offset)  # after the write: the parent never sees half a value

    def arrived(self) -> list[Any]:
        """The parent's: the values sent since the last call, in order (none once `broken`)."""
        end: int = struct.unpack_from("q", self._committed, 0)[0]
        if end == self._taken or self.broken:
            return []
        data = os.pread(self._file.fileno(), end - self._taken, self._taken)
        self._taken = end
        values: list[Any] = []
        at = 0
        try:
            while at < len(data):
                size: int = struct.unpack_from("q", data, at)[0]
                values.append(pickle.loads(data[at + 8 : at + 8 + size]))
                at += 8 + size
        except Exception:
            self.broken = True
        return values

    def close(self) -> None:
        """Release the file and the shared counter."""
        self._file.close()
        self._committed.close()


class Helpers:
    """The helper children one command forks for `BothEnds` work; `close()` ends those still running."""

    def __init__(self, minimum: int) -> None:
        self.minimum = minimum  # fewer items than this: the fork would cost more than it saves
        self._started: list[tuple[Forked[bool], Stream]] = []

    def back_of(self, shared: BothEnds[R]) -> Callable[[], dict[int, R] | None] | None:
        """Fork a child computing `shared.back()` onto a `Stream`, whose items the front takes between its own
        (`shared.meanwhile`); how to wait for the rest of the child's part, or None (no child)."""
        if shared.count < self.minimum:
            return None
        stream = Stream()

        def send() -> bool:
            shared.back_into(stream)
            return True

        helper = Forked.start(send, bool)
        if helper is None:
            stream.close()
            return None
        self._started.append((helper, stream))
        taken: dict[int, R] = {}

        def take() -> None:
            taken.update(stream.arrived())

        def rest() -> dict[int, R]:
            helper.result()  # ended: whatever it sent is on the stream
            take()
            return taken

        shared.meanwhile = take
        return rest

    def close(self) -> None:
        """End every child still running, and reap them all."""
        for helper, stream in self._started:
            helper.close()
            stream.close()
        self._started.clear()
