"""The function a legacy decorator scheduled, importable so that a real APScheduler job store can store its job.

orchestrator-core 4.4–4.6 shipped `@scheduler.scheduled_job(id="resume-workflows", ...)` on a function like
this one; tests/test_decorator_takeover.py writes that job's row with APScheduler's own SQLAlchemyJobStore.
"""

from __future__ import annotations


def run_resume_workflows() -> None:
    """Never called: only its reference is stored."""
