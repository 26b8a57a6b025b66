"""Bodies that start one workflow, and bodies that do more (reported, never guessed)."""

import os

import structlog
from myapp.helpers import start_process as start_process_helper
from myapp.subscriptions import active_subscriptions
from orchestrator.core.db import db
from orchestrator.core.schedules.scheduler import scheduler
from orchestrator.core.services.processes import start_process

logger = structlog.get_logger(__name__)


@scheduler.scheduled_job("cron", hour=4, id="sync-ims")
def sync_ims() -> None:
    """Synchronise IMS every night."""
    logger.info("Scheduling IMS sync")
    start_process("task_sync_ims", user_inputs=[{"full_sync": True, "regions": ["north", "south"]}])


@scheduler.scheduled_job("cron", hour=5, id="scoped")
def scoped() -> None:
    with db.database_scope():
        start_process("task_scoped")
    logger.info("done")


@scheduler.scheduled_job("interval", hours=1, id="per-subscription")
def per_subscription() -> None:
    for subscription in active_subscriptions():
        start_process("task_validate_subscription", [{"subscription_id": subscription}])


@scheduler.scheduled_job("interval", hours=2, id="maybe")
def maybe() -> None:
    if os.environ.get("ENABLE_SYNC"):
        start_process("task_sync")


@scheduler.scheduled_job("interval", hours=3, id="guarded")
def guarded() -> None:
    try:
        start_process("task_guarded")
    except Exception:
        logger.exception("failed")


@scheduler.scheduled_job("interval", hours=4, id="other-call")
def other_call() -> None:
    active_subscriptions()


@scheduler.scheduled_job("interval", hours=5, id="two-calls")
def two_calls() -> None:
    start_process("task_a")
    start_process("task_b")


@scheduler.scheduled_job("interval", hours=6, id="dynamic-name")
def dynamic_name() -> None:
    start_process(os.environ["WORKFLOW"])


@scheduler.scheduled_job("interval", hours=7, id="computed-inputs")
def computed_inputs() -> None:
    start_process("task_computed", user_inputs=[{"ids": active_subscriptions()}])


@scheduler.scheduled_job("interval", hours=8, id="helper")
def helper() -> None:
    start_process_helper("task_helper")


@scheduler.scheduled_job("interval", hours=9, id="as-user")
def as_user() -> None:
    start_process("task_as_user", user="alice")


@scheduler.scheduled_job("interval", hours=10, id="empty")
def empty() -> None:
    """Nothing here yet."""
