"""orchestrator-core's deprecated decorator (4.x path), imported under an alias."""

from orchestrator.schedules.scheduling import scheduler as s
from orchestrator.services.processes import start_process


@s(name="Validate products", time_unit="day", at="02:30")
def validate_products() -> None:
    start_process("task_validate_products")


@s("Resume workflows", "hours", 1, id="resume")
def resume() -> None:
    start_process("task_resume_workflows")


@s("Every minute", "minute")
def every_minute() -> None:
    start_process("task_every_minute")


@s("Daily, at ignored", time_unit="days", at="01:00")
def daily_at_ignored() -> None:
    start_process("task_daily")


@s("Weekly", time_unit="weeks", period=2)
def fortnightly() -> None:
    start_process("task_fortnightly")


@s("Bad unit", time_unit="week")
def bad_unit() -> None:
    start_process("task_bad_unit")


@s("Bad at", time_unit="day", at="1:30:00")
def bad_at() -> None:
    start_process("task_bad_at")
