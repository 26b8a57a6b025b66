"""Keys, ids, job options and triggers that need care."""

from orchestrator.core.schedules.scheduler import scheduler
from orchestrator.core.services.processes import start_process


@scheduler.scheduled_job("cron", hour=1, id="Nightly Sync!")
def first_sync() -> None:
    start_process("task_first_sync")


@scheduler.scheduled_job("cron", hour=2)
def nightly_sync() -> None:
    start_process("task_second_sync")


@scheduler.scheduled_job("interval", hours=1, id="duplicate")
def duplicate_one() -> None:
    start_process("task_duplicate_one")


@scheduler.scheduled_job("interval", hours=2, id="duplicate")
def duplicate_two() -> None:
    start_process("task_duplicate_two")


@scheduler.scheduled_job("interval", hours=1, id="paused", next_run_time=None)
def paused() -> None:
    start_process("task_paused")


@scheduler.scheduled_job("date", run_date="2031-06-01 12:00:00", id="one-off")
def one_off() -> None:
    start_process("task_one_off")


@scheduler.scheduled_job("date", run_date="2020-01-01 00:00:00", id="long-gone")
def long_gone() -> None:
    start_process("task_long_gone")


@scheduler.scheduled_job("date", id="at-start")
def at_start() -> None:
    start_process("task_at_start")


@scheduler.scheduled_job("cron", hour=25, id="bad-hour")
def bad_hour() -> None:
    start_process("task_bad_hour")


@scheduler.scheduled_job("interval", hours=1, id="no-limit", misfire_grace_time=None)
def no_limit() -> None:
    start_process("task_no_limit")


@scheduler.scheduled_job("interval", hours=1, id="with-args", args=[42])
def with_args(answer: int) -> None:
    start_process("task_with_args", user_inputs=[{"answer": answer}])


def register() -> None:
    @scheduler.scheduled_job("interval", hours=1, id="nested")
    def nested() -> None:
        start_process("task_nested")


@scheduler.scheduled_job("interval", seconds=60 * 60 * 24, id="daily-seconds")
def daily_seconds() -> None:
    start_process("task_daily_seconds")
