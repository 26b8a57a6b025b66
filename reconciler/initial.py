"""orchestrator-core's initial schedules, as data.

These are the five schedules that ``python main.py scheduler load-initial-schedule`` registers
(``INITIAL_SCHEDULES`` in orchestrator-core 5.5.0, ``orchestrator/core/cli/scheduler.py``). They are
restated here rather than imported so that `load-initial-schedule` works without orchestrator-core
installed and its output never changes because a dependency was upgraded; a test compares this table
with the installed orchestrator-core.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CORE_ORIGIN = "INITIAL_SCHEDULES in orchestrator/core/cli/scheduler.py"
CORE_FILENAME = "core.yaml"


@dataclass(frozen=True)
class InitialSchedule:
    """One of orchestrator-core's initial schedules, under the key this project gives it."""

    key: str
    name: str
    workflow_name: str
    trigger: str
    trigger_kwargs: Mapping[str, int]

    def as_schedule(self, timezone: str) -> dict[str, Any]:
        """The schedule-file fields of this schedule (the shape `yaml_writer` takes)."""
        return {
            "key": self.key,
            "workflow_name": self.workflow_name,
            "name": self.name,
            "trigger": self.trigger,
            "trigger_kwargs": dict(self.trigger_kwargs),
            "timezone": timezone,
        }


# Keys are the workflow names in key spelling ('_' is not allowed in a key): stable, readable, and
# unique because orchestrator-core registers at most one initial schedule per workflow.
CORE_INITIAL_SCHEDULES: tuple[InitialSchedule, ...] = (
    InitialSchedule(
        key="task-resume-workflows",
        name="Task Resume Workflows",
        workflow_name="task_resume_workflows",
        trigger="interval",
        trigger_kwargs={"hours": 1},
    ),
    InitialSchedule(
        key="task-clean-up-tasks",
        name="Task Clean Up Tasks",
        workflow_name="task_clean_up_tasks",
        trigger="interval",
        trigger_kwargs={"hours": 6},
    ),
    InitialSchedule(
        key="task-validate-subscriptions",
        name="Task Validate Subscriptions",
        workflow_name="task_validate_subscriptions",
        trigger="cron",
        trigger_kwargs={"hour": 0, "minute": 10},
    ),
    InitialSchedule(
        key="task-validate-products",
        name="Task Validate Products",
        workflow_name="task_validate_products",
        trigger="cron",
        trigger_kwargs={"hour": 2, "minute": 30},
    ),
    InitialSchedule(
        key="task-validate-awaiting-callbacks",
        name="Task Validate Awaiting Callbacks",
        workflow_name="task_validate_awaiting_callbacks",
        trigger="interval",
        trigger_kwargs={"seconds": 30},
    ),
)
