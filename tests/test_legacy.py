"""`schedules load-initial-schedule`: legacy decorators and core's initial schedules → YAML.

The corpus in tests/legacy_corpus/src holds legacy schedule modules in the shapes found in real
projects; tests/legacy_corpus/expected holds, byte for byte, the files and the report the command must
produce for them. Set RECONCILER_UPDATE_GOLDEN=1 to rewrite the expected files after an intended change
(then review the diff: that diff is the change in behaviour).

Equivalence is checked against the real thing: each migrated decorator is evaluated with APScheduler's
own ``scheduled_job`` (or orchestrator-core's own deprecated ``scheduler``) on a UTC scheduler, and the
trigger our YAML builds must match it in canonical form and in its next 10 fire times.
"""

from __future__ import annotations

import ast
import base64
import copy
import functools
import json
import os
import pickle
import shutil
import types
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytz  # type: ignore[import-untyped]
import yaml
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler import legacy, triggers, yaml_writer
from reconciler.commands import load_initial, validate
from reconciler.initial import CORE_INITIAL_SCHEDULES
from reconciler.spec import KEY_PATTERN, ScheduleFile
from tests.command_line import Schedules
from tests.orchestrator_env import LATEST, Orchestrator, orchestrator_venv

CORPUS = Path(__file__).parent / "legacy_corpus"
SOURCES = CORPUS / "src"
EXPECTED = CORPUS / "expected"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
UPDATE = os.environ.get("RECONCILER_UPDATE_GOLDEN") == "1"


def workspace(tmp_path: Path, *, schema: bool = True) -> Path:
    """A copy of the corpus under tmp_path (paths in the output are relative to it), with a schema."""
    shutil.copytree(SOURCES, tmp_path / "src")
    if schema:
        (tmp_path / "schema").mkdir()
        (tmp_path / "schema" / "schedules.schema.json").write_text("{}")
    return tmp_path


def run(tmp_path: Path, *sources: str, **options: Any) -> load_initial.Result:
    options.setdefault("now", NOW)
    return load_initial.run([Path(s) for s in sources], Path(options.pop("out", "out")), cwd=tmp_path, **options)


def written(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.exists() else {}


def check_golden(name: str, actual: bytes) -> None:
    path = EXPECTED / name
    if UPDATE:
        path.write_bytes(actual)
    assert path.exists(), f"no expected file {path}; run with RECONCILER_UPDATE_GOLDEN=1 and review it"
    assert actual.decode() == path.read_text(encoding="utf-8"), f"{name} differs from the expected file"


# ------------------------------------------------------------------------------------------- golden files


def test_corpus_files_match_the_expected_yaml_byte_for_byte(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    result = run(ws, "src", include_core=False)
    files = written(ws / "out")
    if UPDATE:
        for stale in {p.name for p in EXPECTED.glob("*.yaml")} - set(files) - {"core.yaml"}:
            (EXPECTED / stale).unlink()
    for name, content in files.items():
        check_golden(name, content)
    expected = sorted(p.name for p in EXPECTED.glob("*.yaml") if p.name != "core.yaml")
    assert sorted(files) == expected
    assert result.exit_code == 0


def test_corpus_report_matches_the_expected_lines_exactly(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    result = run(ws, "src", include_core=False)
    check_golden("report.txt", "".join(f"{line}\n" for line in result.lines).encode())


def test_each_unmigratable_decorator_is_reported_with_file_line_and_reason(tmp_path: Path) -> None:
    # A few lines spelled out here too, so the report format itself is pinned, not only the golden file.
    result = run(workspace(tmp_path), "src", include_core=False)
    lines = [str(line) for line in result.lines]
    for expected in [
        "src/bodies.py:29: cannot migrate per_subscription: its body has a `for` loop (line 31); "
        "wrap the body in a task workflow and schedule that workflow",
        "src/bodies.py:35: cannot migrate maybe: its body has a condition (`if`) (line 37); "
        "wrap the body in a task workflow and schedule that workflow",
        'src/env_args.py:13: cannot migrate env_hours: `hours=int(os.environ["SYNC_HOURS"])` reads the '
        "environment; write the value it had into the YAML by hand",
        "src/registry/jobs.py:15: warning: forgotten_job is decorated but not listed in ALL_SCHEDULERS, "
        "so it may never have run; check before merging",
    ]:
        assert expected in lines
    stubs = sum(1 for s in legacy.scan([SOURCES], now=NOW).schedules if not s.migrated)
    cannot = [line for line in lines if ": cannot migrate " in line]
    assert len({line.split(": cannot migrate")[0] for line in cannot}) == stubs
    for line in cannot:
        assert line.split(":")[0].endswith(".py") and line.split(":")[1].isdigit()


def test_core_yaml_matches_the_expected_file(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.exit_code == 0
    assert sorted(written(tmp_path / "out")) == ["core.yaml"]
    check_golden("core.yaml", (tmp_path / "out" / "core.yaml").read_bytes())


@pytest.mark.orchestrator
def test_core_schedules_are_orchestrator_cores_initial_schedules() -> None:
    INITIAL_SCHEDULES = core_side().run("initial-schedules").result["initial_schedules"]

    ours = [
        {k: v for k, v in s.as_schedule("UTC").items() if k not in ("key", "timezone")} for s in CORE_INITIAL_SCHEDULES
    ]
    assert ours == INITIAL_SCHEDULES


def test_no_core_writes_no_core_yaml(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    run(ws, "src/docs_example.py", include_core=False)
    assert sorted(written(ws / "out")) == ["docs_example.yaml"]


# --------------------------------------------------------------------------------- the files are valid


def test_generated_files_pass_validate(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    result = run(ws, "src")
    assert result.exit_code == 0
    desired = validate.load_desired(ws / "out", now=NOW)
    assert [str(p) for p in desired.problems if p.is_error] == []
    migrated = [s for s in legacy.scan([SOURCES], now=NOW).schedules if s.migrated]
    assert len(desired.schedules) == len(migrated) + len(CORE_INITIAL_SCHEDULES)
    for path in (ws / "out").iterdir():
        ScheduleFile.model_validate(yaml.safe_load(path.read_text()))


def test_stubs_are_complete_schedules_once_uncommented(tmp_path: Path) -> None:
    # A stub keeps every field that could be read, and TODO where the user must fill in a value.
    ws = workspace(tmp_path)
    run(ws, "src", include_core=False)
    text = (ws / "out" / "env_args.yaml").read_text()
    assert "schedules: []" in text
    uncommented = "\n".join(
        line.replace("  # - ", "  - ").replace("  #   ", "    ")
        for line in text.splitlines()
        if not line.startswith("  # from") and "TODO cannot migrate" not in line
    ).replace("schedules: []", "schedules:")
    doc = yaml.safe_load(uncommented)
    keys = [s["key"] for s in doc["schedules"]]
    assert keys == ["env-hours", "env-hour", "constant-trigger", "splat", "zone-setting", "computed"]
    assert doc["schedules"][0]["trigger_kwargs"] == {"hours": "TODO"}


# ---------------------------------------------------------------------------------------- equivalence


def _migrated() -> list[legacy.LegacySchedule]:
    return [s for s in legacy.scan([SOURCES], now=NOW, display=_relative).schedules if s.migrated]


def _relative(path: Path) -> str:
    return path.relative_to(SOURCES).as_posix()


def _decorator(schedule: legacy.LegacySchedule) -> ast.Call:
    tree = ast.parse((SOURCES / schedule.origin.path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == schedule.origin.function:
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and deco.lineno == schedule.origin.line:
                    return deco
    raise AssertionError(f"decorator of {schedule.origin} not found")


# What the corpus' decorator arguments may refer to, for evaluating them with the real classes.
_NAMES: dict[str, Any] = {
    "CronTrigger": CronTrigger,
    "IntervalTrigger": IntervalTrigger,
    "DateTrigger": DateTrigger,
    "CalendarIntervalTrigger": CalendarIntervalTrigger,
    "ZoneInfo": ZoneInfo,
    "pytz": pytz,
    "datetime": datetime,
    "date": date,
}


def _evaluate(node: ast.expr) -> Any:
    return eval(compile(ast.Expression(node), "<corpus>", "eval"), dict(_NAMES))


def core_side() -> Orchestrator:
    """The newest orchestrator-core release, in its own venv (no database needed for what is asked here)."""
    from tests.conftest import PG_ADMIN

    return Orchestrator(orchestrator_venv(LATEST), PG_ADMIN, CORPUS_PROJECT, extra_env={"TZ": "UTC"})


CORPUS_PROJECT = Path(os.environ.get("TMPDIR", "/tmp")) / "reconciler-legacy-project"


@functools.cache
def _core_decorator_jobs() -> dict[str, Any]:
    """What orchestrator-core's deprecated `@scheduler(...)` makes of every such decorator in the corpus.

    One run of its own code (tests/orchestrator_side.py decorator-jobs), each on a UTC BackgroundScheduler;
    the jobs come back as their trigger and options (APScheduler classes, which this venv has too).
    """
    calls = {}
    for schedule in legacy.scan([SOURCES], now=NOW, display=_relative).schedules:
        if not schedule.migrated:
            continue
        deco = _decorator(schedule)
        if isinstance(deco.func, ast.Attribute) and deco.func.attr == "scheduled_job":
            continue
        calls[str(schedule.origin)] = {
            "args": [_evaluate(a) for a in deco.args],  # plain strings and numbers: its signature takes no more
            "kwargs": {k.arg: _evaluate(k.value) for k in deco.keywords if k.arg},
            "function": schedule.origin.function,
        }
    made = core_side().run("decorator-jobs", json.dumps(list(calls.values()))).result["jobs"]
    jobs = {}
    for origin, blob in zip(calls, made, strict=True):
        attrs = pickle.loads(base64.b64decode(blob))  # written by the test's own subprocess: trusted
        jobs[origin] = types.SimpleNamespace(**attrs)
    return jobs


def _apscheduler_job(schedule: legacy.LegacySchedule) -> Any:
    """The job APScheduler (or orchestrator-core's deprecated decorator) itself makes of the decorator."""
    deco = _decorator(schedule)
    if not (isinstance(deco.func, ast.Attribute) and deco.func.attr == "scheduled_job"):
        return copy.deepcopy(_core_decorator_jobs()[str(schedule.origin)])
    args = [_evaluate(a) for a in deco.args]
    kwargs = {k.arg: _evaluate(k.value) for k in deco.keywords if k.arg}
    # The UTC scheduler stands in for the host zone our YAML replaces with `timezone: UTC`.
    sched = BackgroundScheduler(timezone="UTC")

    def job_function() -> None:  # never called
        raise AssertionError

    job_function.__name__ = schedule.origin.function
    sched.scheduled_job(*args, **kwargs)(job_function)
    (job,) = sched.get_jobs()
    return job


def _strip_jitter(trigger: Any) -> Any:
    # Jitter adds a random delay to each run; what is compared is the schedule underneath it.
    if hasattr(trigger, "jitter"):
        trigger.jitter = None
    return trigger


@pytest.fixture
def utc_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the host zone UTC, as our YAML assumes, whatever zone the test machine is in.

    A trigger object built without a zone (``CronTrigger(hour=5)``) takes the host's zone from tzlocal;
    the scheduler in `_apscheduler_job` is UTC for string triggers.
    """
    import apscheduler.triggers.calendarinterval
    import apscheduler.triggers.cron
    import apscheduler.triggers.date
    import apscheduler.triggers.interval

    for module in (
        apscheduler.triggers.calendarinterval,
        apscheduler.triggers.cron,
        apscheduler.triggers.date,
        apscheduler.triggers.interval,
    ):
        monkeypatch.setattr(module, "get_localzone", lambda: ZoneInfo("UTC"))


@pytest.mark.orchestrator
@pytest.mark.parametrize("schedule", _migrated(), ids=lambda s: str(s.origin))
def test_migrated_trigger_equals_what_apscheduler_built(schedule: legacy.LegacySchedule, utc_host: None) -> None:
    job = _apscheduler_job(schedule)
    theirs = job.trigger
    fields = schedule.schedule
    ours = triggers.build_trigger(fields["trigger"], fields["trigger_kwargs"], fields["timezone"], now=NOW)
    # An interval without start_date starts "now + interval" at construction: the phase is the clock's,
    # so it is compared as a length here, and the fire times from the same start below.
    clock_phase = isinstance(theirs, IntervalTrigger) and "start_date" not in fields["trigger_kwargs"]
    assert triggers.canonical_form(ours, phase=not clock_phase) == triggers.canonical_form(
        theirs, phase=not clock_phase
    )
    if clock_phase:
        ours.start_date = theirs.start_date
    ours_times = triggers.next_fire_times(_strip_jitter(ours), 10, NOW)
    theirs_times = triggers.next_fire_times(_strip_jitter(theirs), 10, NOW)
    assert [t.astimezone(UTC) for t in ours_times] == [t.astimezone(UTC) for t in theirs_times]
    assert len(ours_times) == (1 if isinstance(theirs, DateTrigger) else 10)
    # The job options and the name come along too (APScheduler's defaults where the decorator set none).
    assert fields.get("misfire_grace_time", 1) == getattr(job, "misfire_grace_time", 1)
    assert fields.get("coalesce", True) == getattr(job, "coalesce", True)
    assert fields.get("max_instances", 1) == getattr(job, "max_instances", 1)
    assert fields.get("name", job.name) == job.name
    assert fields.get("enabled", True) == (getattr(job, "next_run_time", "unset") is not None)


def test_every_corpus_decorator_shape_is_covered_by_the_equivalence_test() -> None:
    migrated = _migrated()
    assert len(migrated) >= 30
    assert {s.schedule["trigger"] for s in migrated} == {"interval", "cron", "date", "calendarinterval"}


# ------------------------------------------------------------------------------------------ determinism


def test_running_twice_gives_identical_bytes(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    first = run(ws, "src")
    before = written(ws / "out")
    second = run(ws, "src")
    assert written(ws / "out") == before
    assert first.exit_code == second.exit_code == 0
    assert all(str(line).startswith("unchanged ") for line in second.lines if "out/" in str(line))


def test_output_does_not_depend_on_the_run_directory_or_clock_beyond_now(tmp_path: Path) -> None:
    a = workspace(tmp_path / "a")
    b = workspace(tmp_path / "b")
    run(a, "src")
    run(b, "src", now=datetime(2026, 3, 1, tzinfo=UTC))
    assert written(a / "out") == written(b / "out")


# ---------------------------------------------------------------------------------------- check / force


def test_check_writes_nothing_and_fails_when_files_would_be_created(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    result = run(ws, "src", check=True)
    assert result.exit_code == 1
    assert not (ws / "out").exists()
    assert "would create out/core.yaml" in [str(line) for line in result.lines]


def test_check_passes_when_files_are_up_to_date_and_fails_after_a_change(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    run(ws, "src")
    assert run(ws, "src", check=True).exit_code == 0
    core = ws / "out" / "core.yaml"
    core.write_text(core.read_text().replace("hours: 6", "hours: 7"))
    result = run(ws, "src", check=True)
    assert result.exit_code == 1
    assert "would update out/core.yaml" in [str(line) for line in result.lines]
    assert "hours: 7" in core.read_text()  # --check never writes


def test_a_changed_file_is_not_overwritten_without_force(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    run(ws, "src")
    core = ws / "out" / "core.yaml"
    edited = core.read_text().replace("hours: 6", "hours: 7")
    core.write_text(edited)
    (ws / "out" / "misc.yaml").unlink()
    result = run(ws, "src")
    assert result.exit_code == 1
    lines = [str(line) for line in result.lines]
    assert "out/core.yaml exists and differs from what would be written; not overwritten (use --force)" in lines
    assert "nothing was written" in lines
    assert core.read_text() == edited
    assert not (ws / "out" / "misc.yaml").exists()  # never half a migration

    forced = run(ws, "src", force=True)
    assert forced.exit_code == 0
    assert "hours: 6" in core.read_text()
    assert (ws / "out" / "misc.yaml").exists()
    assert any(str(line).startswith("overwrote out/core.yaml") for line in forced.lines)


# ---------------------------------------------------------------------------------------------- strict


def test_strict_fails_when_something_could_not_be_migrated(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    result = run(ws, "src/env_args.py", strict=True)
    assert result.exit_code == 1
    assert (ws / "out" / "env_args.yaml").exists()  # the stubs are still written
    cannot = [line for line in result.lines if "cannot migrate" in line.text]
    assert cannot and all(line.level is load_initial.Level.ERROR for line in cannot)


def test_strict_passes_when_everything_was_migrated(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    assert run(ws, "src/stacked.py", "src/docs_example.py", strict=True).exit_code == 0


def test_without_strict_unmigratable_decorators_are_warnings(tmp_path: Path) -> None:
    result = run(workspace(tmp_path), "src/env_args.py")
    assert result.exit_code == 0
    assert {line.level for line in result.lines if "cannot migrate" in line.text} == {load_initial.Level.WARNING}


# ------------------------------------------------------------------------------------------ edge cases


def test_a_missing_source_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "nope")
    assert result.exit_code == 2
    assert [str(line) for line in result.lines] == ["nope: no such file or directory"]
    assert not (tmp_path / "out").exists()


def test_a_file_with_a_syntax_error_is_reported_and_fails_strict(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def oops(:\n    pass\n")
    result = run(tmp_path, "broken.py", strict=True)
    assert "broken.py:1: cannot read: invalid syntax; nothing in it was migrated" in [
        str(line) for line in result.lines
    ]
    assert result.exit_code == 1


def test_only_modules_with_decorators_get_a_file(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    run(ws, "src/no_schedules.py", "src/registry", include_core=False)
    assert sorted(written(ws / "out")) == ["registry.jobs.yaml"]


def test_a_package_as_source_names_files_after_the_package(tmp_path: Path) -> None:
    package = tmp_path / "myapp" / "schedules"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from orchestrator.core.schedules.scheduler import scheduler\n"
        "from orchestrator.core.services.processes import start_process\n\n\n"
        '@scheduler.scheduled_job("cron", hour=3)\n'
        "def init_job():\n"
        '    start_process("task_init")\n'
    )
    (package / "_private.py").write_text((package / "__init__.py").read_text().replace("init_", "private_"))
    result = run(tmp_path, "myapp/schedules", include_core=False)
    assert result.exit_code == 0
    # `_private` would be skipped by the loader, so generated names never start with '_' or '.'.
    assert sorted(written(tmp_path / "out")) == ["schedules._private.yaml", "schedules.yaml"]
    assert sorted(s.key for s in validate.load_desired(tmp_path / "out", now=NOW).schedules) == [
        "init-job",
        "private-job",
    ]


def test_a_module_named_core_does_not_overwrite_core_yaml(tmp_path: Path) -> None:
    shutil.copy(SOURCES / "docs_example.py", tmp_path / "core.py")
    run(tmp_path, "core.py")
    assert sorted(written(tmp_path / "out")) == ["core-2.yaml", "core.yaml"]


def test_user_code_is_never_imported(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "side_effect.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from orchestrator.core.schedules.scheduler import scheduler\n"
        "from orchestrator.core.services.processes import start_process\n\n\n"
        '@scheduler.scheduled_job("interval", hours=1)\n'
        "def job():\n"
        '    start_process("task_x")\n'
    )
    result = run(tmp_path, "side_effect.py", include_core=False)
    assert result.exit_code == 0
    assert not marker.exists()


def test_modeline_points_at_the_schema_when_one_is_found_upward(tmp_path: Path) -> None:
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "schedules.schema.json").write_text("{}")
    assert yaml_writer.schema_reference(tmp_path / "deploy" / "schedules.d") == "../../schema/schedules.schema.json"
    assert yaml_writer.schema_reference(tmp_path / "schedules.d") == "../schema/schedules.schema.json"


def test_modeline_without_a_schema_points_where_schedules_schema_writes_it(
    tmp_path: Path, command_line: Schedules
) -> None:
    run(tmp_path)
    first = (tmp_path / "out" / "core.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema/schedules.schema.json"
    written = command_line("schema", "--write", "schema", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "out" / "../schema/schedules.schema.json").resolve().is_file()  # the modeline now resolves


def test_all_schedulers_with_relative_and_absolute_imports(tmp_path: Path) -> None:
    package = tmp_path / "app" / "schedules"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from app.schedules import nightly\n"
        "from .weekly import weekly_job\n\n"
        "ALL_SCHEDULERS = [nightly.nightly_job, weekly_job]\n"
    )
    job = (
        "from orchestrator.schedules.scheduling import scheduler\n"
        "from orchestrator.services.processes import start_process\n\n\n"
        '@scheduler("{name}", time_unit="hours")\n'
        "def {name}():\n"
        '    start_process("task_{name}")\n'
    )
    (package / "nightly.py").write_text(job.format(name="nightly_job") + "\n\n" + job.format(name="stray_job"))
    (package / "weekly.py").write_text(job.format(name="weekly_job"))
    (tmp_path / "elsewhere.py").write_text(job.format(name="unrelated_job"))
    result = run(tmp_path, "app", "elsewhere.py", include_core=False)
    warnings = [str(line) for line in result.lines if "ALL_SCHEDULERS" in line.text]
    # Only the decorated function missing from the list that speaks for its module is flagged.
    assert warnings == [
        "app/schedules/nightly.py:14: warning: stray_job is decorated but not listed in ALL_SCHEDULERS, "
        "so it may never have run; check before merging"
    ]


# ------------------------------------------------------------------------------------------ keys, YAML


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("nightly-sync", "nightly-sync"),
        ("run_nightly_sync", "run-nightly-sync"),
        ("Nightly Sync!", "nightly-sync"),
        ("__private__", "private"),
        ("Säge.Job", "sage.job"),
        ("a--b__c..d", "a-b-c.d"),
        ("!!!", "schedule"),
        ("x" * 150, "x" * 100),
    ],
)
def test_slugify(text: str, key: str) -> None:
    import re

    assert legacy.slugify(text) == key
    assert re.fullmatch(KEY_PATTERN, key)


def test_unique_key_counts_up_deterministically() -> None:
    taken = {"job", "job-2"}
    assert legacy.unique_key("job", taken) == "job-3"
    assert legacy.unique_key("other", taken) == "other"
    long = "x" * 100
    assert legacy.unique_key(long, {long}) == "x" * 98 + "-2"


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "Nightly sync",
        "yes",
        "no",
        "on",
        "null",
        "~",
        "",
        " padded ",
        "01:30",
        "1:30",
        "2030-01-01",
        "2030-01-01 03:00:00",
        "*/15",
        "mon-fri",
        "9-17",
        "a: b",
        "x #y",
        "#x",
        "[1]",
        "{a}",
        "'q'",
        '"q"',
        "line\nbreak",
        "tab\there",
        "Nächtlich",
        "sep\u2028arator",
        "nbsp\u00a0here",
        "\x85",
        "1e3",
        "0x1F",
        "1_000",
        ".inf",
        "-",
        "- a",
        "? a",
        "@a",
        "`a",
        "...",
        "---",
        "%a",
        "!a",
        "&a",
        "*a",
        "|",
        ">",
        0,
        -3,
        0.5,
        1e-05,
        1e16,
        123456789.125,
        True,
        False,
        None,
    ],
)
def test_every_scalar_reads_back_as_itself(value: Any) -> None:
    rendered = yaml_writer.render_scalar(value)
    document = f"k: {rendered}\nf: {{v: {rendered}}}\nl: [{rendered}]\n"
    assert yaml.safe_load(document) == {"k": value, "f": {"v": value}, "l": [value]}


def test_render_file_layout() -> None:
    text = yaml_writer.render_file(
        [
            yaml_writer.Entry(
                {
                    "moved_from": None,
                    "trigger": "cron",
                    "key": "a",
                    "workflow_name": "w",
                    "trigger_kwargs": {"hour": 1},
                },
                comments=["from x.py:1 f"],
                field_comments={"trigger": "why"},
            ),
            yaml_writer.Entry({"key": "b", "workflow_name": "TODO"}, comments=["TODO fix"], commented_out=True),
        ],
        schema_ref="../schema/schedules.schema.json",
        header=["Header line"],
    )
    assert text == (
        "# yaml-language-server: $schema=../schema/schedules.schema.json\n"
        "# Header line\n"
        "schedules:\n"
        "  # from x.py:1 f\n"
        "  - key: a\n"
        "    workflow_name: w\n"
        "    trigger: cron  # why\n"
        "    trigger_kwargs: {hour: 1}\n"
        "\n"
        "  # TODO fix\n"
        "  # - key: b\n"
        "  #   workflow_name: TODO\n"
    )


def test_comments_cannot_inject_yaml() -> None:
    entry = yaml_writer.Entry({"key": "a", "workflow_name": "w"}, comments=["evil\nschedules: []"])
    text = yaml_writer.render_file([entry], schema_ref="s.json")
    assert yaml.safe_load(text) == {"schedules": [{"key": "a", "workflow_name": "w"}]}


def test_unknown_values_are_refused() -> None:
    with pytest.raises(TypeError):
        yaml_writer.render_value({"a": object()})


# ---------------------------------------------------------------------------------------- small shapes


def scan_text(tmp_path: Path, source: str) -> list[legacy.LegacySchedule]:
    (tmp_path / "mod.py").write_text(source)
    return legacy.scan([tmp_path / "mod.py"], now=NOW).schedules


HEADER = (
    "from orchestrator.core.schedules.scheduler import scheduler\n"
    "from orchestrator.core.services.processes import start_process as sp\n"
)


@pytest.mark.parametrize(
    ("decorator", "fields"),
    [
        ('@scheduler.scheduled_job("interval", hours=24 * 7)', {"trigger_kwargs": {"hours": 168}}),
        ('@scheduler.scheduled_job("cron", day_of_week=0)', {"trigger_kwargs": {"day_of_week": "mon"}}),
        ('@scheduler.scheduled_job("cron", day_of_week="*/2")', {"trigger_kwargs": {"day_of_week": "*/2"}}),
        (
            '@scheduler.scheduled_job("cron", hour=1, timezone=pytz.timezone("Europe/Paris"))',
            {"timezone": "Europe/Paris"},
        ),
        ('@scheduler.scheduled_job("interval", hours=1, timezone=timezone.utc)', {"timezone": "UTC"}),
        ('@scheduler.scheduled_job("interval", hours=1, coalesce=True)', {"coalesce": True}),
        (
            '@scheduler.scheduled_job("interval", hours=1, start_date=datetime.datetime(2030, 5, 1))',
            {"trigger_kwargs": {"hours": 1, "start_date": "2030-05-01 00:00:00"}},
        ),
    ],
)
def test_small_decorator_shapes(tmp_path: Path, decorator: str, fields: dict[str, Any]) -> None:
    source = (
        "import datetime\nfrom datetime import timezone\nimport pytz\n"
        + HEADER
        + f"\n\n{decorator}\ndef job():\n    sp('task_x')\n"
    )
    (found,) = scan_text(tmp_path, source)
    assert found.migrated, found.problems
    for name, value in fields.items():
        assert found.schedule[name] == value


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("    sp('task_x', user_inputs=None)\n", None),
        ("    return sp(workflow_key='task_x')\n", None),
        ("    pid = sp('task_x')\n    logger.info('started', pid=pid)\n", None),
        ("    sp('task_x', user='SYSTEM')\n", None),
        ("    while True:\n        sp('task_x')\n", "its body has a `while` loop (line 7)"),
        ("    sp(f'task_{1}')\n", "the workflow name `f'task_{1}'` is computed at run time (line 7)"),
        ("    sp('task_x', [{'a': 1}], broadcast_func=print)\n", "`broadcast_func=` is passed to start_process"),
        ("    sp(*names)\n", "`*names` passes arguments only known at run time"),
    ],
)
def test_bodies(tmp_path: Path, body: str, problem: str | None) -> None:
    source = HEADER + "\n\n@scheduler.scheduled_job('interval', hours=1)\ndef job():\n" + body
    (found,) = scan_text(tmp_path, source)
    if problem is None:
        assert found.migrated, found.problems
        assert found.schedule["workflow_name"] == "task_x"
    else:
        assert any(problem in p for p in found.problems), found.problems


def test_unrelated_decorators_and_calls_are_ignored(tmp_path: Path) -> None:
    source = (
        "import functools\nfrom myapp import scheduler\n"
        "@functools.lru_cache()\n@scheduler('looks like core but is not imported from it', 'hours')\n"
        "def f():\n    pass\n"
    )
    assert scan_text(tmp_path, source) == []


def test_report_lines_have_levels_for_the_cli(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    result = run(ws, "src")
    levels: dict[load_initial.Level, Callable[[str], bool]] = {
        load_initial.Level.INFO: lambda t: t.startswith(("created ", "unchanged ")) or "decorator schedules" in t,
        load_initial.Level.WARNING: lambda t: "cannot migrate" in t or ": warning: " in t,
    }
    for line in result.lines:
        assert levels[line.level](line.text), line


def test_schema_command_writes_the_committed_schema(command_line: Schedules) -> None:
    from reconciler.schema import SCHEMA_PATH

    done = command_line("schema")
    assert done.returncode == 0 and json.loads(done.stdout) == json.loads(SCHEMA_PATH.read_text())
