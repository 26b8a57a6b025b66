"""`load-initial-schedule` round trip: legacy decorators → YAML → validate → reconcile → apscheduler_jobs.

tests/test_legacy.py proves that the YAML describes the trigger each decorator made. This proves the
rest of the way: the corpus is migrated (into tmp), validated and reconciled into a real database
(SQLite and PostgreSQL, with the corpus' workflows inserted first), and every job read back from
``apscheduler_jobs`` (with `jobstate.load_job_state`, as the planner reads it) has the decorator's
trigger — equal in canonical form and in its next 10 fire times — its options, its workflow and
inputs, and a next_run_time that is the decorator's next fire time at the moment of the apply.

The decorator's side is built as tests/test_legacy.py builds it: APScheduler's own ``scheduled_job``
(or orchestrator-core's deprecated ``scheduler``) evaluated on a UTC scheduler, the zone the YAML
writes in place of the old host zone.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from reconciler import legacy, store, triggers
from reconciler.commands import load_initial
from reconciler.commands.validate import load_desired
from reconciler.jobstate import load_job_state
from reconciler.spec import DesiredSchedule
from tests.conftest import init_compatible
from tests.test_legacy import (  # the equivalence test's helpers: same decorator evaluation
    NOW,
    SOURCES,
    _apscheduler_job,
    _migrated,
    _strip_jitter,
    utc_host,
)
from tests.test_reconcile import reconcile

__all__ = ["utc_host"]  # a fixture, used by name below

FIRE_TIMES = 10


def migrate_corpus(tmp_path: Path) -> Path:
    """`schedules load-initial-schedule --from <corpus> --out <tmp>` (paths shown relative to the corpus)."""
    out = tmp_path / "schedules.d"
    # A copy outside this repository: in place, the orchestrator-core pinned in our own pyproject.toml would
    # decide what `@scheduler(...)` meant, while the corpus stands for code whose version is unknown.
    corpus = tmp_path / "corpus"
    shutil.copytree(SOURCES, corpus)
    result = load_initial.run([Path(".")], out, include_core=False, now=NOW, cwd=corpus)
    assert result.exit_code == 0, [str(line) for line in result.lines]
    return out


def origins(desired: list[DesiredSchedule]) -> dict[str, str]:
    """key → the decorator it came from, read from the ``# from <path>:<line> <function>`` comment above it."""
    found: dict[str, str] = {}
    for schedule in desired:
        assert schedule.source is not None
        lines = Path(schedule.source.path).read_text().splitlines()
        index = schedule.source.line - 2
        while index >= 0 and lines[index].strip().startswith("#"):
            comment = lines[index].strip().lstrip("#").strip()
            if comment.startswith("from "):
                found[schedule.key] = comment.removeprefix("from ")
                break
            index -= 1
    return found


def add_workflows(db: str, names: set[str]) -> None:
    """The corpus' workflows that the database lacks, as a project's migration would insert them."""
    engine = init_compatible(db)
    with store.write_transaction(engine) as conn:
        existing = {w.name for w in store.read_workflows(conn)}
        missing = sorted(names - existing)
        if missing:
            conn.execute(
                store.workflows.insert(),
                [
                    {"workflow_id": uuid.uuid4(), "name": n, "target": "SYSTEM", "description": n, "is_task": True}
                    for n in missing
                ],
            )
    engine.dispose()


def stored(db: str) -> tuple[dict[str, str], dict[str, tuple[float | None, dict[str, Any]]]]:
    """The ledger (key → schedule_id) and every job row, decoded with the allow-list unpickler."""
    engine = store.connect(db)
    with engine.connect() as conn:
        ledger = {r.key: r.schedule_id for r in conn.execute(select(store.ledger))}
        rows = {
            r.id: (r.next_run_time, load_job_state(bytes(r.job_state)))
            for r in conn.execute(select(store.apscheduler_jobs))
        }
    engine.dispose()
    return ledger, rows


@pytest.mark.orchestrator  # the deprecated decorator is evaluated with orchestrator-core's own code
def test_migrated_corpus_reconciles_to_the_decorators_triggers(db_url: str, tmp_path: Path, utc_host: None) -> None:
    out = migrate_corpus(tmp_path)
    loaded = load_desired(out, now=datetime.now(UTC))
    assert loaded.ok, [str(p) for p in loaded.problems if p.is_error]
    desired = {d.key: d for d in loaded.schedules}
    decorators = {str(s.origin): s for s in _migrated()}
    source_of = origins(loaded.schedules)
    assert sorted(source_of.values()) == sorted(decorators)  # every migrated decorator, each once
    assert len(desired) == len(decorators)

    add_workflows(db_url, {d.workflow_name for d in desired.values()})
    before = datetime.now(UTC)
    applied = reconcile(out, db_url)
    after = datetime.now(UTC)
    assert applied.exit_code == 0, (applied.out, applied.err)
    ledger, rows = stored(db_url)
    assert sorted(ledger) == sorted(desired)

    compared = 0
    for key, schedule in sorted(desired.items()):
        legacy_schedule: legacy.LegacySchedule = decorators[source_of[key]]
        job = _apscheduler_job(legacy_schedule)  # what the decorator made, on a UTC host
        if not schedule.enabled:
            # A paused decorator job (next_run_time=None) became `enabled: false`: owned, but no row.
            assert getattr(job, "next_run_time", "unset") is None
            assert ledger[key] not in rows
            continue
        next_run_column, state = rows[ledger[key]]
        ours, theirs = state["trigger"], job.trigger

        # An interval without start_date starts "now + interval" when it is built: the decorator's phase is
        # its scheduler's clock, ours the apply's. Compared as a length, then fire times from one start.
        clock_phase = isinstance(theirs, IntervalTrigger) and "start_date" not in schedule.trigger_kwargs
        assert triggers.canonical_form(ours, phase=not clock_phase) == triggers.canonical_form(
            theirs, phase=not clock_phase
        ), key
        if clock_phase:
            assert before < ours.start_date.astimezone(UTC) - ours.interval <= after
            theirs.start_date = ours.start_date
        # The row's next_run_time is the decorator's next fire time at the moment of the apply (a fire
        # time passing during the apply may advance it by one), plus the trigger's random jitter as
        # APScheduler adds it; and the column agrees with the pickle.
        first = state["next_run_time"]
        assert next_run_column == first.timestamp()
        jitter = timedelta(seconds=getattr(theirs, "jitter", None) or 0)
        upcoming = triggers.next_fire_times(_strip_jitter(theirs), 3, before)
        planned = [t for t in upcoming if t <= first <= t + jitter]
        assert planned, (key, first, upcoming)
        assert all(t < after for t in upcoming[: upcoming.index(planned[0])]), key

        now = datetime.now(UTC)
        ours_times = triggers.next_fire_times(_strip_jitter(ours), FIRE_TIMES, now)
        theirs_times = triggers.next_fire_times(theirs, FIRE_TIMES, now)
        assert [t.astimezone(UTC) for t in ours_times] == [t.astimezone(UTC) for t in theirs_times], key
        assert len(ours_times) == (1 if isinstance(theirs, DateTrigger) else FIRE_TIMES), key

        # The rest of the job: options as the decorator set them, the workflow and inputs of its body.
        # A pending job (its scheduler never started) has only the options its decorator set; the rest are
        # the scheduler's defaults at start, which are orchestrator-core's: 1, true, 1.
        assert (state["misfire_grace_time"], state["coalesce"], state["max_instances"]) == (
            getattr(job, "misfire_grace_time", 1),
            getattr(job, "coalesce", True),
            getattr(job, "max_instances", 1),
        ), key
        assert state["kwargs"] == {"workflow_name": schedule.workflow_name, "user_inputs": schedule.user_inputs}
        assert schedule.workflow_name == legacy_schedule.schedule["workflow_name"]
        if "name" in legacy_schedule.schedule:
            assert state["name"] == job.name, key
        compared += 1
    assert compared == sum(1 for d in desired.values() if d.enabled) >= 25

    # Applied once, the corpus is a fixed point: the next plan has nothing to do.
    again = reconcile(out, db_url, dry_run=True, detailed_exitcode=True)
    assert again.exit_code == 0, again.out
