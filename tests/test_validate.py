"""`schedules validate`: every error class, reported at its exact line:column, all in one run."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.commands.validate import load_desired
from tests.command_line import Schedules

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent

GOOD = """\
schedules:
  - key: ok
    workflow_name: task_clean_up_tasks
    trigger: interval
    trigger_kwargs: {hours: 1}
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def problems_of(tmp_path: Path) -> list[str]:
    result = load_desired(tmp_path, now=NOW)
    return [f"{Path(p.path).name}:{p.line}:{p.column}: {p.severity.value}: {p.message}" for p in result.problems]


def only_error(tmp_path: Path) -> str:
    errors = [p for p in problems_of(tmp_path) if ": error: " in p]
    assert len(errors) == 1, errors
    return errors[0]


def test_bundled_schedules_are_valid() -> None:
    result = load_desired(REPO / "schedules.d", now=NOW)
    assert result.ok, result.problems
    assert sorted(s.key for s in result.schedules) == [
        "task-clean-up-tasks",
        "task-resume-workflows",
        "task-validate-awaiting-callbacks",
        "task-validate-products",
        "task-validate-subscriptions",
    ]
    assert all(s.timezone == "UTC" for s in result.schedules)


def test_duplicate_mapping_key_is_rejected_at_its_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        GOOD.replace("    trigger: interval\n", "    trigger: interval\n    trigger: cron\n"),
    )
    assert only_error(tmp_path) == "a.yaml:5:5: error: duplicate key 'trigger' (first defined at line 4)"


def test_yaml_syntax_error_position(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "schedules:\n  - key: x\n    name: [unclosed\n")
    line = only_error(tmp_path)
    assert line.startswith("a.yaml:4:1: error: YAML syntax error"), line


def test_unknown_key_points_at_the_key(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD + "    colour: blue\n")
    assert only_error(tmp_path).startswith("a.yaml:6:5: error: unknown key 'colour' (allowed: key, workflow_name")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: 2\n" + GOOD)
    assert only_error(tmp_path) == "a.yaml:1:1: error: unknown key 'version' (allowed: defaults, schedules)"


def test_wrong_type_points_at_the_value(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD + "    enabled: 'yes'\n")
    assert only_error(tmp_path) == "a.yaml:6:14: error: enabled: Input should be a valid boolean"


def test_missing_required_key_points_at_the_schedule(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD.replace("    trigger: interval\n", ""))
    assert only_error(tmp_path) == "a.yaml:2:5: error: missing required key 'trigger'"


def test_key_used_twice_across_files_names_both_places(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "sub/b.yaml", "# another team\n" + GOOD)
    line = only_error(tmp_path)
    assert line.startswith("b.yaml:3:10: error: key 'ok' is used twice: here and at "), line
    assert line.endswith("a.yaml:2"), line


def test_invalid_trigger_argument_points_at_the_argument(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD.replace("interval", "cron").replace("{hours: 1}", "\n      hour: 25\n"))
    line = only_error(tmp_path)
    assert line.startswith("a.yaml:6:13: error: ok: "), line
    assert "hour" in line


def test_unknown_trigger_type(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD.replace("trigger: interval", "trigger: weekly"))
    line = only_error(tmp_path)
    assert line.startswith("a.yaml:4:14: error: trigger: unknown trigger 'weekly'"), line


def test_unknown_time_zone(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD + "    timezone: Europe/Amsterdm\n")
    assert only_error(tmp_path) == (
        "a.yaml:6:15: error: unknown time zone 'Europe/Amsterdm' (did you mean Europe/Amsterdam?)"
    )


def test_unknown_time_zone_in_file_defaults(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "defaults:\n  timezone: Mars/Olympus\n" + GOOD)
    assert only_error(tmp_path).startswith("a.yaml:2:13: error: unknown time zone 'Mars/Olympus'")


def test_date_in_the_past(tmp_path: Path) -> None:
    text = GOOD.replace("interval", "date").replace("{hours: 1}", "{run_date: '2020-01-01T00:00:00'}")
    write(tmp_path, "a.yaml", text)
    line = only_error(tmp_path)
    assert line.startswith("a.yaml:5:"), line
    assert "past" in line


class AskedKeys:
    """A `completed` container that records which keys validation asked about."""

    def __init__(self, keys: set[str]) -> None:
        self.keys, self.asked = keys, []

    def __contains__(self, key: object) -> bool:
        self.asked.append(key)
        return key in self.keys


def test_completed_keys_are_asked_only_about_a_past_run_date(tmp_path: Path) -> None:
    # reconcile reads the completed keys from the database on first use: a run without a past date never does.
    past = GOOD.replace("interval", "date").replace("{hours: 1}", "{run_date: '2020-01-01T00:00:00'}")
    write(tmp_path, "future.yaml", GOOD.replace("key: ok", "key: later"))
    completed = AskedKeys(set())
    assert load_desired(tmp_path, now=NOW, completed=completed).ok
    assert completed.asked == []
    write(tmp_path, "past.yaml", past)
    completed = AskedKeys({"ok"})
    result = load_desired(tmp_path, now=NOW, completed=completed)
    assert result.ok and completed.asked == ["ok"]  # fired: complete, not an error
    assert not load_desired(tmp_path, now=NOW, completed=AskedKeys(set())).ok


def test_empty_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "# nothing here\n")
    assert only_error(tmp_path) == "a.yaml:1:1: error: file is empty"


def test_not_utf8(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD.encode() + b"    name: caf\xe9\n")
    assert only_error(tmp_path) == "a.yaml:6:14: error: file is not valid UTF-8"


def test_file_over_one_mebibyte(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD + "#" * (1024 * 1024) + "\n")
    assert only_error(tmp_path) == "a.yaml:1:1: error: file is larger than 1024 KiB"


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    lines.append("schedules: [*a8]")
    write(tmp_path, "a.yaml", "\n".join(lines) + "\n")
    line = only_error(tmp_path)
    assert "alias bomb" in line, line


def test_every_problem_in_one_run(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD + "    colour: blue\n")
    write(tmp_path, "b.yaml", "schedules:\n  - key: Bad Key\n    workflow_name: x\n    trigger: cron\n")
    write(tmp_path, "c.yaml", "")
    found = problems_of(tmp_path)
    assert [x.split(": error")[0] for x in found] == ["a.yaml:6:5", "b.yaml:2:10", "c.yaml:1:1"]


def test_files_starting_with_underscore_or_dot_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "_draft.yaml", "not: [valid")
    write(tmp_path, ".hidden/x.yml", "not: [valid")
    write(tmp_path, "a.yml", GOOD)
    result = load_desired(tmp_path, now=NOW)
    assert result.ok and [s.key for s in result.schedules] == ["ok"]


def test_defaults_fill_what_schedules_leave_out(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "defaults:\n  timezone: Europe/Amsterdam\n  misfire_grace_time: 60\n"
        + GOOD
        + "  - key: own\n    workflow_name: w\n    trigger: cron\n    trigger_kwargs: {hour: 3}\n    timezone: UTC\n",
    )
    result = load_desired(tmp_path, now=NOW)
    assert result.ok, result.problems
    by_key = {s.key: s for s in result.schedules}
    assert (by_key["ok"].timezone, by_key["ok"].misfire_grace_time) == ("Europe/Amsterdam", 60)
    assert (by_key["own"].timezone, by_key["own"].misfire_grace_time) == ("UTC", 60)
    assert by_key["own"].user_inputs == [{}] and by_key["own"].coalesce is True


def run_cli(run: Schedules, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run(*args, cwd=cwd)


def test_cli_exit_codes_and_formats(tmp_path: Path, command_line: Schedules) -> None:
    ok = run_cli(command_line, "validate", str(REPO / "schedules.d"), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "5 schedule(s) in 1 file(s): 0 error(s)" in ok.stdout
    write(tmp_path, "d/a.yaml", GOOD + "    colour: blue\n")
    bad = run_cli(command_line, "validate", "d", cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[0].startswith("d/a.yaml:6:5: error: unknown key 'colour'")
    gh = run_cli(command_line, "validate", "d", "--format", "github", cwd=tmp_path)
    assert gh.returncode == 1
    assert gh.stdout.startswith("::error file=d/a.yaml,line=6,col=5::unknown key 'colour'")
    js = run_cli(command_line, "validate", "d", "--format", "json", cwd=tmp_path)
    assert json.loads(js.stdout)[0] == {
        "path": "d/a.yaml",
        "line": 6,
        "column": 5,
        "severity": "error",
        "message": json.loads(js.stdout)[0]["message"],
    }
    assert json.loads(js.stdout)[0]["message"].startswith("unknown key 'colour'")


def test_missing_directory_is_one_clear_line(tmp_path: Path, command_line: Schedules) -> None:
    res = run_cli(command_line, "validate", "nope", cwd=tmp_path)
    assert res.returncode == 1
    assert res.stdout.strip().splitlines()[0] == "nope:0:0: error: schedules directory does not exist"
    assert "Traceback" not in res.stderr


def test_key_pattern_allows_dots_dashes_underscores(tmp_path: Path) -> None:
    for i in range(3):
        write(tmp_path, f"f{i}.yaml", GOOD.replace("key: ok", f"key: k-{i}.x_y"))
    assert load_desired(tmp_path, now=NOW).ok


LOADER_CASES = [
    "schedules:\n  - {key: a, trigger: cron, trigger_kwargs: {hour: 3}}\n",
    "a: 1\nb: [true, null, 1.5, 2026-01-01, '7', \"x\"]\nc: {d: {e: [f, {g: h}]}}\n",
    "a: 1\nb: 2\na: 3\n",  # duplicate
    "? [1, 2]\n: x\ny: 1\n",  # a collection as key
    "1: one\ntrue: yes\n~: nothing\n",  # non-text keys
    "deep: " + "[" * 70 + "]" * 70 + "\n",  # too deep
    "a: &x {b: 1}\nc: *x\n",  # anchors: the general walk, whichever is asked
]


@pytest.mark.parametrize("text", LOADER_CASES)
def test_the_lean_walk_gives_what_the_general_walk_gives(text: str) -> None:
    """Files without anchors or merge keys take a leaner walk; value and problems must not differ."""
    import yaml

    from reconciler.loader import _TooBig, _Walker

    def outcome(lean: bool) -> tuple[Any, list[str]]:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        walker = _Walker("f.yaml")
        try:
            value = walker.walk_plain(node) if lean else walker.walk(node)
        except _TooBig as exc:
            value = f"too big: {exc}"
        return value, [p.message for p in walker.problems]

    assert outcome(lean=True) == outcome(lean=False)


# Values that overflow or make APScheduler itself raise while the trigger is built or first asked for its
# fire times (issue 12, item 7): each is one error at the value's file:line:col, never an exception.
OVERFLOWING = [
    ("interval", "seconds: " + "9" * 400, 6, 16),
    ("interval", "seconds: 5\n      jitter: " + "9" * 400, 7, 15),
    ("calendarinterval", "years: 100000000000", 4, 14),
    ("calendarinterval", "days: " + "9" * 400, 4, 14),
]


@pytest.mark.parametrize(("trigger", "kwargs", "line", "col"), OVERFLOWING)
def test_overflowing_trigger_values_are_located_errors(
    tmp_path: Path, trigger: str, kwargs: str, line: int, col: int
) -> None:
    write(
        tmp_path,
        "a.yaml",
        f"schedules:\n  - key: big\n    workflow_name: w\n    trigger: {trigger}\n"
        f"    trigger_kwargs:\n      {kwargs}\n",
    )
    problem = only_error(tmp_path)
    assert problem.startswith(f"a.yaml:{line}:{col}: error: big: "), problem


def test_a_trigger_whose_runs_reach_the_end_of_the_calendar_is_valid_and_plannable(tmp_path: Path) -> None:
    from reconciler.triggers import build_trigger, next_fire_times

    trigger = build_trigger("interval", {"hours": 1, "start_date": "9999-12-31T23:59:59"}, "UTC", now=NOW)
    assert [t.year for t in next_fire_times(trigger, 3, NOW)] == [9999]  # year 10000 does not exist


def test_overflowing_misfire_grace_time_is_a_located_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "schedules:\n  - key: big\n    workflow_name: w\n    trigger: interval\n    trigger_kwargs: {hours: 1}\n"
        f"    misfire_grace_time: {'9' * 400}\n",
    )
    assert only_error(tmp_path).startswith("a.yaml:6:25: error: "), problems_of(tmp_path)


def test_cli_reports_an_overflow_with_its_place_and_exit_1(tmp_path: Path, command_line: Schedules) -> None:
    write(tmp_path / "s", "a.yaml", GOOD.replace("{hours: 1}", "{seconds: " + "9" * 400 + "}"))
    proc = run_cli(command_line, "validate", "s", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "s/a.yaml:5:31: error: ok: seconds is too large" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "int too large" not in proc.stdout + proc.stderr
