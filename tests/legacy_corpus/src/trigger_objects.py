"""Trigger instances, zone objects and datetime literals instead of plain strings."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytz
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from orchestrator.core.schedules.scheduler import scheduler
from orchestrator.core.services.processes import start_process


@scheduler.scheduled_job(CronTrigger(hour=3, minute=15, timezone="Europe/Amsterdam"), id="cron-object")
def cron_object() -> None:
    start_process("task_cron_object")


@scheduler.scheduled_job(CronTrigger.from_crontab("0 4 * * 1-5"), id="from-crontab")
def from_crontab() -> None:
    start_process("task_from_crontab")


@scheduler.scheduled_job(IntervalTrigger(minutes=10, start_date=datetime(2030, 1, 1, 0, 5)), id="interval-object")
def interval_object() -> None:
    start_process("task_interval_object")


@scheduler.scheduled_job("cron", hour=7, timezone=ZoneInfo("America/New_York"), id="zoneinfo")
def zoneinfo_zone() -> None:
    start_process("task_zoneinfo")


@scheduler.scheduled_job("interval", hours=1, timezone=pytz.utc, id="pytz-utc")
def pytz_utc() -> None:
    start_process("task_pytz_utc")


@scheduler.scheduled_job(
    CalendarIntervalTrigger(months=1, hour=4, start_date="2030-01-31", timezone="Europe/Berlin"), id="monthly"
)
def monthly() -> None:
    start_process("task_monthly")


@scheduler.scheduled_job("cron", day_of_week="0-4", hour=8, id="weekdays-numeric")
def weekdays_numeric() -> None:
    start_process("task_weekdays_numeric")


@scheduler.scheduled_job(CronTrigger(hour=5), minute=30, id="ignored-minute")
def ignored_minute() -> None:
    start_process("task_ignored_minute")
