"""Positional and keyword triggers on a scheduler imported under another name."""

from orchestrator.core.schedules.scheduler import scheduler as sched
from orchestrator.core.services.processes import start_process


@sched.scheduled_job("interval", hours=12, id="validate-subscriptions", name="Validate subscriptions")
def validate_subscriptions() -> None:
    start_process("task_validate_subscriptions")


@sched.scheduled_job("cron", hour=1)
def clean_up_tasks() -> None:
    start_process("task_clean_up_tasks")


@sched.scheduled_job(trigger="interval", minutes=0.5, jitter=5, misfire_grace_time=30)
def resume_workflows():
    return start_process("task_resume_workflows")


@sched.scheduled_job("cron", day_of_week="mon-fri", hour="9-17", minute="*/15", timezone="UTC")
def office_hours_check():
    start_process(workflow_key="task_office_hours_check")
