"""Nothing we print for GitHub can be hijacked into a workflow command of its own.

GitHub reads every output line starting with `::` (stdout and stderr) as a command; a file name or a
`workflow_name` holding a newline used to end our annotation and start a `::warning title=…::` of its own.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from reconciler.workflow_commands import command, escape_data, escape_property, visible
from tests.command_line import Schedules

EVIL_FILE = "x\n::warning title=INJECTED::y.yaml"
EVIL_WORKFLOW = "task_clean_up_tasks\n::warning title=INJECTED2::"


def _spec(**fields: object) -> str:
    spec: dict[str, object] = {
        "key": "dst",
        "workflow_name": "task_clean_up_tasks",
        "trigger": "cron",
        # 02:30 in Amsterdam falls in the spring DST gap: a warning annotation that names the file.
        "trigger_kwargs": {"hour": 2, "minute": 30},
        "timezone": "Europe/Amsterdam",
    }
    spec.update(fields)
    return "schedules:\n  - " + json.dumps(spec) + "\n"


def _run(run: Schedules, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run(*args, cwd=cwd)


def _injected(result: subprocess.CompletedProcess[str]) -> list[str]:
    lines = (result.stdout + "\n" + result.stderr).splitlines()
    return [line for line in lines if line.lstrip().startswith("::warning title=INJECTED")]


@pytest.mark.parametrize("broken", [False, True], ids=["warning", "error"])
def test_validate_github_on_a_file_name_with_a_newline(tmp_path: Path, broken: bool, command_line: Schedules) -> None:
    d = tmp_path / "schedules.d"
    d.mkdir()
    text = _spec() + ("    colour: blue\n" if broken else "")
    (d / EVIL_FILE).write_text(text)
    result = _run(command_line, "validate", str(d), "--format", "github", cwd=tmp_path)
    assert result.returncode == (1 if broken else 0), result.stderr
    assert "::" in result.stdout  # an annotation was printed...
    assert "%0A%3A%3Awarning title=INJECTED%3A%3Ay.yaml" in result.stdout  # ...with the file name escaped
    assert _injected(result) == []


def test_validate_github_on_a_workflow_name_with_a_newline(tmp_path: Path, command_line: Schedules) -> None:
    d = tmp_path / "schedules.d"
    d.mkdir()
    (d / "a.yaml").write_text(_spec(workflow_name=EVIL_WORKFLOW))
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    _run(command_line, "reconcile", "--dry-run", str(tmp_path / "empty"), "--db", db, "--allow-empty", cwd=tmp_path)
    result = _run(command_line, "validate", str(d), "--format", "github", "--db", db, cwd=tmp_path)
    assert "INJECTED2" in result.stdout + result.stderr
    assert _injected(result) == []


@pytest.mark.parametrize("where", ["file", "workflow"])
def test_reconcile_dry_run_github_cannot_be_hijacked(tmp_path: Path, where: str, command_line: Schedules) -> None:
    d = tmp_path / "schedules.d"
    d.mkdir()
    if where == "file":
        (d / EVIL_FILE).write_text(_spec())
    else:
        (d / "a.yaml").write_text(_spec(workflow_name=EVIL_WORKFLOW))
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = _run(command_line, "reconcile", "--dry-run", str(d), "--db", db, "--format", "github", cwd=tmp_path)
    assert "INJECTED" in result.stdout + result.stderr, result
    assert _injected(result) == []


def test_escaping_follows_githubs_rules() -> None:
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert (
        command("warning", "m\n::x::", file="f,1:2", line=3, col=None) == "::warning file=f%2C1%3A2,line=3::m%0A::x::"
    )
    assert command("error", "plain") == "::error::plain"
    assert visible("a\nb\x1b[31m\u2028") == "a\\nb\\x1b[31m\\u2028"
