"""What the ledger records for each key is a decision of the plan, carried by its `Change`; apply only executes it.

Issue 12 item 1: a fired `date` schedule (its row deleted by the scheduler, by design) must not make apply
write a linker row for the missing job (a foreign-key violation that broke every later apply).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from reconciler import apply as applier
from reconciler import store
from reconciler.apply import ApplySettings
from reconciler.commands.validate import load_desired
from reconciler.plan import Action, PlanSettings, schedule_id_for
from tests.test_reconcile import delete_job, jobs, links, schedule, write_schedules


def _ledger(db: str) -> dict[str, store.LedgerEntry]:
    engine = store.connect(db)
    with engine.connect() as conn:
        entries = {e.key: e for e in store.read_ledger(conn)}
    engine.dispose()
    return entries


def _absent(db: str) -> frozenset[str]:
    engine = store.connect(db)
    with engine.connect() as conn:
        found = store.absent_keys(conn, "default")
    engine.dispose()
    return found


def test_a_fired_date_schedule_does_not_break_later_applies(db_url: str, tmp_path: Path) -> None:
    """Apply, let the scheduler fire the `date` job (it deletes the row), then apply an unrelated change later."""
    start = datetime.now(UTC).replace(microsecond=0)
    later = start + timedelta(minutes=10)
    run_date = (start + timedelta(minutes=1)).isoformat()
    d = tmp_path / "s"
    once = schedule("once", trigger="date", trigger_kwargs={"run_date": run_date})
    write_schedules(d, once, schedule("other"))
    settings, apply_settings = PlanSettings(), ApplySettings(guard_seconds=0)
    engine = store.connect(db_url)
    try:
        first = applier.apply(
            engine, load_desired(d, now=start).schedules, settings, apply_settings, clock=lambda: start
        )
        assert first.verified and first.plan.summary["create"] == 2
        recorded = _ledger(db_url)["once"]
        delete_job(db_url, "once")  # the scheduler ran it: APScheduler removes a date job's row (cascading its link)

        write_schedules(d, once, schedule("other", name="Other, renamed"))
        desired = load_desired(d, now=later, completed=_absent(db_url)).schedules
        dry = applier.dry_run(engine, desired, settings, later)
        (change,) = [c for c in dry.changes if c.key == "once"]
        assert change.completed and change.action is Action.NOOP
        result = applier.apply(engine, desired, settings, apply_settings, clock=lambda: later)
        assert result.verified, result.remaining
        assert [c.key for c in result.plan.pending] == ["other"]

        once_id = schedule_id_for("default", "once")
        assert once_id not in jobs(db_url)
        assert [s for _, s in links(db_url)] == [schedule_id_for("default", "other")]
        assert _ledger(db_url)["once"] == recorded  # completed: the entry stays exactly as it was applied
        with engine.connect() as conn:
            names = [r.id for r in conn.execute(select(store.apscheduler_jobs.c.id))]
        assert names == [schedule_id_for("default", "other")]

        again = applier.apply(engine, desired, settings, apply_settings, clock=lambda: later)
        assert not again.plan.has_changes and again.verified
    finally:
        engine.dispose()
