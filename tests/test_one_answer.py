"""One answer for one database: the digest fast path and the full comparison are the same function of the same facts.

Issue 12 item 3: with an extra linker row inserted behind the reconciler's back, the fast path said
`No changes` while the full comparison (after invalidating the ledger's row hash) reported the drift.
"""

from __future__ import annotations

from pathlib import Path

from reconciler import store
from reconciler.plan import Action, Change, schedule_id_for
from tests.test_reconcile import links, reconcile, schedule, write_schedules


def _add_link(db: str, workflow_name: str, schedule_id: str) -> str:
    engine = store.connect(db)
    with store.write_transaction(engine) as conn:
        workflow = {w.name: w for w in store.read_workflows(conn)}[workflow_name]
        store.insert_links(conn, [(workflow.workflow_id, schedule_id)])
    engine.dispose()
    return workflow.workflow_id


def _forget_row_hashes(db: str) -> None:
    """Invalidate the ledger's row hashes: the next plan must compare every row in full."""
    engine = store.connect(db)
    with store.write_transaction(engine) as conn:
        conn.execute(store.ledger.update().values(row_hash=None))
    engine.dispose()


def _facts(change: Change) -> tuple[object, ...]:
    return (change.key, change.action, change.drift, change.fields, change.write_row, change.remove_row)


def test_an_extra_linker_row_is_the_same_drift_on_the_fast_path_and_in_full(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    write_schedules(d, schedule("a"), schedule("b"))
    assert reconcile(d, db_url).exit_code == 0
    a_id = schedule_id_for("default", "a")
    extra = _add_link(db_url, "task_resume_workflows", a_id)

    fast = reconcile(d, db_url, dry_run=True, detailed_exitcode=True)
    assert fast.exit_code == 2, fast.out
    assert fast.plan is not None
    (change,) = fast.plan.pending
    assert change.key == "a" and change.action is Action.UPDATE and change.drift
    assert [f.name for f in change.fields] == ["linked workflow"]
    assert extra in change.fields[0].before and extra not in change.fields[0].after

    _forget_row_hashes(db_url)
    full = reconcile(d, db_url, dry_run=True, detailed_exitcode=True)
    assert full.exit_code == 2 and full.plan is not None
    assert [_facts(c) for c in full.plan.changes] == [_facts(c) for c in fast.plan.changes]
    assert full.plan.fingerprint == fast.plan.fingerprint

    applied = reconcile(d, db_url)
    assert applied.exit_code == 0, applied.err
    assert extra not in {w for w, s in links(db_url) if s == a_id}
    assert reconcile(d, db_url, dry_run=True, detailed_exitcode=True).exit_code == 0
