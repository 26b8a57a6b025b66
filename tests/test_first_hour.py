"""A new user's first hour (issue 14): what a person sees on a terminal, driven through a real pty."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def cli(*args: str, cwd: Path | None = None, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    command = [python, "-m", "reconciler", *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=120, cwd=cwd)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def test_unopenable_sqlite_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    directory = tmp_path / "schedules.d"
    write(directory, "a")
    where = tmp_path / "no" / "such" / "dir" / "x.db"
    line = one_error_line(cli("reconcile", str(directory), "--db", f"sqlite:///{where}"))
    assert str(where) in line
    assert "does not exist or is not writable" in line
    assert "--db" in line


def test_unreachable_server_names_the_url_without_its_password(tmp_path: Path) -> None:
    directory = tmp_path / "schedules.d"
    write(directory, "a")
    url = "postgresql://someone:hunter2@127.0.0.1:1/nowhere"
    for args in (["reconcile", "--dry-run", str(directory)], ["show-schedule", str(directory)]):
        line = one_error_line(cli(*args, "--db", url))
        assert "cannot connect to postgresql://someone:***@127.0.0.1:1/nowhere" in line
        assert "hunter2" not in line


@pytest.mark.postgres
def test_every_command_says_the_same_line_when_orchestrator_tables_are_missing(pg_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "schedules.d"
    write(directory, "a")
    commands = [
        ["reconcile", "--dry-run", str(directory)],
        ["reconcile", str(directory)],
        ["validate", str(directory)],
        ["show-schedule", str(directory)],
        ["status", str(directory)],
        ["health", str(directory)],
        ["import", "--out", str(directory)],
        ["force", "a"],
    ]
    lines = {one_error_line(cli(*args, "--db", pg_url)) for args in commands}
    assert lines == {f"error: {store.missing_tables_message(store.redact_url(pg_url))}"}
    engine = store.connect(pg_url)
    try:
        with engine.connect() as conn:
            assert store.table_names(conn) == set()  # nothing was created on the way
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_a_plain_install_talks_to_postgresql(pg_url: str, tmp_path: Path) -> None:
    # `pip install .` alone, in a fresh venv: the PostgreSQL driver comes with it.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    repo = Path(__file__).resolve().parent.parent
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", str(repo)], capture_output=True, text=True, timeout=900
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    directory = tmp_path / "schedules.d"
    write(directory, "a")
    line = one_error_line(cli("reconcile", "--dry-run", str(directory), "--db", pg_url, python=python, cwd=tmp_path))
    assert "psycopg" not in line
    assert line == f"error: {store.missing_tables_message(store.redact_url(pg_url))}"
