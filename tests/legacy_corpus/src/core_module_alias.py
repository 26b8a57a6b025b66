"""orchestrator-core's deprecated decorator through module aliases (5.x path)."""

import orchestrator.core.schedules.scheduling as sch
from orchestrator.core.schedules import scheduling
from orchestrator.core.services.processes import start_process


@sch.scheduler(name="Validate awaiting callbacks", time_unit="second", period=30, id="callbacks")
def validate_callbacks() -> None:
    start_process("task_validate_awaiting_callbacks")


@scheduling.scheduler("Nightly import", "day", at="23:05")
def nightly_import() -> None:
    start_process("task_nightly_import")
