from orchestrator.schedules.scheduling import scheduler
from orchestrator.services.processes import start_process


@scheduler(name="Listed", time_unit="hours", period=6)
def listed_job() -> None:
    start_process("task_listed")


@scheduler(name="Also listed", time_unit="minutes", period=10)
def other_listed() -> None:
    start_process("task_other_listed")


@scheduler(name="Forgotten", time_unit="day", at="04:00")
def forgotten_job() -> None:
    start_process("task_forgotten")
