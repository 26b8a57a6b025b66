"""The command line: mountable in orchestrator-core's CLI, fast --help, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.orchestrator_env import LATEST, Orchestrator, orchestrator_venv

MOUNT = """
from orchestrator.core.cli.main import app as core_cli
from reconciler.cli import app as schedules_app
from typer.testing import CliRunner

core_cli.add_typer(schedules_app, name="schedules")
result = CliRunner().invoke(core_cli, ["schedules", "validate", SCHEDULES])
print("EXIT", result.exit_code)
print(result.output)
"""


@pytest.mark.orchestrator
def test_mounts_in_orchestrator_core_cli(tmp_path: Path) -> None:
    # With orchestrator-core's own python (its venv, the reconciler on PYTHONPATH): a project's main.py.
    from tests.conftest import PG_ADMIN

    schedules = Path(__file__).resolve().parent.parent / "schedules.d"
    code = MOUNT.replace("SCHEDULES", repr(str(schedules)))
    out = Orchestrator(orchestrator_venv(LATEST), PG_ADMIN, tmp_path).python_code(code, check=False)
    assert "EXIT 0" in out.stdout, out.output
    assert "5 schedule(s) in 1 file(s): 0 error(s)" in out.stdout


def test_help_lists_every_command_without_importing_heavy_modules() -> None:
    probe = (
        "import sys; from typer.testing import CliRunner; from reconciler.cli import app;"
        "r = CliRunner().invoke(app, ['--help']); print(r.output);"
        "print('HEAVY', sorted(m for m in ('sqlalchemy', 'apscheduler') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    for command in (
        "validate",
        "reconcile",
        "load-initial-schedule",
        "import",
        "show-schedule",
        "run",
        "force",
        "status",
    ):
        assert command in out.stdout, command
    assert "HEAVY []" in out.stdout, out.stdout


def test_database_error_is_one_line_without_password(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "a.yaml").write_text(
        "schedules:\n  - {key: a, workflow_name: w, trigger: cron, trigger_kwargs: {hour: 1}}\n"
    )
    url = "postgresql://someone:hunter2@127.0.0.1:1/nowhere"
    out = subprocess.run(
        [sys.executable, "-m", "reconciler", "reconcile", "--dry-run", str(tmp_path / "s"), "--db", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # The inner loop's whole-process check of the exit code and of stdout/stderr: the error is one line on
    # stderr, and stdout (the requested output) has nothing.
    assert out.returncode == 1
    assert out.stdout == ""
    assert "hunter2" not in out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
