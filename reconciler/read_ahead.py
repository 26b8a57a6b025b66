"""A dry run's read of PostgreSQL, made by a forked process while this one parses the schedule files.

A no-op dry run of 10,000 schedules spends ~0.5 s in the database edge before planning: importing psycopg,
connecting, detecting orchestrator-core's generation, reading the ledger, the links and every row's digests.
None of it needs the files, and parsing them takes longer, so a child process (the machine's other core)
reads while the parent parses; the parent then plans from the child's `LiveSnapshot`. A row the snapshot
cannot vouch for (its spec changed) is read whole by the parent, as a dry run always did.

Once it has read, the child checks schedule files from the last one down while the parent checks from the
first (forked.BothEnds): at 10,000 schedules it reads in ~0.25 s while the parent parses for ~0.45 s, and
would otherwise wait idle. The read and each file it checks go on a `forked.Stream` as soon as they are made,
and the parent unpickles them between its own files (`ReadAhead.take`): when the two meet, only the child's
last file is left to take, not ~50 ms of unpickling on one core.

The child is only a head start, never a second truth:
- it reads what `reads.read_snapshot` and `orchestrator_versions.detect` read, in one read-only transaction;
- what it raises comes back to be raised in the parent where the read would have raised it: a `CommandError`
  as itself, a database error as the one line `describe_db_error` makes of it;
- anything else (no fork on this platform, the child killed before it sent its read, a read that does not
  unpickle) returns None, and the parent reads for itself; a file the child claimed and did not send is
  checked by the parent.
The fork, the child's exit and its signals are forked.py's. RECONCILER_FORK=0 turns it off with every other
helper (RECONCILER_READ_AHEAD=0, its older spelling, turns off this one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from reconciler import forked
from reconciler.exit_codes import CommandError
from reconciler.forked import Forked

if TYPE_CHECKING:
    from reconciler.orchestrator_versions import Generation
    from reconciler.reads import LiveSnapshot


ENV = "RECONCILER_READ_AHEAD"  # 0: a dry run reads after parsing (forked.ENV turns off every helper)


class DatabaseReadFailed(CommandError):
    """The child's read failed in the database; the message is `describe_db_error`'s line for it."""


@dataclass(frozen=True)
class ReadResult:
    """What the child read, or where it stopped: `generation` None means detection failed, `snapshot` None
    that the read after it did; `error` is what stopped it."""

    generation: Generation | None
    snapshot: LiveSnapshot | None
    error: CommandError | None = None

    def detected(self) -> Generation:
        """The generation, or the error detection raised."""
        if self.generation is None:
            assert self.error is not None
            raise self.error
        return self.generation

    def live(self) -> LiveSnapshot:
        """The snapshot, or the error its read raised."""
        if self.snapshot is None:
            assert self.error is not None
            raise self.error
        return self.snapshot


def read(url: str, version: str | None, timeout: float) -> ReadResult:
    """Detect the generation and read the snapshot of `url`, in one read-only transaction (the child's work;
    callable in process too). A database error or a `CommandError` becomes the result's `error`."""
    from reconciler import orchestrator_versions, reads
    from reconciler.database_url import describe_db_error

    reader = reads.open_read_only(url, timeout=timeout)
    if reader is None:
        raise ValueError("read ahead: a URL only SQLAlchemy reads")
    generation = None
    try:
        with reader.transaction():
            generation = orchestrator_versions.detect(reader, version)
            return ReadResult(generation, reads.read_snapshot(reader))
    except CommandError as exc:
        return ReadResult(generation, None, exc)
    except Exception as exc:
        if not reads.is_database_error(exc):
            raise
        return ReadResult(generation, None, DatabaseReadFailed(f"database: {describe_db_error(exc)}"))
    finally:
        reader.close()


def enabled() -> bool:
    """Whether a dry run may read ahead: helpers are on (forked.enabled) and ENV is not 0."""
    return forked.enabled() and os.environ.get(ENV, "1") != "0"


class ReadAhead:
    """The parent's handle on the read-ahead child: `result()` is its `ReadResult` (None when it gave none),
    `helped()` the files it checked after reading, by index. Both arrive on a `forked.Stream` as the child
    makes them; `take()` (the front's `meanwhile`) unpickles what has arrived while this process parses, so
    little is left to unpickle once the two meet."""

    def __init__(self, child: Forked[bool], stream: forked.Stream) -> None:
        self._child = child
        self._stream = stream
        self._read: ReadResult | None = None
        self._first = True  # the next value to arrive is the read
        self._files: dict[int, Any] = {}
        self._ended = False

    @property
    def pid(self) -> int | None:
        """The child's process id; None once it has been waited for."""
        return self._child.pid

    def take(self) -> None:
        """Unpickle whatever the child has sent so far (never waits). Called during the parse, where
        load_desired has the collector paused, so the snapshot's ~100,000 objects are never rescanned."""
        for value in self._stream.arrived():
            if self._first:
                self._first = False
                self._read = value if isinstance(value, ReadResult) else None
            elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int):
                self._files[value[0]] = value[1]

    def result(self) -> ReadResult | None:
        """What the child read (waiting for it if it has not arrived), or None: then read here."""
        self.take()
        if self._first:
            self._wait()
        return self._read

    def helped(self) -> dict[int, Any]:
        """The files the child checked, by index (waiting for it to end): any it claimed and did not send are
        checked by the front (forked.BothEnds)."""
        self._wait()
        return self._files

    def _wait(self) -> None:
        if not self._ended:
            self._ended = True
            self._child.result()  # ended: whatever it sent is on the stream
            self.take()

    def close(self) -> None:
        """End the child if it is still running."""
        self._child.close()
        self._stream.close()


def start(url: str, version: str | None, timeout: float, files: forked.BothEnds[Any] | None = None) -> ReadAhead | None:
    """Fork the child that runs `read(url, ...)` and sends it, then checks `files` from the end (the dry run's
    schedule files: forked.BothEnds.back_into); `close()` ends it. None where helpers are off (`enabled`)."""
    if not enabled():
        return None
    stream = forked.Stream()

    def compute() -> bool:
        stream.send(_shared(read(url, version, timeout)))
        if files is not None:
            files.back_into(stream)
        return True

    child = Forked.start(compute, bool)
    if child is None:
        stream.close()
        return None
    return ReadAhead(child, stream)


def _shared(result: ReadResult) -> ReadResult:
    """`result` with equal strings and timestamps as one object each. Pickle then writes each once: every
    ledger row repeats its namespace, workflow, file, commit, author, time and owner, and every link a
    workflow id; a schedule's id is in its ledger entry, its row and its links, and an unchanged row's hash
    in the row and the entry. The parent unpickles 10,000 schedules' snapshot in ~20 ms instead of ~100 ms
    (4.8 MB → 3.5 MB; ~33 ms with the ids and hashes apart), and compares those strings by identity.

    The entries are changed in place (through their `__dict__`: they are frozen), at a third of the cost of
    copying them: they were made by this child's own read, and nothing else holds them."""
    snapshot = result.snapshot
    if snapshot is None:
        return result
    memo: dict[Any, Any] = {}
    one = memo.setdefault
    for e in snapshot.ledger:
        fields = e.__dict__
        fields["namespace"] = one(e.namespace, e.namespace)
        fields["workflow_name"] = one(e.workflow_name, e.workflow_name)
        fields["source_path"] = one(e.source_path, e.source_path)
        fields["applied_commit"] = one(e.applied_commit, e.applied_commit)
        fields["applied_author"] = one(e.applied_author, e.applied_author)
        # equal instants in other zones stay apart
        fields["applied_at"] = one((e.applied_at, getattr(e.applied_at, "tzinfo", None)), e.applied_at)
        fields["source"] = one(e.source, e.source)
        fields["schedule_id"] = one(e.schedule_id, e.schedule_id)
        fields["row_hash"] = one(e.row_hash, e.row_hash)
    rows = [(one(i, i), n, d, one(h, h)) for i, n, d, h in snapshot.row_hashes]
    links = {one(job, job): tuple(one(w, w) for w in ids) for job, ids in snapshot.links.items()}
    return replace(result, snapshot=replace(snapshot, links=links, row_hashes=rows))
