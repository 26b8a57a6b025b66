"""Decorator arguments read from the environment or computed: reported, never guessed."""

import os

from myapp.settings import SCHEDULE, TIMEZONE
from orchestrator.core.schedules.scheduler import scheduler
from orchestrator.core.services.processes import start_process

TRIGGER = "interval"
SYNC_MINUTES = 15


@scheduler.scheduled_job("interval", hours=int(os.environ["SYNC_HOURS"]), id="env-hours")
def env_hours() -> None:
    start_process("task_env_hours")


@scheduler.scheduled_job("cron", hour=os.getenv("SYNC_HOUR", "1"), id="env-hour")
def env_hour() -> None:
    start_process("task_env_hour")


@scheduler.scheduled_job(TRIGGER, minutes=5, id="constant-trigger")
def constant_trigger() -> None:
    start_process("task_constant_trigger")


@scheduler.scheduled_job("cron", id="splat", **SCHEDULE)
def splat() -> None:
    start_process("task_splat")


@scheduler.scheduled_job("cron", hour=2, timezone=TIMEZONE, id="zone-setting")
def zone_setting() -> None:
    start_process("task_zone_setting")


@scheduler.scheduled_job("interval", minutes=SYNC_MINUTES * 2, id="computed")
def computed() -> None:
    start_process("task_computed")
