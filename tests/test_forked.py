"""Helper children (reconciler/forked.py): a head start on the machine's other core, never another answer.

Each test computes the same thing with a helper child and without one, and holds the two equal; and checks
the child really took part, so a helper that silently never runs cannot pass for one that works.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import apply as applier
from reconciler import forked, store
from reconciler.apply_settings import ApplySettings
from reconciler.commands import validate
from reconciler.database_url import redact_url
from reconciler.plan import PlanSettings
from reconciler.render import render_text
from reconciler.spec import DesiredSchedule
from tests.conftest import init_compatible
from tests.test_reconcile import schedule, write_schedules

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _slow_square(i: int) -> tuple[int, int]:
    time.sleep(0.0005 * (i % 3))  # uneven items: the two ends meet somewhere else each run
    return i, os.getpid()


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("count", [0, 1, 2, 3, 17, 200])
def test_both_ends_make_the_list_a_plain_loop_makes(count: int, streamed: bool) -> None:
    shared = forked.BothEnds(count, _slow_square)
    if streamed:  # as the commands share files: forked.Helpers, items taken as they arrive
        helpers = forked.Helpers(0)
        try:
            got = shared.front(helpers.back_of(shared))
        finally:
            helpers.close()
    else:
        helper = forked.Forked.start(shared.back, dict)
        assert helper is not None
        try:
            got = shared.front(helper.result)
        finally:
            helper.close()
    assert [i for i, _ in got] == list(range(count))
    if count == 200:  # the child computed some of them (its pid is not ours): ~0.1 s is time enough to start
        assert {pid for _, pid in got} - {os.getpid()}


def test_the_front_calls_meanwhile_between_its_items_and_takes_a_streamed_part() -> None:
    shared = forked.BothEnds(200, _slow_square)
    stream = forked.Stream()
    taken: dict[int, Any] = {}
    calls: list[int] = []

    def meanwhile() -> None:
        calls.append(len(calls))
        taken.update(stream.arrived())

    shared.meanwhile = meanwhile
    helper = forked.Forked.start(lambda: shared.back_into(stream) or True, bool)
    assert helper is not None

    def theirs() -> dict[int, Any]:
        helper.result()
        taken.update(stream.arrived())
        return taken

    try:
        got = shared.front(theirs)
    finally:
        helper.close()
        stream.close()
    assert [i for i, _ in got] == list(range(200))
    assert calls and len(calls) < 200  # once after each item the front computed, until the two met
    assert {pid for _, pid in got} - {os.getpid()}  # the child's items came over the stream


@settings(max_examples=25, deadline=None)
@given(count=st.integers(0, 40), left=st.sets(st.integers(0, 39)))
def test_items_the_child_leaves_or_cannot_do_are_done_here(count: int, left: set[int]) -> None:
    parent = os.getpid()

    def compute(i: int) -> int:
        if os.getpid() != parent and i in left:
            raise forked.NotHere
        return i * i

    assert forked.BothEnds(count, compute).front(None) == [i * i for i in range(count)]  # no child at all
    shared = forked.BothEnds(count, compute)
    helper = forked.Forked.start(shared.back, dict)
    assert helper is not None
    try:
        assert shared.front(helper.result) == [i * i for i in range(count)]
    finally:
        helper.close()


def test_a_child_that_fails_gives_none_and_the_parent_computes_everything() -> None:
    parent = os.getpid()

    def compute(i: int) -> int:
        if os.getpid() != parent:
            raise RuntimeError("the child breaks")
        time.sleep(0.001)
        return i

    shared = forked.BothEnds(50, compute)
    helper = forked.Forked.start(shared.back, dict)
    assert helper is not None
    try:
        assert shared.front(helper.result) == list(range(50))
    finally:
        helper.close()
    dead = forked.Forked.start(lambda: time.sleep(30), type(None))
    assert dead is not None
    dead.close()  # killed and reaped: no value, no process left behind
    assert dead.result() is None and dead.pid is None


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for a parent that does not reap it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_until_gone(pid: int, bound: float = 10.0) -> bool:
    """Poll until `pid` no longer runs, at most `bound` seconds (the kernel's kill is asynchronous)."""
    until = time.monotonic() + bound
    while alive(pid):
        if time.monotonic() > until:
            return False
        time.sleep(0.02)
    return True


PARENT_OF_A_SLEEPER = """
import sys, time
from reconciler import forked
child = forked.Forked.start(lambda: time.sleep(600), type(None))
print(child.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's (prctl)")
def test_a_child_ends_with_its_parent_however_the_parent_ends() -> None:
    """A command killed outright (by CI, or by its own --timeout while its child is blocked) takes its helper
    child with it: no process keeps working, or holding a connection, for a parent that is gone."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT_OF_A_SLEEPER], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
    finally:
        parent.kill()
        parent.wait()
    assert wait_until_gone(child)


def test_helpers_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(forked.ENV, "0")
    assert forked.Forked.start(lambda: 1, int) is None
    assert forked.Helpers(0).back_of(forked.BothEnds(10, lambda i: i)) is None


def _tree(root: Path, files: int) -> None:
    """Many files with every kind of finding: errors, warnings, a key used twice across files, a self-move,
    a past run_date (asked of `completed`, which only the parent may answer)."""
    past = (NOW - timedelta(days=1)).isoformat()
    for f in range(files):
        specs = [schedule(f"k{f:03d}-{i}", trigger_kwargs={"minutes": i + 1}) for i in range(3)]
        if f % 7 == 0:
            specs.append(schedule("twice"))
        if f % 11 == 0:
            specs.append(schedule(f"bad{f}", trigger="cron", trigger_kwargs={"hour": 25}))
        if f % 13 == 0:
            specs.append(schedule(f"self{f}", moved_from=f"self{f}"))
        if f % 5 == 0:
            specs.append(schedule(f"fired{f}", trigger="date", trigger_kwargs={"run_date": past}))
        write_schedules(root / f"team{f % 4}", *specs, name=f"s{f:03d}.yaml")
    (root / "team0" / "broken.yaml").write_text("schedules: [\n")


def test_checking_files_from_both_ends_finds_what_one_process_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path / "d", 150)  # ~0.1 s of checking: time enough for the child to start and take some
    checkers = tmp_path / "checkers"  # who checked each file (the child's list comes back only as results)
    check_file = validate.check_file

    def recorded(path: Path, *args: Any) -> validate.CheckedFile:
        with checkers.open("a") as out:
            out.write(f"{os.getpid()}\n")
        return check_file(path, *args)

    monkeypatch.setattr(validate, "check_file", recorded)
    completed = {f"fired{f}" for f in range(0, 150, 10)}  # half the fired dates are complete
    alone = validate.load_desired(tmp_path / "d", now=NOW, completed=completed)
    checkers.unlink()
    helpers = forked.Helpers(0)
    started: list[Any] = []

    def helper(shared: forked.BothEnds[validate.CheckedFile]) -> Any:
        wait = helpers.back_of(shared)
        started.append(wait)
        return wait

    try:
        helped = validate.load_desired(tmp_path / "d", now=NOW, completed=completed, helper=helper)
    finally:
        helpers.close()
    assert started and started[0] is not None
    assert set(checkers.read_text().split()) - {str(os.getpid())}  # the child checked some of the files
    assert helped.schedules == alone.schedules and helped.schedules
    assert helped.problems == alone.problems and any(p.is_error for p in alone.problems)
    assert helped.files == alone.files


def test_each_schedule_is_prepared_where_its_file_is_checked_and_crosses_prepared(tmp_path: Path) -> None:
    _tree(tmp_path / "d", 150)
    preparers = tmp_path / "preparers"

    def prepare(desired: DesiredSchedule) -> str:
        with preparers.open("a") as out:
            out.write(f"{os.getpid()}\n")
        return desired.row_parts_repr

    helpers = forked.Helpers(0)
    try:
        helped = validate.load_desired(tmp_path / "d", now=NOW, helper=helpers.back_of, prepare=prepare)
    finally:
        helpers.close()
    who = preparers.read_text().split()
    assert str(os.getpid()) in who and set(who) - {str(os.getpid())}  # both processes prepared some
    assert len(who) >= len(helped.schedules)  # (a file both claimed is prepared twice, kept once)
    for desired in helped.schedules:  # made before it crossed: the cached string came along, and is right
        assert desired.__dict__["row_parts_repr"] == replace(desired).row_parts_repr


@pytest.mark.parametrize("render", [True, False])
def test_rows_built_beside_a_helper_are_the_rows_built_alone(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, render: bool
) -> None:
    init_compatible(db_url).dispose()
    specs = [schedule(f"s{i:03d}", trigger_kwargs={"minutes": i % 50 + 1}) for i in range(120)]
    specs += [schedule(f"c{i:03d}", trigger="cron", trigger_kwargs={"minute": i % 60}) for i in range(60)]
    write_schedules(tmp_path / "d", *specs)
    desired = validate.load_desired(tmp_path / "d", now=NOW).schedules
    engine = store.connect(db_url)
    applier.prepare(engine)
    settings_ = PlanSettings()
    with engine.connect() as conn:
        live, plan = applier.read_and_plan(conn, desired, settings_, NOW)
    engine.dispose()
    shown = (lambda p: render_text(p)) if render else None
    alone = applier._collect(plan, live, settings_, ApplySettings(), NOW)
    monkeypatch.setattr(applier, "HELPER_ROWS", 10)
    helped, rendered = applier._collect_helped(plan, live, settings_, ApplySettings(), NOW, shown)
    assert helped == alone and len(alone.inserts) == 180
    assert rendered == (render_text(plan) if render else None)
    monkeypatch.setenv(forked.ENV, "0")
    assert applier._collect_helped(plan, live, settings_, ApplySettings(), NOW, shown) == (alone, None)


def test_a_large_apply_shares_its_files_and_rows_and_verifies(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.commands import reconcile as command
    from tests.test_reconcile import jobs, reconcile

    init_compatible(db_url).dispose()
    for f in range(12):
        write_schedules(tmp_path / "d", *[schedule(f"f{f}-{i}") for i in range(5)], name=f"f{f:02d}.yaml")
    monkeypatch.setattr(command, "HELPED_FILES", 4)
    monkeypatch.setattr(applier, "HELPER_ROWS", 10)
    forks: list[int] = []
    start = forked.Forked.start.__func__  # type: ignore[attr-defined]

    def counted(cls: type[forked.Forked[Any]], *args: Any) -> Any:
        child = start(cls, *args)
        forks.append(child.pid)
        return child

    monkeypatch.setattr(forked.Forked, "start", classmethod(counted))
    done = reconcile(tmp_path / "d", db_url, guard_seconds=0)
    assert done.exit_code == 0, done.err
    assert len(forks) == 2  # one child for the files, one for the rows and the rendering
    assert len(jobs(db_url)) == 60 and "Verified: the database now matches the files." in done.out
    assert done.plan is not None
    shown = command.render_plan(done.plan, "text", color=False, verbose=False, target=redact_url(db_url))
    assert done.out[0] == shown  # the child's rendering, as this process renders it


END = """
import atexit, os, sys, threading, time
from reconciler.heap import end_process

class TornDown:  # says so when the interpreter tears the heap down (the ordinary exit, not end_process's)
    def __del__(self):
        os.write(1, b" torn down")

kept = TornDown()
atexit.register(lambda: print("atexit ran", flush=True))
print("output", end=" ")
if sys.argv[1] == "thread":  # the ordinary exit waits for it
    threading.Thread(target=lambda: (time.sleep(0.2), print("thread done", end=" ", flush=True))).start()
if sys.argv[1] == "daemon":  # as --timeout's watchdog, still waking when the command ends
    threading.Thread(target=threading.Event().wait, daemon=True).start()
end_process(SystemExit(sys.argv[2] if sys.argv[2] == "message" else int(sys.argv[2])))
"""


@pytest.mark.parametrize(
    ("thread", "code", "rc", "stdout"),
    [
        ("none", "0", 0, "output atexit ran\n"),
        ("none", "3", 3, "output atexit ran\n"),
        ("daemon", "0", 0, "output atexit ran\n"),
        ("thread", "4", 4, "output thread done atexit ran\n torn down"),
        ("none", "message", 1, "output atexit ran\n"),
    ],
)
def test_ending_the_process_keeps_its_output_atexit_and_exit_code(thread: str, code: str, rc: int, stdout: str) -> None:
    done = subprocess.run([sys.executable, "-c", END, thread, code], capture_output=True, text=True, timeout=60)
    assert done.returncode == rc
    assert done.stdout == stdout  # "torn down" only where a running thread made the exit the ordinary one
    assert done.stderr == ("message\n" if code == "message" else "")
