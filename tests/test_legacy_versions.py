"""`@scheduler(time_unit=…, period=…, at=…)` means what it meant on the orchestrator-core it ran on.

Up to 4.3 `python main.py scheduler run` drove the `schedule` package with it; from 4.4 the decorator is an
APScheduler shim. Both readings are checked against the real thing: the `schedule` package (run in
orchestrator-core's own loop with a simulated clock on a host in Europe/Amsterdam) and APScheduler as the
shim built it, 20 fire times each, across a DST change.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import schedule
import yaml
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler import triggers
from reconciler.commands.load_initial import run
from reconciler.legacy_semantics import Era, era_of_version, schedule_package_reading, shim_reading

ZONE = ZoneInfo("Europe/Amsterdam")
AUTUMN = dt.datetime(2026, 10, 20, 12, 0)  # clocks go back on 2026-10-25
SPRING = dt.datetime(2026, 3, 28, 20, 0)  # clocks go forward on 2026-03-29


def schedule_package_fires(
    time_unit: str, period: int, at: str | None, start: dt.datetime, n: int = 20
) -> list[dt.datetime]:
    """When orchestrator-core ≤ 4.3's `scheduler run` loop started the job: `schedule.every(period).<unit>.at(at)`,
    then run_pending / sleep(idle_seconds), on a host whose local zone is Europe/Amsterdam."""
    real = {"utc": start.replace(tzinfo=ZONE).astimezone(dt.UTC)}

    class HostClock(dt.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # the host's naive local time, as `schedule` reads it
            return real["utc"].astimezone(ZONE).replace(tzinfo=None)

    fired: list[dt.datetime] = []
    original = schedule.datetime
    schedule.datetime = SimpleNamespace(datetime=HostClock, timedelta=dt.timedelta, time=dt.time, date=dt.date)  # type: ignore[assignment]
    try:
        scheduler = schedule.Scheduler()
        job = getattr(scheduler.every(period), time_unit)
        if at:
            job = job.at(at)
        job.do(lambda: fired.append(real["utc"]))
        while len(fired) < n:
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            if idle is not None and idle > 0:
                real["utc"] += dt.timedelta(seconds=idle)
    finally:
        schedule.datetime = original  # type: ignore[assignment]
    return fired


def apscheduler_fires(trigger: Any, start: dt.datetime, n: int = 20) -> list[dt.datetime]:
    """The fire times APScheduler computes for `trigger` after `start` (host zone Europe/Amsterdam)."""
    now = start.replace(tzinfo=ZONE)
    fires: list[dt.datetime] = []
    previous = None
    while len(fires) < n:
        moment = trigger.get_next_fire_time(previous, now)
        previous, now = moment, max(now, moment)
        if moment > start.replace(tzinfo=ZONE):
            fires.append(moment.astimezone(dt.UTC))
    return fires


def migrated_trigger(reading: Any, start: dt.datetime) -> Any:
    """The trigger the migrated YAML builds; an interval counts from `start`, as the old loop did from its start."""
    kwargs = dict(reading.trigger_kwargs)
    if reading.trigger == "interval":
        kwargs["start_date"] = start.isoformat()
    return triggers.build_trigger(reading.trigger, kwargs, "Europe/Amsterdam", now=start.replace(tzinfo=ZONE))


@pytest.mark.parametrize(
    ("time_unit", "period", "at", "start", "expected"),
    [
        ("hour", 1, ":30", SPRING, ("cron", {"minute": 30})),
        ("monday", 1, "01:00", AUTUMN, ("cron", {"day_of_week": "mon", "hour": 1, "minute": 0})),
        ("days", 2, "03:00", AUTUMN, ("calendarinterval", {"days": 2, "hour": 3, "minute": 0})),
        ("day", 1, "02:30", SPRING, ("cron", {"hour": 2, "minute": 30})),
        ("friday", 1, "23:15:10", AUTUMN, ("cron", {"day_of_week": "fri", "hour": 23, "minute": 15, "second": 10})),
        ("minute", 1, ":15", AUTUMN, ("cron", {"second": 15})),
        ("hours", 3, None, SPRING, ("interval", {"hours": 3})),
    ],
)
def test_schedule_package_reading_fires_like_the_schedule_package(
    time_unit: str, period: int, at: str | None, start: dt.datetime, expected: tuple[str, dict[str, Any]]
) -> None:
    reading = schedule_package_reading(time_unit, period, at)
    assert (reading.trigger, reading.trigger_kwargs) == expected
    assert apscheduler_fires(migrated_trigger(reading, start), start) == schedule_package_fires(
        time_unit, period, at, start
    )


@pytest.mark.parametrize(
    ("time_unit", "period", "at", "built_by_the_shim"),
    [
        ("hour", 1, ":30", IntervalTrigger(hours=1, timezone=ZONE, start_date=AUTUMN.replace(tzinfo=ZONE))),
        ("day", 1, "02:30", CronTrigger(hour=2, minute=30, timezone=ZONE)),
        ("days", 2, "03:00", IntervalTrigger(days=2, timezone=ZONE, start_date=AUTUMN.replace(tzinfo=ZONE))),
    ],
)
def test_shim_reading_fires_like_the_shims_apscheduler_trigger(
    time_unit: str, period: int, at: str, built_by_the_shim: Any
) -> None:
    reading = shim_reading(time_unit, period, at)
    ours = triggers.build_trigger(
        reading.trigger or "", {**reading.trigger_kwargs}, "Europe/Amsterdam", now=AUTUMN.replace(tzinfo=ZONE)
    )
    if reading.trigger == "interval":  # the phase of an interval is its start: give both the same one
        ours = IntervalTrigger(**reading.trigger_kwargs, timezone=ZONE, start_date=AUTUMN.replace(tzinfo=ZONE))
    assert apscheduler_fires(ours, AUTUMN) == apscheduler_fires(built_by_the_shim, AUTUMN)


def test_the_two_readings_differ_where_the_issue_says() -> None:
    assert str(shim_reading("hour", 1, ":30")) == "interval {hours: 1}"
    assert str(schedule_package_reading("hour", 1, ":30")) == "cron {minute: 30}"
    assert schedule_package_reading("monday", 1, "01:00").trigger == "cron"
    assert shim_reading("monday", 1, "01:00").trigger_kwargs == {"monday": 1}  # APScheduler rejected it
    assert schedule_package_reading("day", 2, "03:00").trigger is None  # IntervalError: never scheduled
    assert era_of_version("4.2") is Era.SCHEDULE_PACKAGE
    assert era_of_version("4.3.1") is Era.SCHEDULE_PACKAGE
    assert era_of_version("4.4") is Era.APSCHEDULER_SHIM
    assert era_of_version("5.5.0") is Era.APSCHEDULER_SHIM
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR"):
        era_of_version("four")


LEGACY = """\
from orchestrator.schedules.scheduling import scheduler
from orchestrator.services.processes import start_process


@scheduler(name="Hourly at half past", time_unit="hour", at=":30")
def half_past() -> None:
    start_process("task_half_past")


@scheduler(name="Monday night", time_unit="monday", at="01:00")
def monday_night() -> None:
    start_process("task_monday")


@scheduler(name="Every other night", time_unit="days", period=2, at="03:00")
def every_other_night() -> None:
    start_process("task_every_other_night")
"""


def _migrate(tmp_path: Path, version: str | None) -> tuple[dict[str, Any], list[str], str]:
    src = tmp_path / "app"
    src.mkdir(exist_ok=True)
    (src / "schedules.py").write_text(LEGACY)
    result = run([Path("app")], Path("out"), include_core=False, cwd=tmp_path, orchestrator_version=version)
    text = (tmp_path / "out" / "schedules.yaml").read_text()
    doc = yaml.safe_load(text)
    by_key = {s["key"]: s for s in doc["schedules"] or []}
    return by_key, [str(line) for line in result.lines], text


def test_version_4_2_migrates_the_schedule_package_meaning(tmp_path: Path) -> None:
    by_key, _, text = _migrate(tmp_path, "4.2")
    assert {k: (s["trigger"], s["trigger_kwargs"]) for k, s in by_key.items()} == {
        "half-past": ("cron", {"minute": 30}),
        "monday-night": ("cron", {"day_of_week": "mon", "hour": 1, "minute": 0}),
        "every-other-night": ("calendarinterval", {"days": 2, "hour": 3, "minute": 0}),
    }
    assert all("replaces" not in s for s in by_key.values())  # the `schedule` package stored no rows
    assert "Keep the decorator" not in text


def test_version_4_8_migrates_the_shim_meaning(tmp_path: Path) -> None:
    by_key, _, text = _migrate(tmp_path, "4.8")
    assert (by_key["half-past"]["trigger"], by_key["half-past"]["trigger_kwargs"]) == ("interval", {"hours": 1})
    assert by_key["half-past"]["replaces"] == {"job_id": "half_past", "decorator": "app/schedules.py:5"}
    assert (by_key["every-other-night"]["trigger"], by_key["every-other-night"]["trigger_kwargs"]) == (
        "interval",
        {"days": 2},
    )
    assert "monday-night" not in by_key  # the shim's IntervalTrigger(monday=1) failed: a stub, not a schedule
    assert "Keep the decorator at app/schedules.py line 10 (monday_night)" in text


def test_unknown_version_reports_both_readings_and_migrates_nothing(tmp_path: Path) -> None:
    by_key, lines, text = _migrate(tmp_path, None)
    assert by_key == {}
    report = "\n".join(lines)
    assert (
        "app/schedules.py:5: cannot migrate half_past: its meaning depends on the orchestrator-core version: "
        "up to 4.3 (the `schedule` package): cron {minute: 30}; 4.4+ (APScheduler): interval {hours: 1}; "
        "rerun with --orchestrator-version (e.g. 4.2 or 4.8)"
    ) in report
    assert "app/schedules.py:15: cannot migrate every_other_night: its meaning depends" in report
    assert "Keep the decorators at app/schedules.py line 5 (half_past), line 10 (monday_night), line 15" in text
    assert "delete the decorator" not in text


def test_the_version_pinned_in_the_tree_decides(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["orchestrator-core==4.2.0"]\n')
    by_key, lines, _ = _migrate(tmp_path, None)
    assert by_key["half-past"]["trigger_kwargs"] == {"minute": 30}
    assert (
        "orchestrator-core 4.2.0 (pyproject.toml): @scheduler(...) read as up to 4.3 (the `schedule` package)" in lines
    )


def test_a_bad_version_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    result = run([Path("app")], Path("out"), include_core=False, cwd=tmp_path, orchestrator_version="latest")
    assert result.exit_code == 2
    assert [str(line) for line in result.lines] == [
        "--orchestrator-version: orchestrator-core version 'latest' is not MAJOR.MINOR[.PATCH] (e.g. 4.2, 4.8, 5.5)"
    ]
