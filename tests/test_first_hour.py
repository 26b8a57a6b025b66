"""A new user's first hour (issue 14): what a person sees on a terminal, driven through a real pty."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from reconciler import store

SCHEDULE = "  - {{key: {key}, workflow_name: task_clean_up_tasks, trigger: cron, trigger_kwargs: {{hour: 1}}}}\n"


def write(directory: Path, *keys: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "s.yaml").write_text("schedules:\n" + "".join(SCHEDULE.format(key=k) for k in keys))


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URI", "NO_COLOR", "FORCE_COLOR")}
    return {**env, "COLUMNS": "80", "LINES": "24", "TERM": "xterm", **extra}


def on_terminal(args: list[str], answer: str | None, *, cwd: Path, timeout: float = 60) -> tuple[int, str]:
    """Run `schedules ARGS` with stdin/stdout/stderr on a pty; type `answer` when asked. (exit code, screen)."""
    leader, follower = pty.openpty()
    os.set_blocking(leader, False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=cwd,
        env=environment(),
        close_fds=True,
    )
    os.close(follower)
    screen = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk and proc.poll() is not None:
                    break
                screen += chunk
            elif proc.poll() is not None:
                break
            if answer is not None and not answered and b"Enter a value:" in screen:
                os.write(leader, answer.encode() + b"\r")
                answered = True
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return code, screen.decode(errors="replace").replace("\r\n", "\n")


def job_count(db_file: Path) -> int:
    engine = store.connect(f"sqlite:///{db_file}", read_only=True)
    try:
        with engine.connect() as conn, conn.begin():
            return len(store.read_live_state(conn).jobs)
    finally:
        engine.dispose()


def test_apply_that_deletes_asks_first_and_only_yes_proceeds(tmp_path: Path) -> None:
    directory = tmp_path / "schedules.d"
    db_file = tmp_path / "schedules.db"
    write(directory, "keep", "drop")
    base = ["reconcile", str(directory), "--db", f"sqlite:///{db_file}"]
    # Creates only: applied without a question, even on a terminal.
    code, screen = on_terminal(base, None, cwd=tmp_path)
    assert code == 0, screen
    assert "Enter a value:" not in screen
    before = job_count(db_file)
    write(directory, "keep")

    code, screen = on_terminal(base, "no", cwd=tmp_path)
    assert code == 1, screen
    assert "1 to delete" in screen.split("Enter a value:")[0]
    assert "deletes or overwrites 1 schedule(s): drop" in screen
    assert "Apply cancelled: nothing was applied." in screen
    assert job_count(db_file) == before

    code, screen = on_terminal(base, "yes", cwd=tmp_path)
    assert code == 0, screen
    assert "Applied 1 change(s) in one transaction." in screen
    assert screen.count("Planning namespace") == 1  # the plan is shown once, above the question
    assert job_count(db_file) == before - 1


def test_auto_approve_and_no_terminal_do_not_ask(tmp_path: Path) -> None:
    directory = tmp_path / "schedules.d"
    db_file = tmp_path / "schedules.db"
    write(directory, "a", "b", "c")
    base = ["reconcile", str(directory), "--db", f"sqlite:///{db_file}"]
    assert on_terminal(base, None, cwd=tmp_path)[0] == 0
    write(directory, "a", "b")
    code, screen = on_terminal([*base, "--auto-approve"], None, cwd=tmp_path)
    assert code == 0, screen
    assert "Enter a value:" not in screen
    assert job_count(db_file) == 2
    write(directory, "a")
    piped = subprocess.run(
        [sys.executable, "-m", "reconciler", *base],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=environment(),
        timeout=60,
    )
    assert piped.returncode == 0, piped.stderr
    assert "Enter a value:" not in piped.stdout
    assert job_count(db_file) == 1
