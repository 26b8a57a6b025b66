"""Every error reaching a user through the Typer app, ours or mounted in someone's `main.py`: one line, one code."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from reconciler import exit_codes
from reconciler.exit_codes import CommandError, ExitCode, for_exception
from tests.command_line import Schedules

# An orchestrator-core style main.py: its own Typer app (pretty exceptions on, as Typer's default),
# ours mounted under it. Run in a subprocess, as a user would run `python main.py schedules …`.
MOUNTED_MAIN = """
import sys
import typer
from reconciler.cli import app as schedules_app

core_app = typer.Typer()
core_app.add_typer(schedules_app, name="schedules")

@core_app.command()
def other() -> None:
    pass

core_app(sys.argv[1:])
"""

SCHEDULE = "schedules:\n  - {key: a, workflow_name: task_clean_up_tasks, trigger: cron, trigger_kwargs: {hour: 1}}\n"


def run_mounted(run: Schedules, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    main = tmp_path / "main.py"
    main.write_text(MOUNTED_MAIN)
    environment = {k: v for k, v in os.environ.items() if k != exit_codes.DEBUG_VARIABLE}
    return run("schedules", *args, script=main, cwd=tmp_path, env={**environment, **env})


@pytest.fixture
def schedules(tmp_path: Path) -> Path:
    directory = tmp_path / "schedules.d"
    directory.mkdir()
    (directory / "a.yaml").write_text(SCHEDULE)
    return directory


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for part in expected:
        assert part in lines[0], lines[0]


def test_mounted_unknown_database_kind_is_one_line(tmp_path: Path, schedules: Path, command_line: Schedules) -> None:
    result = run_mounted(command_line, tmp_path, "reconcile", "--dry-run", str(schedules), "--db", "nosuch://x")
    assert_one_line_error(result, "nosuch", "postgresql://")


def test_mounted_unwritable_plan_out_is_one_line(tmp_path: Path, schedules: Path, command_line: Schedules) -> None:
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = run_mounted(
        command_line,
        tmp_path,
        "reconcile",
        "--dry-run",
        str(schedules),
        "--db",
        db,
        "--plan-out",
        "/nonexistent/p.json",
    )
    assert_one_line_error(result, "/nonexistent/p.json", "No such file or directory")


def test_mounted_password_never_shown(tmp_path: Path, schedules: Path, command_line: Schedules) -> None:
    url = "postgresql://someone:hunter2@127.0.0.1:1/nowhere"
    result = run_mounted(command_line, tmp_path, "validate", str(schedules), "--db", url)
    assert_one_line_error(result)
    assert "hunter2" not in result.stdout + result.stderr


def test_debug_variable_shows_the_traceback(tmp_path: Path, schedules: Path, command_line: Schedules) -> None:
    result = run_mounted(
        command_line,
        tmp_path,
        "reconcile",
        "--dry-run",
        str(schedules),
        "--db",
        "nosuch://x",
        **{exit_codes.DEBUG_VARIABLE: "1"},
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_usage_errors_keep_the_parsers_code(tmp_path: Path, command_line: Schedules) -> None:
    result = run_mounted(command_line, tmp_path, "reconcile", "--no-such-flag")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


class _Stale(CommandError):
    exit_code = ExitCode.CONFLICT


def test_command_errors_carry_their_own_code() -> None:
    assert for_exception(_Stale("the plan went stale\nsecond line")) == (3, "error: the plan went stale")


def test_unknown_exception_points_at_the_debug_variable() -> None:
    code, line = for_exception(RuntimeError("boom at postgresql://u:secret@h/db"))
    assert code == 1
    assert "secret" not in line
    assert exit_codes.DEBUG_VARIABLE in line


def test_interrupt_and_os_errors() -> None:
    assert for_exception(KeyboardInterrupt()) == (130, "error: interrupted")
    code, line = for_exception(PermissionError(13, "Permission denied", "/srv/x.db"))
    assert (code, line) == (1, "error: /srv/x.db: Permission denied")


def test_missing_driver_names_the_install() -> None:
    code, line = for_exception(ModuleNotFoundError("No module named 'psycopg'", name="psycopg"))
    assert code == 1
    assert "pip install 'psycopg[binary]'" in line


def test_every_command_states_its_exit_codes_in_help() -> None:
    from typer.testing import CliRunner

    from reconciler.cli import app

    runner = CliRunner()
    for command in exit_codes.EXIT_CODES_HELP:
        shown = runner.invoke(app, [command, "--help"], terminal_width=200)
        assert shown.exit_code == 0, command
        assert "Exit codes: 0" in shown.output, command


def test_mounted_under_a_debug_root_logger_on_stdout_json_stays_json(
    tmp_path: Path, schedules: Path, command_line: Schedules
) -> None:
    # The host's logging writes everything to stdout at DEBUG (orchestrator-core's style); alembic,
    # git and our own loggers must still not reach stdout, and the host's handler is left as it was.
    main = tmp_path / "main.py"
    main.write_text(
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stdout, level=logging.DEBUG, format='[debug] %(name)s %(message)s')\n"
        + MOUNTED_MAIN
    )
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "schedules.d"], check=True)
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "-C", str(tmp_path), *ident, "commit", "-qm", "s"], check=True)
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    for args in (["reconcile"], ["reconcile", "--dry-run"], ["status"], ["show-schedule"]):
        done = command_line(
            "schedules", *args, str(schedules), "--db", db, "--format", "json", script=main, cwd=tmp_path
        )
        assert done.returncode == 0, done.stdout + done.stderr
        json.loads(done.stdout)  # nothing but the requested output
        assert "[debug]" not in done.stdout
    # The first apply migrated the ledger: alembic spoke, on stderr, and only at WARNING and up.
    assert "alembic" not in done.stderr
