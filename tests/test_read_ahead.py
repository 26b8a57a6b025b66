"""A dry run's read ahead (reconciler/read_ahead.py): the forked reader is a head start, never another answer.

Each test runs the same dry run twice, reading ahead and reading after parsing in the command's own process,
and holds the two outcomes equal: the plan, the exit code, the lines printed, the errors.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler import forked, read_ahead
from reconciler.commands import validate
from reconciler.commands.reconcile import Outcome
from reconciler.commands.validate import HELPED_FILES
from reconciler.orchestrator_versions import VersionChoice
from reconciler.plan import Change, schedule_id_for
from tests.conftest import init_compatible
from tests.test_reconcile import add_foreign_rows, delete_job, reconcile, schedule, write_schedules

pytestmark = pytest.mark.postgres


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, read_ahead.ReadResult | None]]]:
    """Every read ahead a command starts: (child pid, what `result()` gave, or None until asked)."""
    found: list[tuple[int, read_ahead.ReadResult | None]] = []
    started_at: dict[int, int] = {}  # id(handle) → its place in `found` (its pid is gone once reaped)
    start, result = read_ahead.start, read_ahead.ReadAhead.result

    def started(*args: Any, **kw: Any) -> read_ahead.ReadAhead | None:
        ahead = start(*args, **kw)
        if ahead is not None:
            assert ahead.pid is not None
            started_at[id(ahead)] = len(found)
            found.append((ahead.pid, None))
        return ahead

    def answered(self: read_ahead.ReadAhead) -> read_ahead.ReadResult | None:
        got = result(self)
        at = started_at[id(self)]
        found[at] = (found[at][0], got)
        return got

    monkeypatch.setattr(read_ahead, "start", started)
    monkeypatch.setattr(read_ahead.ReadAhead, "result", answered)
    yield found


def _facts(change: Change) -> tuple[object, ...]:
    # Not the next runs: the two runs are a moment apart.
    return (change.key, change.action, change.fields, change.drift, change.warnings, change.ledger, change.ledger_entry)


def assert_same(ahead: Outcome, after: Outcome) -> None:
    assert (ahead.exit_code, ahead.err) == (after.exit_code, after.err)
    if after.plan is None:
        assert ahead.plan is None and ahead.out == after.out
        return
    assert ahead.plan is not None
    assert [_facts(c) for c in ahead.plan.changes] == [_facts(c) for c in after.plan.changes]
    plain = {"computed_at": "", "changes": ()}
    assert replace(ahead.plan, **plain) == replace(after.plan, **plain)  # fingerprint, unmanaged, errors, warnings


def both(directory: Path, db: str, **kw: Any) -> tuple[Outcome, Outcome]:
    """The dry run reading ahead, then reading after parsing."""
    return (
        reconcile(directory, db, dry_run=True, detailed_exitcode=True, **kw),
        reconcile(directory, db, dry_run=True, detailed_exitcode=True, read_ahead=False, **kw),
    )


def test_a_plan_read_ahead_is_the_plan_read_after_parsing(
    pg_url: str, tmp_path: Path, children: list[tuple[int, read_ahead.ReadResult | None]]
) -> None:
    init_compatible(pg_url).dispose()
    d = tmp_path / "s"
    write_schedules(d, *(schedule(k, trigger="cron", trigger_kwargs={"hour": 3}) for k in "abcd"))
    assert reconcile(d, pg_url).exit_code == 0
    add_foreign_rows(pg_url)
    delete_job(pg_url, "a")  # drift: recreated
    # b's spec changes (its row is then read whole), c goes, d stays, e is new.
    write_schedules(
        d,
        schedule("a", trigger="cron", trigger_kwargs={"hour": 3}),
        schedule("b", trigger="cron", trigger_kwargs={"hour": 4}),
        schedule("d", trigger="cron", trigger_kwargs={"hour": 3}),
        schedule("e", trigger="cron", trigger_kwargs={"hour": 5}),
    )
    ahead, after = both(d, pg_url)
    assert ahead.exit_code == 2 and ahead.plan is not None
    assert {c.key: c.action.value for c in ahead.plan.pending} == {
        "a": "update",
        "b": "update",
        "c": "delete",
        "e": "create",
    }
    assert_same(ahead, after)
    (pid, result), *rest = children
    assert not rest and result is not None and result.snapshot is not None  # the plan came from the child's read
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # and the child was reaped

    assert reconcile(d, pg_url).exit_code == 0
    ahead, after = both(d, pg_url)
    assert ahead.exit_code == 0 and ahead.plan is not None and not ahead.plan.has_changes
    assert_same(ahead, after)


def test_the_read_aheads_errors_are_the_commands_own(tmp_path: Path, pg_url: str) -> None:
    d = tmp_path / "s"
    write_schedules(d, schedule("a", user_inputs=[{"x": 1}]))
    missing = pg_url.rsplit("/", 1)[0] + "/rt_no_such_database"
    ahead, after = both(d, missing)
    assert (
        ahead.exit_code == 1 and ahead.err[0].startswith("error: database: ") and "rt_no_such_database" in ahead.err[0]
    )
    assert_same(ahead, after)

    # No schedule tables: the same refusal, raised where the read would raise it.
    with pytest.raises(Exception) as read_after:
        reconcile(d, pg_url, dry_run=True, read_ahead=False)
    with pytest.raises(type(read_after.value)) as read_first:
        reconcile(d, pg_url, dry_run=True)
    assert str(read_first.value) == str(read_after.value)

    # Detected or declared, the generation settles the same way: 4.x cannot pass user_inputs on.
    init_compatible(pg_url).dispose()
    ahead, after = both(d, pg_url, orchestrator=VersionChoice(version="4.7"))
    assert ahead.exit_code == 1 and "user_inputs" in " ".join(ahead.err)
    assert_same(ahead, after)


def test_a_read_ahead_that_fails_leaves_the_read_to_the_command(
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    children: list[tuple[int, read_ahead.ReadResult | None]],
) -> None:
    init_compatible(pg_url).dispose()
    d = tmp_path / "s"
    write_schedules(d, schedule("a"), schedule("b"))
    assert reconcile(d, pg_url).exit_code == 0
    write_schedules(d, schedule("a"), schedule("b", trigger_kwargs={"hours": 2}))

    def broken(*args: object) -> read_ahead.ReadResult:
        raise RuntimeError("not a database error")

    monkeypatch.setattr(read_ahead, "read", broken)  # the child inherits it, fails, and says nothing
    ahead, after = both(d, pg_url)
    assert [r for _, r in children] == [None]
    assert ahead.exit_code == 2
    assert_same(ahead, after)


def test_files_that_fail_validation_end_the_read_ahead(
    pg_url: str, tmp_path: Path, children: list[tuple[int, read_ahead.ReadResult | None]]
) -> None:
    init_compatible(pg_url).dispose()
    d = tmp_path / "s"
    d.mkdir()
    (d / "broken.yaml").write_text("schedules: [\n")
    outcome = reconcile(d, pg_url, dry_run=True)
    assert outcome.exit_code == 1 and "validation failed" in outcome.err[-1]
    ((pid, result),) = children
    assert result is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped: no process left behind


def test_the_snapshot_crosses_the_pipe_as_it_was_read(pg_url: str, tmp_path: Path) -> None:
    """What the parent unpickles equals what the child read (its strings shared, nothing else changed)."""
    init_compatible(pg_url).dispose()
    d = tmp_path / "s"
    write_schedules(d, *(schedule(k) for k in "abc"))
    assert reconcile(d, pg_url).exit_code == 0
    here = read_ahead.read(pg_url, None, 30.0)
    ahead = read_ahead.start(pg_url, None, 30.0)
    assert ahead is not None
    there = ahead.result()
    assert there == here and there.snapshot is not None
    assert {e.key for e in there.snapshot.ledger} == {"a", "b", "c"}
    assert there.snapshot.links[schedule_id_for("default", "a")] == here.snapshot.links[schedule_id_for("default", "a")]
    rows = {row[0]: row for row in there.snapshot.row_hashes}
    links = {job: job for job in there.snapshot.links}
    for entry in there.snapshot.ledger:  # one string each, in the entry, the row and the links
        assert rows[entry.schedule_id][0] is entry.schedule_id is links[entry.schedule_id]
        assert rows[entry.schedule_id][3] is entry.row_hash is not None


def test_reading_ahead_can_be_turned_off(
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    children: list[tuple[int, read_ahead.ReadResult | None]],
) -> None:
    init_compatible(pg_url).dispose()
    d = tmp_path / "s"
    write_schedules(d, schedule("a"))
    monkeypatch.setenv(read_ahead.ENV, "0")
    assert reconcile(d, pg_url, dry_run=True, detailed_exitcode=True).exit_code == 2
    assert children == []
    monkeypatch.setenv(read_ahead.ENV, "1")
    assert reconcile(d, pg_url, dry_run=True, detailed_exitcode=True).exit_code == 2
    assert len(children) == 1


def test_the_child_hands_back_what_it_did_after_reading(pg_url: str, tmp_path: Path) -> None:
    """Once it has read, the child checks `files` from the end; the read and each item arrive on the stream
    as it makes them (`take` never waits). A child that fails after its read leaves the read good, and the
    items it did not send to the front."""
    init_compatible(pg_url).dispose()
    here = read_ahead.read(pg_url, None, 30.0)
    parent = os.getpid()

    def where(i: int) -> tuple[int, bool]:
        return i, os.getpid() != parent

    ahead = read_ahead.start(pg_url, None, 30.0, files=forked.BothEnds(20, where))
    assert ahead is not None
    try:
        assert ahead.helped() == {i: (i, True) for i in range(20)}  # computed in another process
        assert ahead.result() == here
    finally:
        ahead.close()

    def breaks_at_ten(i: int) -> int:
        if i == 10:
            raise RuntimeError("not here")
        return i

    failed = read_ahead.start(pg_url, None, 30.0, files=forked.BothEnds(20, breaks_at_ten))
    assert failed is not None
    try:
        assert failed.result() == here  # sent before the failure: whole, and good
        assert failed.helped() == {i: i for i in range(11, 20)}  # the ones made before it; the front does the rest
    finally:
        failed.close()


def test_a_value_that_does_not_unpickle_ends_the_stream_not_what_came_before() -> None:
    stream = forked.Stream()
    try:
        child = forked.Forked.start(lambda: [stream.send(v) for v in (1, Unloadable(), 3)] and True, bool)
        assert child is not None
        assert child.result() is True
        assert stream.arrived() == [1] and stream.broken
        assert stream.arrived() == []
    finally:
        stream.close()


class Unloadable:
    """Pickles, and fails to unpickle (as a value from a child of another build could)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_refuse, ())


def _refuse() -> None:
    raise ValueError("cannot be made here")


def test_files_the_child_checks_after_reading_plan_as_the_commands_own(
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    children: list[tuple[int, read_ahead.ReadResult | None]],
) -> None:
    """From HELPED_FILES files on, the read-ahead child checks files from the end once it has read: the plan,
    warnings and errors are those of the dry run that reads and parses in one process."""
    init_compatible(pg_url).dispose()
    # The parent checks its first file only once the child has checked one: the child then checks every
    # file but the first (however fast this machine parses), and the parent waits for them.
    parent, marker, check = os.getpid(), tmp_path / "child-checked", validate.check_file

    def handed_over(path: Path, *args: Any) -> validate.CheckedFile:
        if os.getpid() != parent:
            marker.touch()
        elif not marker.exists():
            for _ in range(3000):
                if marker.exists():
                    break
                time.sleep(0.01)
        return check(path, *args)

    d = tmp_path / "s"
    count = HELPED_FILES + 16
    for f in range(count):
        write_schedules(
            d, schedule(f"k{f:03d}", trigger="cron", trigger_kwargs={"hour": f % 24}), name=f"f{f:03d}.yaml"
        )
    assert reconcile(d, pg_url).exit_code == 0
    monkeypatch.setattr(validate, "check_file", handed_over)
    # One change from the end (the child's end), a warning (a DST gap) and a new schedule from the front.
    write_schedules(
        d,
        schedule(f"k{count - 1:03d}", trigger="cron", trigger_kwargs={"hour": 7, "minute": 5}),
        name=f"f{count - 1:03d}.yaml",
    )
    write_schedules(
        d,
        schedule("dst", trigger="cron", trigger_kwargs={"hour": 2, "minute": 30}, timezone="Europe/Amsterdam"),
        name="f000.yaml",
    )
    ahead, after = both(d, pg_url)
    assert ahead.exit_code == 2 and ahead.plan is not None
    assert {c.key: c.action.value for c in ahead.plan.pending} == {
        f"k{count - 1:03d}": "update",
        "dst": "create",
        "k000": "delete",
    }
    assert any("does not exist" in line for line in ahead.err)
    assert_same(ahead, after)
    (_, result), *rest = children
    assert not rest and result is not None and result.snapshot is not None
    assert marker.exists()  # the child checked files (all but the first)

    # A file broken anywhere is reported as the one-process run reports it, and nothing is planned.
    (d / f"f{count - 2:03d}.yaml").write_text("schedules: [\n")
    ahead, after = both(d, pg_url, max_deletes=5)
    assert ahead.exit_code == 1 and "validation failed" in ahead.err[-1]
    assert_same(ahead, after)
