"""One function, several schedules; every job option and trigger argument written out."""

from apscheduler.schedulers.background import BackgroundScheduler
from orchestrator.core.services.processes import start_process

scheduler = BackgroundScheduler()


@scheduler.scheduled_job("cron", hour=6, minute=30, timezone="Europe/Amsterdam", id="report-morning")
@scheduler.scheduled_job("cron", hour=18, minute=30, timezone="Europe/Amsterdam", id="report-evening")
@scheduler.scheduled_job(
    "interval",
    days=7,
    start_date="2030-01-07 03:00:00",
    end_date="2031-01-01",
    jitter=120,
    id="report-weekly",
    name="Weekly report",
    misfire_grace_time=600,
    coalesce=False,
    max_instances=2,
)
def send_report() -> None:
    start_process("task_send_report", user_inputs=[{"recipients": ["noc@example.org"], "full": True}])
