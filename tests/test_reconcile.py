"""Plan and apply against real SQLite and real PostgreSQL (no mocked database)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select, text

from reconciler import reads, store
from reconciler.apply import ApplySettings
from reconciler.commands.reconcile import Outcome, ReconcileOptions, run
from reconciler.jobstate import build_job_row, load_job_state
from reconciler.plan import PlanSettings, schedule_id_for
from tests.command_line import Schedules
from tests.conftest import init_compatible

REPO = Path(__file__).resolve().parent.parent


def schedule(key: str, **fields: Any) -> str:
    spec: dict[str, Any] = {
        "key": key,
        "workflow_name": "task_clean_up_tasks",
        "trigger": "interval",
        "trigger_kwargs": {"hours": 1},
    }
    spec.update(fields)
    return json.dumps(spec)


def write_schedules(directory: Path, *specs: str, name: str = "main.yaml") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    body = "schedules:\n" + "".join(f"  - {s}\n" for s in specs) if specs else "schedules: []\n"
    (directory / name).write_text(body)


def reconcile(directory: Path, db: str, **kw: Any) -> Outcome:
    settings = PlanSettings(
        **{k: kw.pop(k) for k in ("max_deletes", "allow_empty", "namespace", "source", "adopt_from") if k in kw}
    )
    apply_kw = {k: kw.pop(k) for k in ("guard_seconds", "lock_timeout", "redis_url") if k in kw}
    opts = ReconcileOptions(directory=directory, db_url=db, settings=settings, apply=ApplySettings(**apply_kw), **kw)
    return run(opts)


def jobs(db: str) -> dict[str, tuple[float | None, bytes]]:
    engine = store.connect(db)
    with engine.connect() as conn:
        rows = {r.id: (r.next_run_time, bytes(r.job_state)) for r in conn.execute(select(store.apscheduler_jobs))}
    engine.dispose()
    return rows


def links(db: str) -> list[tuple[str, str]]:
    engine = store.connect(db)
    with engine.connect() as conn:
        rows = [(str(w), s) for w, s in conn.execute(select(store.workflows_apscheduler_jobs))]
    engine.dispose()
    return sorted(rows)


def delete_job(db: str, key: str) -> None:
    """Drift: a job row removed behind the reconciler's back (as the UI, a script or a fired date job would)."""
    engine = store.connect(db)
    with store.write_transaction(engine) as conn:
        sid = schedule_id_for("default", key)
        conn.execute(store.apscheduler_jobs.delete().where(store.apscheduler_jobs.c.id == sid))
    engine.dispose()


def add_foreign_rows(db: str) -> tuple[str, str]:
    """An API-style job (random uuid4, linked, orchestrator's func) and a garbage row."""
    engine = init_compatible(db)
    api_id = str(uuid.uuid4())
    with store.write_transaction(engine) as conn:
        wf = {w.name: w for w in store.read_workflows(conn)}["task_validate_products"]
        trig = IntervalTrigger(hours=2, timezone="Etc/UTC")
        row = build_job_row(
            job_id=api_id,
            trigger=trig,
            workflow_name="task_validate_products",
            user_inputs=[{}],
            name="Made in the UI",
            next_run_time=trig.get_next_fire_time(None, datetime.now(UTC)),
        )
        store.insert_jobs(conn, [row], [(wf.workflow_id, api_id)])
        conn.execute(
            store.apscheduler_jobs.insert().values(id="garbage", next_run_time=None, job_state=b"\x80\x05junk")
        )
    engine.dispose()
    return api_id, "garbage"


def test_lifecycle_create_idempotent_update_delete_rename(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "schedules.d"
    api_id, garbage = add_foreign_rows(db_url)
    foreign_before = {k: v for k, v in jobs(db_url).items() if k in (api_id, garbage)}

    write_schedules(d, schedule("alpha", name="Alpha"), schedule("beta", trigger="cron", trigger_kwargs={"hour": 3}))
    created = reconcile(d, db_url)
    assert created.exit_code == 0, created.err
    assert created.plan is not None and created.plan.summary["create"] == 2
    alpha_id = schedule_id_for("default", "alpha")
    rows = jobs(db_url)
    assert alpha_id in rows and schedule_id_for("default", "beta") in rows
    assert (load_job_state(rows[alpha_id][1])["next_run_time"].timestamp()) == rows[alpha_id][0]

    again = reconcile(d, db_url, dry_run=True, detailed_exitcode=True)
    assert again.exit_code == 0, again.out  # idempotent: nothing left to do
    assert jobs(db_url) == rows

    # a name change keeps next_run_time
    write_schedules(
        d,
        schedule("alpha", name="Alpha renamed"),
        schedule("beta", trigger="cron", trigger_kwargs={"hour": 3}),
    )
    pending = reconcile(d, db_url, dry_run=True, detailed_exitcode=True)
    assert pending.exit_code == 2
    assert reconcile(d, db_url).exit_code == 0
    after_name = jobs(db_url)
    assert after_name[alpha_id][0] == rows[alpha_id][0]
    assert load_job_state(after_name[alpha_id][1])["name"] == "Alpha renamed"
    assert after_name[schedule_id_for("default", "beta")] == rows[schedule_id_for("default", "beta")]

    # a trigger change computes a new next_run_time
    write_schedules(
        d,
        schedule("alpha", name="Alpha renamed", trigger_kwargs={"minutes": 5}),
        schedule("beta", trigger="cron", trigger_kwargs={"hour": 3}),
    )
    assert reconcile(d, db_url).exit_code == 0
    after_trigger = jobs(db_url)
    assert after_trigger[alpha_id][0] != after_name[alpha_id][0]
    assert after_trigger[alpha_id][0] < after_name[alpha_id][0]  # every 5 min comes sooner than every hour

    # rename with moved_from keeps the id (and the phase)
    write_schedules(
        d,
        schedule("alpha-2", name="Alpha renamed", trigger_kwargs={"minutes": 5}, moved_from="alpha"),
        schedule("beta", trigger="cron", trigger_kwargs={"hour": 3}),
    )
    renamed = reconcile(d, db_url)
    assert renamed.exit_code == 0, renamed.err
    assert renamed.plan is not None and [c.action.value for c in renamed.plan.pending] == ["rename"]
    assert jobs(db_url)[alpha_id] == after_trigger[alpha_id]

    # removing the file's entry deletes the job
    write_schedules(d, schedule("alpha-2", name="Alpha renamed", trigger_kwargs={"minutes": 5}))
    deleted = reconcile(d, db_url)
    assert deleted.exit_code == 0
    final = jobs(db_url)
    assert schedule_id_for("default", "beta") not in final
    assert alpha_id in final

    # the API job and the garbage row were never touched
    assert {k: v for k, v in final.items() if k in (api_id, garbage)} == foreign_before
    unmanaged = {u.id: u.source for u in deleted.plan.unmanaged} if deleted.plan else {}
    assert unmanaged == {api_id: "api", garbage: "unreadable"}


def test_equivalent_spelling_is_a_noop(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    write_schedules(d, schedule("c", trigger="cron", trigger_kwargs={"hour": 3}))
    assert reconcile(d, db_url).exit_code == 0
    before = jobs(db_url)
    write_schedules(
        d,
        schedule("c", trigger="cron", trigger_kwargs={"hour": "3", "minute": 0, "second": "0"}, timezone="Etc/UTC"),
    )
    plan = reconcile(d, db_url, dry_run=True, detailed_exitcode=True)
    assert plan.exit_code == 0, plan.out
    assert reconcile(d, db_url).exit_code == 0
    assert jobs(db_url) == before


def test_drift_is_shown_and_corrected(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    write_schedules(d, schedule("a", name="A"))
    assert reconcile(d, db_url).exit_code == 0
    sid = schedule_id_for("default", "a")
    delete_job(db_url, "a")
    plan = reconcile(d, db_url, dry_run=True)
    assert plan.plan is not None
    change = plan.plan.pending[0]
    assert change.drift and change.action.value == "update"
    assert reconcile(d, db_url).exit_code == 0
    assert sid in jobs(db_url)
    assert (store_link := links(db_url)) and any(s == sid for _, s in store_link)


def test_disabled_schedule_has_no_row_but_stays_owned(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    write_schedules(d, schedule("a"))
    assert reconcile(d, db_url).exit_code == 0
    write_schedules(d, schedule("a", enabled=False))
    assert reconcile(d, db_url).exit_code == 0
    assert schedule_id_for("default", "a") not in jobs(db_url)
    assert reconcile(d, db_url, dry_run=True, detailed_exitcode=True).exit_code == 0
    write_schedules(d, schedule("a"))
    assert reconcile(d, db_url).exit_code == 0
    assert schedule_id_for("default", "a") in jobs(db_url)


def test_safety_rails(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    write_schedules(d, *[schedule(f"k{i}") for i in range(12)], schedule("keep", protect=True))
    assert reconcile(d, db_url).exit_code == 0
    snapshot = jobs(db_url)

    # a broken file anywhere aborts before the database
    (d / "broken.yaml").write_text("schedules: [\n")
    broken = reconcile(d, db_url)
    assert broken.exit_code == 1 and "validation failed" in broken.err[-1]
    (d / "broken.yaml").unlink()

    # empty desired set with a non-empty ledger
    write_schedules(d)
    empty = reconcile(d, db_url)
    assert empty.exit_code == 1 and "--allow-empty" in empty.err[0]
    # more deletions than --max-deletes
    write_schedules(d, schedule("k0"))
    many = reconcile(d, db_url)
    assert many.exit_code == 1 and "--max-deletes 10" in many.err[0]
    assert jobs(db_url) == snapshot
    # allowed explicitly: protect: true still survives
    done = reconcile(d, db_url, max_deletes=100)
    assert done.exit_code == 0, done.err
    left = jobs(db_url)
    assert set(left) == {schedule_id_for("default", "k0"), schedule_id_for("default", "keep")}


def test_unknown_workflow_suggests_close_matches(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    write_schedules(d, schedule("a", workflow_name="task_clean_up_task"))
    init_compatible(db_url).dispose()
    out = reconcile(d, db_url)
    assert out.exit_code == 1
    assert "workflow 'task_clean_up_task' does not exist (did you mean 'task_clean_up_tasks'" in out.err[0]
    assert jobs(db_url) == {}


def test_saved_plan_applies_exactly_and_refuses_when_stale(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    init_compatible(db_url).dispose()
    write_schedules(d, schedule("a"))
    plan_file = tmp_path / "plan.json"
    saved = reconcile(d, db_url, dry_run=True, plan_out=plan_file)
    assert saved.exit_code == 0 and plan_file.exists()
    write_schedules(d, schedule("a"), schedule("b"))  # the files moved on; the saved plan did not
    applied = reconcile(d, db_url, plan_in=plan_file)
    assert applied.exit_code == 0, applied.err
    assert set(jobs(db_url)) == {schedule_id_for("default", "a")}

    stale_file = tmp_path / "stale.json"
    assert reconcile(d, db_url, dry_run=True, plan_out=stale_file).exit_code == 0
    add_foreign_rows(db_url)  # someone changed the database since
    stale = reconcile(d, db_url, plan_in=stale_file)
    assert stale.exit_code == 3 and "stale plan" in stale.err[0]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    d = tmp_path / "s"
    write_schedules(d, schedule("a"))
    db_file = tmp_path / "fresh.db"
    out = reconcile(d, f"sqlite:///{db_file}", dry_run=True, detailed_exitcode=True)
    assert out.exit_code == 2, out.err
    assert not db_file.exists()


def test_dry_run_works_with_a_read_only_role(pg_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    init_compatible(pg_url).dispose()
    write_schedules(d, schedule("a"))
    assert reconcile(d, pg_url).exit_code == 0
    role = f"ro_{uuid.uuid4().hex[:8]}"
    engine = store.connect(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(
            text(
                f"GRANT SELECT ON workflows, apscheduler_jobs, workflows_apscheduler_jobs, reconciler_ledger TO {role}"
            )
        )
    engine.dispose()
    ro_url = pg_url.replace("postgres@", f"{role}@")
    write_schedules(d, schedule("a"), schedule("b"))
    out = reconcile(d, ro_url, dry_run=True, detailed_exitcode=True)
    assert out.exit_code == 2, out.err
    refused = reconcile(d, ro_url)
    assert refused.exit_code == 1 and "permission denied" in refused.err[0]
    engine = store.connect(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP OWNED BY {role}"))
        conn.execute(text(f"DROP ROLE {role}"))
    engine.dispose()


def test_a_job_due_in_3s_is_rewritten_at_once(db_url: str, tmp_path: Path) -> None:
    # The old guard window waited for any job due within 10 s; the hold rule only for one about to fall due
    # (see tests/test_guard.py for the rule edge by edge).
    d = tmp_path / "s"
    write_schedules(d, schedule("soon", trigger_kwargs={"seconds": 3}))
    assert reconcile(d, db_url).exit_code == 0
    write_schedules(d, schedule("soon", name="renamed", trigger_kwargs={"seconds": 3}))
    out = reconcile(d, db_url, guard_seconds=10)
    assert out.exit_code == 0, out.err
    assert not any("Waited" in line for line in out.out), out.out


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_second_apply_waits_then_exits_3(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    write_schedules(d, schedule("a"))
    assert reconcile(d, db_url).exit_code == 0
    write_schedules(d, schedule("a"), schedule("b"))
    engine = store.connect(db_url)
    with store.write_transaction(engine) as conn:  # somebody else is applying
        if not store.is_sqlite(conn):
            from reconciler.apply import LOCK_KEY

            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        proc = cli("reconcile", str(d), "--db", db_url, "--lock-timeout", "1", cwd=tmp_path)
        _, err = proc.communicate(timeout=60)
    engine.dispose()
    assert proc.returncode == 3, err
    assert "lock" in err and "Traceback" not in err
    assert set(jobs(db_url)) == {schedule_id_for("default", "a")}


@pytest.mark.slow
def test_concurrent_applies_never_duplicate(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    init_compatible(db_url).dispose()
    write_schedules(d, *[schedule(f"k{i}") for i in range(30)])
    procs = [cli("reconcile", str(d), "--db", db_url, cwd=tmp_path) for _ in range(3)]
    codes = [p.wait(timeout=120) for p in procs]
    assert all(c in (0, 3) for c in codes), [p.stderr.read() if p.stderr else "" for p in procs]
    assert 0 in codes
    assert len(jobs(db_url)) == 30
    assert len(links(db_url)) == 30


def lock_waiters(engine: Any) -> int:
    # Asked on a connection of its own: pg_stat_activity is snapshotted once per transaction.
    with engine.connect() as probe:
        query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        return int(probe.execute(text(query)).scalar_one())


def test_killed_apply_leaves_previous_state(pg_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    init_compatible(pg_url).dispose()
    write_schedules(d, schedule("a"))
    assert reconcile(d, pg_url).exit_code == 0
    before = jobs(pg_url)
    write_schedules(d, schedule("a", name="changed"), *[schedule(f"n{i}") for i in range(5)])
    blocker = store.connect(pg_url)
    with blocker.connect() as conn, conn.begin():
        # The apply writes its job rows, then blocks on the ledger: kill it right there.
        conn.execute(text("LOCK TABLE reconciler_ledger IN SHARE MODE"))
        proc = cli("reconcile", str(d), "--db", pg_url, cwd=tmp_path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            waiting = lock_waiters(blocker)
            if waiting:
                break
            time.sleep(0.1)
        assert waiting, "the apply never reached its ledger write"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    blocker.dispose()
    assert jobs(pg_url) == before


def test_readme_main_command_on_embedded_default(tmp_path: Path, command_line: Schedules) -> None:
    # The embedded default is a place of the schedules directory, not of the current directory: the first
    # run from one directory and the second from another plan against the same file, named in full.
    project = tmp_path / "project"
    shutil.copytree(REPO / "schedules.d", project / "schedules.d")
    (tmp_path / "elsewhere").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URI"}
    expected = project / "schedules.db"

    def schedules(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return command_line(*args, cwd=cwd, env=env)

    out = schedules(tmp_path, "reconcile", str(project / "schedules.d"))
    assert out.returncode == 0, out.stderr
    assert "5 to create" in out.stdout
    assert f"sqlite:///{expected}" in out.stdout.split("\n\n")[0]  # the header names the file
    assert expected.exists()
    assert not (tmp_path / "schedules.db").exists()
    second = schedules(
        tmp_path / "elsewhere", "reconcile", "--dry-run", "--detailed-exitcode", "../project/schedules.d"
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "No changes." in second.stdout
    assert f"sqlite:///{expected}" in second.stdout.split("\n\n")[0]
    assert not (tmp_path / "elsewhere" / "schedules.db").exists()
    status = schedules(project / "schedules.d", "status", ".")
    assert f"Database:     sqlite:///{expected}" in status.stdout, status.stdout


def test_embedded_default_sits_at_the_repository_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URI", raising=False)
    nested = tmp_path / "repo" / "deploy" / "schedules.d"
    nested.mkdir(parents=True)
    (tmp_path / "repo" / ".git").mkdir()
    assert store.resolve_db_url(None, nested) == f"sqlite:///{tmp_path / 'repo' / 'schedules.db'}"
    assert (
        store.resolve_db_url(None, tmp_path / "loose" / "schedules.d")
        == f"sqlite:///{tmp_path / 'loose' / 'schedules.db'}"
    )
    assert store.resolve_db_url("sqlite:///rel.db", nested) == f"sqlite:///{Path.cwd() / 'rel.db'}"
    assert store.resolve_db_url("postgresql://u:p@h/db", nested) == "postgresql://u:p@h/db"


def test_interval_phase_survives_equal_respec(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    write_schedules(d, schedule("i", trigger_kwargs={"hours": 24}))
    assert reconcile(d, db_url).exit_code == 0
    first = jobs(db_url)
    write_schedules(d, schedule("i", trigger_kwargs={"days": 1}))
    assert reconcile(d, db_url).exit_code == 0
    assert jobs(db_url) == first
    state = load_job_state(first[schedule_id_for("default", "i")][1])
    assert state["next_run_time"] - datetime.now(UTC) > timedelta(hours=23)


def test_fired_date_schedule_is_completed_not_an_error(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    run_date = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    write_schedules(d, schedule("once", trigger="date", trigger_kwargs={"run_date": run_date}), schedule("other"))
    assert reconcile(d, db_url).exit_code == 0
    # The scheduler fires it and removes the row, as APScheduler does with a date job; time moves on.
    delete_job(db_url, "once")
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    write_schedules(d, schedule("once", trigger="date", trigger_kwargs={"run_date": past}), schedule("other"))
    plan = reconcile(d, db_url, dry_run=True, detailed_exitcode=True)
    assert plan.exit_code == 0, plan.err
    assert plan.plan is not None
    (change,) = [c for c in plan.plan.changes if c.key == "once"]
    assert change.completed and change.action.value == "noop"
    # A date in the past that was never applied is still an error.
    write_schedules(d, schedule("never", trigger="date", trigger_kwargs={"run_date": past}), schedule("other"))
    refused = reconcile(d, db_url, dry_run=True)
    assert refused.exit_code == 1 and "in the past" in refused.err[0]


def test_plan_shows_validation_warnings_and_unchanged_runs(db_url: str, tmp_path: Path) -> None:
    d = tmp_path / "s"
    dow = schedule("dow", trigger="cron", trigger_kwargs={"day_of_week": "1-5", "hour": 7})
    write_schedules(d, dow, schedule("n", name="Old"))
    assert reconcile(d, db_url).exit_code == 0
    write_schedules(d, dow, schedule("n", name="New"))
    plan = reconcile(d, db_url, dry_run=True)
    assert plan.exit_code == 0
    assert any("day_of_week '1-5' is APScheduler numbering" in line for line in plan.err), plan.err
    assert 'name: "Old" → "New"' in plan.out[0]
    assert "next runs (unchanged): " in plan.out[0]


def test_owned_rows_are_planned_from_digests_and_read_whole_only_when_needed(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL: rows still as our ledger recorded them for an unchanged spec are read without their pickles;
    a changed spec makes the edge read exactly that row whole; the plan (and its fingerprint) is the one a
    full read gives."""
    from reconciler.apply import read_and_plan
    from reconciler.commands.validate import load_desired
    from reconciler.plan import compute_plan, expected_rows

    init_compatible(pg_url).dispose()
    d = tmp_path / "s"
    write_schedules(d, schedule("a"), schedule("b"), schedule("c"))
    assert reconcile(d, pg_url).exit_code == 0
    api_id, garbage = add_foreign_rows(pg_url)
    write_schedules(d, schedule("a"), schedule("b", name="renamed"), schedule("c"))
    now = datetime.now(UTC)
    desired = load_desired(d, now=now).schedules
    settings = PlanSettings()
    engine = store.connect(pg_url)
    with engine.connect() as conn, conn.begin():
        live, plan = read_and_plan(conn, desired, settings, now)
        full = compute_plan(desired, store.read_live_state(conn), settings, now)
        ours = {schedule_id_for(settings.namespace, k) for k in "ac"}
        assert set(expected_rows(desired, live.ledger, live.workflows, settings)) == ours
    engine.dispose()
    unread = {j.id for j in live.jobs if j.digest_only}
    assert unread == ours  # b changed; the API row and the garbage row are not ours: read whole
    read_whole = {j.id for j in live.jobs if not j.digest_only}
    assert read_whole == {api_id, garbage, schedule_id_for(settings.namespace, "b")}
    assert {j.id for j in live.jobs if j.unreadable} == {garbage}
    assert plan.fingerprint == full.fingerprint
    assert [(c.key, c.action) for c in plan.changes] == [(c.key, c.action) for c in full.changes]
    assert plan.summary["update"] == 1


def test_a_row_deleted_between_the_two_reads_is_left_out(pg_url: str, tmp_path: Path) -> None:
    init_compatible(pg_url).dispose()
    d = tmp_path / "s"
    write_schedules(d, schedule("a"), schedule("b"))
    assert reconcile(d, pg_url).exit_code == 0
    engine = store.connect(pg_url)
    with engine.connect() as conn, conn.begin():
        digests = store.read_row_digests(conn)
        listed = {i: store.LiveJob(i, n, (), d) for i, (n, d) in digests.items()}
        gone = schedule_id_for("default", "a")
        conn.execute(store.apscheduler_jobs.delete().where(store.apscheduler_jobs.c.id == gone))
        filled = reads._with_states(reads.Reader.of(conn), listed, [gone, schedule_id_for("default", "b")])
        conn.rollback()
    engine.dispose()
    assert set(filled) == {schedule_id_for("default", "b")}
    assert all(j.state is not None for j in filled.values())


def test_post_commit_check_reads_back_what_was_written(db_url: str, tmp_path: Path) -> None:
    """The check after commit compares the written rows by digest and the linker rows; a row or link
    that differs (here changed behind our back) is counted as still pending."""
    from reconciler import apply as applier
    from reconciler.commands.validate import load_desired
    from reconciler.jobstate import repickle

    init_compatible(db_url).dispose()
    d = tmp_path / "s"
    write_schedules(d, schedule("a"), schedule("b"), schedule("c"))
    now = datetime.now(UTC)
    desired = load_desired(d, now=now).schedules
    settings, apply_settings = PlanSettings(), ApplySettings(guard_seconds=0)
    engine = store.connect(db_url)
    applier.prepare(engine)
    writes = applier._apply_locked(engine, desired, settings, apply_settings, lambda: now, time.sleep).writes
    clock = lambda: now  # noqa: E731
    assert applier._verify(engine, writes, desired, settings, clock) == 0
    a_id = schedule_id_for("default", "a")
    with store.write_transaction(engine) as conn:
        blob = conn.execute(select(store.apscheduler_jobs.c.job_state).where(store.apscheduler_jobs.c.id == a_id))
        renamed = repickle(load_job_state(bytes(blob.scalar_one())), name="changed behind our back")
        conn.execute(
            store.apscheduler_jobs.update().where(store.apscheduler_jobs.c.id == a_id).values(job_state=renamed)
        )
    assert applier._verify(engine, writes, desired, settings, clock) == 1
    b_id = schedule_id_for("default", "b")
    with store.write_transaction(engine) as conn:
        conn.execute(
            store.workflows_apscheduler_jobs.delete().where(store.workflows_apscheduler_jobs.c.schedule_id == b_id)
        )
    assert applier._verify(engine, writes, desired, settings, clock) == 2
    engine.dispose()
