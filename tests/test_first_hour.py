"""A new user's first hour (issue 14): what a person sees on a terminal, driven through a real pty."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler import store
from reconciler.render import fit
from reconciler.timetext import human_iso, human_time
from tests.command_line import IN_PROCESS, WHOLE_PROCESS, Schedules

SCHEDULE = "  - {{key: {key}, workflow_name: task_clean_up_tasks, trigger: cron, trigger_kwargs: {{hour: 1}}}}\n"


def write(directory: Path, *keys: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "s.yaml").write_text("schedules:\n" + "".join(SCHEDULE.format(key=k) for k in keys))


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URI", "NO_COLOR", "FORCE_COLOR")}
    return {**env, "COLUMNS": "80", "LINES": "24", "TERM": "xterm", **extra}


def on_terminal(
    run: Schedules,
    args: list[str],
    answer: str | None,
    *,
    cwd: Path,
    columns: int = 80,
    extra_env: dict[str, str] | None = None,
) -> tuple[int, str]:
    """`schedules ARGS` on a terminal of `columns` × 24 (a real pty for a whole process); types `answer`
    when asked. Returns (exit code, what the screen received)."""
    env = environment(**(extra_env or {}))
    shown = run.on_terminal(*args, answer=answer, cwd=cwd, env=env, columns=columns)
    return shown.returncode, shown.stdout


def job_count(db_file: Path) -> int:
    engine = store.connect(f"sqlite:///{db_file}", read_only=True)
    try:
        with engine.connect() as conn, conn.begin():
            return len(store.read_live_state(conn).jobs)
    finally:
        engine.dispose()


# The one test of the inner loop on a real terminal (a pty): whole processes, not slow.
@pytest.mark.parametrize("command_line", [IN_PROCESS, WHOLE_PROCESS], ids=["in-process", "process"])
def test_apply_that_deletes_asks_first_and_only_yes_proceeds(tmp_path: Path, command_line: Schedules) -> None:
    directory = tmp_path / "schedules.d"
    db_file = tmp_path / "schedules.db"
    write(directory, "keep", "drop")
    base = ["reconcile", str(directory), "--db", f"sqlite:///{db_file}"]

    # Creates only: applied without a question, even on a terminal.
    code, screen = on_terminal(command_line, base, None, cwd=tmp_path)
    assert code == 0, screen
    assert "Enter a value:" not in screen
    before = job_count(db_file)
    write(directory, "keep")

    code, screen = on_terminal(command_line, base, "no", cwd=tmp_path)
    assert code == 1, screen
    assert "1 to delete" in screen.split("Enter a value:")[0]
    assert "deletes or overwrites 1 schedule(s): drop" in screen
    assert "Apply cancelled: nothing was applied." in screen
    assert job_count(db_file) == before

    code, screen = on_terminal(command_line, base, "yes", cwd=tmp_path)
    assert code == 0, screen
    assert "Applied 1 change(s) in one transaction." in screen
    assert screen.count("Planning namespace") == 1  # the plan is shown once, above the question
    assert job_count(db_file) == before - 1


def test_auto_approve_and_no_terminal_do_not_ask(tmp_path: Path, command_line: Schedules) -> None:
    directory = tmp_path / "schedules.d"
    db_file = tmp_path / "schedules.db"
    write(directory, "a", "b", "c")
    base = ["reconcile", str(directory), "--db", f"sqlite:///{db_file}"]
    assert on_terminal(command_line, base, None, cwd=tmp_path)[0] == 0
    write(directory, "a", "b")
    code, screen = on_terminal(command_line, [*base, "--auto-approve"], None, cwd=tmp_path)
    assert code == 0, screen
    assert "Enter a value:" not in screen
    assert job_count(db_file) == 2
    write(directory, "a")
    piped = command_line(*base, env=environment())  # stdin is not a terminal (empty)
    assert piped.returncode == 0, piped.stderr
    assert "Enter a value:" not in piped.stdout
    assert job_count(db_file) == 1


def cli(run: Schedules, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run(*args, cwd=cwd, env=environment())


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def test_unopenable_sqlite_file_names_the_path_and_the_fix(tmp_path: Path, command_line: Schedules) -> None:
    directory = tmp_path / "schedules.d"
    write(directory, "a")
    where = tmp_path / "no" / "such" / "dir" / "x.db"
    line = one_error_line(cli(command_line, "reconcile", str(directory), "--db", f"sqlite:///{where}"))
    assert str(where) in line
    assert "does not exist or is not writable" in line
    assert "--db" in line


def test_unreachable_server_names_the_url_without_its_password(tmp_path: Path, command_line: Schedules) -> None:
    directory = tmp_path / "schedules.d"
    write(directory, "a")
    url = "postgresql://someone:hunter2@127.0.0.1:1/nowhere"
    for args in (["reconcile", "--dry-run", str(directory)], ["show-schedule", str(directory)]):
        line = one_error_line(cli(command_line, *args, "--db", url))
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
    lines = {one_error_line(cli(WHOLE_PROCESS, *args, "--db", pg_url)) for args in commands}
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
    command = [python, "-m", "reconciler", "reconcile", "--dry-run", str(directory), "--db", pg_url]
    done = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=120, cwd=tmp_path)
    line = one_error_line(done)
    assert "No module named" not in line
    assert line == f"error: {store.missing_tables_message(store.redact_url(pg_url))}"


def test_one_human_time_format() -> None:
    winter = datetime(2026, 12, 2, 1, 30, tzinfo=UTC)
    assert human_time(winter, "Europe/Amsterdam") == "2026-12-02 02:30 CET (01:30 UTC)"
    assert human_time(datetime(2026, 7, 1, 23, 30, tzinfo=UTC), "Europe/Amsterdam") == (
        "2026-07-02 01:30 CEST (2026-07-01 23:30 UTC)"
    )
    assert human_time(datetime(2026, 12, 1, 15, 56, 33, 847737, tzinfo=UTC)) == "2026-12-01 15:56:33 UTC"
    assert human_iso("2026-12-01T09:56:59.363156") == "2026-12-01 09:56:59 UTC"  # naive: UTC, as stored
    assert human_iso("2026-12-02T02:30:00+01:00", "Europe/Amsterdam") == "2026-12-02 02:30 CET (01:30 UTC)"


def test_long_plan_lines_wrap_by_field_never_inside_a_time() -> None:
    times = ", ".join(human_time(datetime(2026, 12, d, 1, 30, tzinfo=UTC), "Europe/Amsterdam") for d in (2, 3, 4))
    wrapped = fit(f"      next runs: {times}")
    assert all(len(line) <= 80 for line in wrapped)
    assert len(wrapped) == 3
    assert all(line.strip().removesuffix(",").endswith("(01:30 UTC)") for line in wrapped)
    assert wrapped[1].startswith(" " * 17 + "2026-12-03")  # continuation under the first value
    assert fit('      name: "a" → "b"') == ['      name: "a" → "b"']


def test_plan_and_show_schedule_at_80_and_200_columns(tmp_path: Path, command_line: Schedules) -> None:
    directory = tmp_path / "schedules.d"
    db = f"sqlite:///{tmp_path / 'schedules.db'}"
    directory.mkdir()
    spec = (
        "  - {key: nightly-validate-subscriptions-in-amsterdam, workflow_name: task_validate_subscriptions,"
        " trigger: cron, trigger_kwargs: {hour: HOUR, minute: 30}, timezone: Europe/Amsterdam}\n"
    )
    (directory / "s.yaml").write_text("schedules:\n" + spec.replace("HOUR", "2"))
    assert on_terminal(command_line, ["reconcile", str(directory), "--db", db], None, cwd=tmp_path)[0] == 0
    (directory / "s.yaml").write_text("schedules:\n" + spec.replace("HOUR", "3"))
    code, screen = on_terminal(command_line, ["reconcile", "--dry-run", str(directory), "--db", db], None, cwd=tmp_path)
    assert code == 0, screen
    # Every line fits, except the database URL alone on its line (a path is never broken).
    visible = re.sub(r"\x1b\[[0-9;]*m", "", screen)  # colour codes take no columns
    lines = [line for line in visible.splitlines() if line.strip() != f"sqlite:///{tmp_path / 'schedules.db'}"]
    assert max(len(line) for line in lines) <= 80, screen
    assert "CET (" in screen and "UTC)" in screen
    assert "+01:00" not in screen and ".0000" not in screen  # no offsets, no microseconds

    code, narrow = on_terminal(command_line, ["show-schedule", str(directory), "--db", db], None, cwd=tmp_path)
    assert code == 0, narrow
    url = f"sqlite:///{tmp_path / 'schedules.db'}"
    shown = [line for line in narrow.splitlines() if line.strip() != url]
    assert max(len(line) for line in shown) <= 80, narrow
    assert any(line.startswith("nightly-validate-subscriptions-in-amsterdam") for line in shown)  # the key whole
    assert any("2026-" in line and " CET (" in line and "UTC)" in line for line in shown)  # a time whole
    assert "workflow" not in narrow and "task_validate_subscriptions" not in narrow  # narrow: key, trigger, next

    code, wide = on_terminal(
        command_line, ["show-schedule", str(directory), "--db", db], None, cwd=tmp_path, columns=200
    )
    assert code == 0, wide
    header = wide.splitlines()[2]
    assert all(column in header for column in ("key", "name", "workflow", "trigger", "next run", "source", "drift"))


def test_version_and_formats_only_where_they_mean_something(tmp_path: Path, command_line: Schedules) -> None:
    from importlib.metadata import version

    shown = cli(command_line, "--version")
    assert (shown.returncode, shown.stdout.strip()) == (0, f"schedules (reconciler) {version('reconciler')}")
    directory = tmp_path / "schedules.d"
    write(directory, "a")
    for args in (
        ["validate", str(directory), "--format", "markdown"],
        ["status", str(directory), "--format", "github"],
        ["show-schedule", str(directory), "--format", "github"],
    ):
        refused = cli(command_line, *args)
        assert refused.returncode == 2, refused.stdout + refused.stderr  # the parser's usage error
        assert "Invalid value for '--format'" in refused.stderr
    assert cli(command_line, "validate", str(directory), "--format", "github").returncode == 0


def test_colour_follows_no_color_force_color_and_term(tmp_path: Path, command_line: Schedules) -> None:
    directory = tmp_path / "schedules.d"
    write(directory, "a")
    args = ["reconcile", "--dry-run", str(directory), "--db", f"sqlite:///{tmp_path / 'x.db'}"]
    escape = "\x1b["

    def piped(**env: str) -> str:
        done = command_line(*args, env=environment(**env))
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert escape not in piped()
    assert escape in piped(FORCE_COLOR="1")  # forced, even into a pipe
    assert escape not in piped(FORCE_COLOR="0")
    assert escape in on_terminal(command_line, args, None, cwd=tmp_path)[1]
    for env in ({"NO_COLOR": "1"}, {"TERM": "dumb"}):
        assert escape not in on_terminal(command_line, args, None, cwd=tmp_path, extra_env=env)[1], env


def _first_log_line(read_fd: int, proc: subprocess.Popen[bytes], timeout: float = 90) -> str:
    """The first complete line the runner writes to `read_fd` (waits for it: start-up is slow on a busy machine)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in seen and time.monotonic() < deadline and proc.poll() is None:
        if select.select([read_fd], [], [], 0.5)[0]:
            try:
                seen += os.read(read_fd, 65536)
            except OSError:
                break
    return seen.decode(errors="replace").replace("\r", "").split("\n")[0]


@pytest.mark.slow
def test_runner_logs_for_people_on_a_terminal_and_json_otherwise(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runner.db'}"
    command = [
        sys.executable,
        "-m",
        "reconciler",
        "run",
        "--db",
        db,
        "--starter",
        "command:true",
        "--poll-interval",
        "0.2",
    ]
    piped = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment())
    try:
        assert piped.stderr is not None
        line = _first_log_line(piped.stderr.fileno(), piped)
    finally:
        piped.terminate()
        piped.communicate(timeout=60)
    assert json.loads(line)["event"], line  # not a terminal: one JSON object per line

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, env=environment())
    os.close(follower)
    try:
        line = _first_log_line(leader, proc)
    finally:
        proc.terminate()
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:  # keep reading: a full pty blocks its writer
            if select.select([leader], [], [], 0.2)[0]:
                try:
                    os.read(leader, 65536)
                except OSError:
                    break
        proc.wait(timeout=10)
        os.close(leader)
    assert line.strip() and not line.lstrip().startswith("{"), line  # a line for a person, not JSON
    assert " UTC" in line


def test_messages_name_tabs_the_key_rule_and_the_nearest_names(tmp_path: Path, command_line: Schedules) -> None:
    d = tmp_path / "schedules.d"
    d.mkdir()
    (d / "a.yaml").write_text(
        "schedules:\n  - key: Bad_Key\n    workflow_name: task_clean_up_tasks\n    trigger: crom\n"
        "    trigger_kwrags: {hour: 1}\n"
    )
    (d / "b.yaml").write_text("schedules:\n\t- key: a\n")
    (d / "c.yaml").write_text(
        "schedules:\n"
        "  - {key: c, workflow_name: task_clean_up_tasks, trigger: cron, trigger_kwargs: {hour: 1},\n"
        "     timezone: Europe/Amsterdm}\n"
        "  - {key: d, workflow_name: task_clean_up_tasks, trigger: cron, trigger_kwargs: {hour: 1},\n"
        "     timezone: localtime}\n"
    )
    shown = cli(command_line, "validate", str(d))
    assert shown.returncode == 1
    out = shown.stdout
    assert "a.yaml:2:10: error: key: 'Bad_Key' is not a valid key: lowercase letters, digits," in out
    assert "starting with a letter or digit" in out and "[a-z0-9]" not in out  # the rule in words
    assert "a.yaml:4:14: error: trigger: unknown trigger 'crom' (did you mean 'cron'?)" in out
    assert "a.yaml:5:5: error: unknown key 'trigger_kwrags' (did you mean 'trigger_kwargs'" in out
    assert "b.yaml:2:1: error: a tab in the indentation: YAML indents with spaces only" in out
    assert "c.yaml:3:16: error: unknown time zone 'Europe/Amsterdm' (did you mean Europe/Amsterdam?)" in out
    # the triggers' own rule: the host's zone is refused by validate too, at the value's line
    assert "c.yaml:5:16: error: unknown time zone 'localtime'" in out


def test_force_suggests_the_nearest_key(tmp_path: Path, command_line: Schedules) -> None:
    directory = tmp_path / "schedules.d"
    write(directory, "validate-products")
    db = f"sqlite:///{tmp_path / 'schedules.db'}"
    assert cli(command_line, "reconcile", str(directory), "--db", db).returncode == 0
    line = one_error_line(cli(command_line, "force", "validate-prodcts", "--db", db, "--starter", "command:true"))
    assert "unknown schedule 'validate-prodcts' (did you mean 'validate-products'?)" in line


def test_moved_from_its_own_key_is_reported_at_moved_from(tmp_path: Path, command_line: Schedules) -> None:
    d = tmp_path / "schedules.d"
    d.mkdir()
    (d / "a.yaml").write_text(
        "schedules:\n  - key: a\n    workflow_name: task_clean_up_tasks\n    trigger: cron\n"
        "    trigger_kwargs: {hour: 1}\n    moved_from: a\n"
    )
    shown = cli(command_line, "validate", str(d))
    assert shown.returncode == 1
    assert "a.yaml:6:17: error: a: moved_from names the schedule's own key" in shown.stdout, shown.stdout


def test_max_deletes_refusal_names_the_value_that_would_pass(tmp_path: Path, command_line: Schedules) -> None:
    directory = tmp_path / "schedules.d"
    db = f"sqlite:///{tmp_path / 'schedules.db'}"
    write(directory, "a", "b", "c")
    assert cli(command_line, "reconcile", str(directory), "--db", db).returncode == 0
    write(directory, "a")
    line = one_error_line(cli(command_line, "reconcile", str(directory), "--db", db, "--max-deletes", "1"))
    assert "pass --max-deletes 2" in line
    assert line.count("refused") == 1, line
    assert job_count(tmp_path / "schedules.db") == 3
