"""Ctrl-C and SIGTERM during an apply (issue 12, item 5): one honest line, checked against the database.

A real `schedules reconcile` process is stopped at a named point (RECONCILER_PAUSE_AT, see
reconciler/interrupts.py), signalled there, and its line and exit code are compared with what the database
then holds: before the commit nothing is applied; after it, every change is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from reconciler import interrupts, store
from reconciler.apply import ApplySettings
from reconciler.commands.reconcile import ReconcileOptions, run
from reconciler.jobstate import load_job_state
from tests.interval_dirs import write_dir

REPO = Path(__file__).resolve().parent.parent


def names_in(url: str) -> dict[str, str]:
    engine = store.connect(url)
    with engine.connect() as conn:
        found = {r.id: load_job_state(bytes(r.job_state))["name"] for r in conn.execute(select(store.apscheduler_jobs))}
    engine.dispose()
    return dict(sorted(found.items(), key=lambda item: item[1]))


SLOW = pytest.mark.slow
V1 = {"a": "A", "b": "B", "c": "C"}
V2 = {"a": "A2", "b": "B2", "c": "C2", "d": "D"}  # 4 changes: three updates, one create


# Each case is a whole process sent a real signal; the inner loop keeps one (Ctrl-C before the commit).
@pytest.mark.parametrize(
    ("point", "signum", "code", "line", "applied"),
    [
        pytest.param(
            "planned", signal.SIGINT, 130, "interrupted before commit: nothing was applied", False, marks=SLOW
        ),
        ("written", signal.SIGINT, 130, "interrupted before commit: nothing was applied", False),
        pytest.param(
            "written", signal.SIGTERM, 143, "interrupted before commit: nothing was applied", False, marks=SLOW
        ),
        pytest.param(
            "committed",
            signal.SIGINT,
            130,
            "interrupted after commit: 4 changes applied; verification skipped",
            True,
            marks=SLOW,
        ),
        pytest.param(
            "committed",
            signal.SIGTERM,
            143,
            "interrupted after commit: 4 changes applied; verification skipped",
            True,
            marks=SLOW,
        ),
    ],
)
def test_an_interrupted_apply_says_what_the_database_holds(
    db_url: str, tmp_path: Path, point: str, signum: int, code: int, line: str, applied: bool
) -> None:
    first = run(
        ReconcileOptions(directory=write_dir(tmp_path / "schedules.d", V1), db_url=db_url, apply=ApplySettings())
    )
    assert first.exit_code == 0, first.err
    before = names_in(db_url)
    assert sorted(before.values()) == ["A", "B", "C"]
    flag = tmp_path / "paused"
    flag.touch()
    errors = tmp_path / "stderr"
    env = {**os.environ, interrupts.PAUSE_AT: point, interrupts.PAUSE_FILE: str(flag)}
    with errors.open("w") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconciler",
                "reconcile",
                str(write_dir(tmp_path / "schedules.d", V2)),
                "--db",
                db_url,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )
    try:
        # A loaded machine (two cores, other test runs) may take long to start Python and plan: wait for the
        # pause itself, never a fixed time; the limits only keep a broken child from hanging the test.
        deadline = time.monotonic() + 120
        while f"paused at {point}" not in errors.read_text():
            exited = proc.poll()
            assert exited is None and time.monotonic() < deadline, (
                f"never paused at {point}: {'exit ' + str(exited) if exited is not None else 'still running'}; "
                f"stderr {errors.read_text()!r}"
            )
            time.sleep(0.05)
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [x for x in errors.read_text().splitlines() if not x.startswith("paused at ")]
    assert (proc.returncode, lines) == (code, [line]), f"stderr {errors.read_text()!r}, stdout {out!r}"
    assert "Traceback" not in out
    after = names_in(db_url)
    if applied:
        assert sorted(after.values()) == ["A2", "B2", "C2", "D"]
    else:
        assert after == before


def test_a_signal_during_the_commit_waits_for_its_answer() -> None:
    with pytest.raises(interrupts.Interrupted) as caught, interrupts.interruptible():
        interrupts.committing()
        os.kill(os.getpid(), signal.SIGINT)  # held: the commit is under way
        time.sleep(0.01)
        assert interrupts.phase() is interrupts.Phase.COMMITTING
        interrupts.committed(3)
    assert str(caught.value) == "interrupted after commit: 3 changes applied; verification skipped"
    assert caught.value.exit_code == 130


def test_a_signal_during_a_commit_that_failed_says_nothing_was_applied() -> None:
    with pytest.raises(interrupts.Terminated) as caught, interrupts.interruptible():
        interrupts.committing()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        interrupts.commit_failed()
    assert str(caught.value) == "interrupted before commit: nothing was applied"
    assert caught.value.exit_code == 143


def test_a_second_signal_during_the_commit_is_not_held() -> None:
    with pytest.raises(interrupts.Interrupted) as caught, interrupts.interruptible():
        interrupts.committing()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
    assert "interrupted during commit" in str(caught.value)


def test_signal_handlers_are_restored_after_an_apply() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with interrupts.interruptible():
        assert signal.getsignal(signal.SIGINT) is not before[0]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert interrupts.phase() is interrupts.Phase.BEFORE_COMMIT
