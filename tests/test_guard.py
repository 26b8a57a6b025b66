"""The hold rule (reconciler/guard.py) and how apply waits by it: injected clocks, no sleeps.

The pure rule first, edge by edge; then apply on real SQLite and PostgreSQL with a fake clock whose
`sleep` plays the scheduler: it moves rows when their time comes, as APScheduler's `update_job` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.engine import Engine

from reconciler import apply as applier
from reconciler import guard, store
from reconciler.apply import ApplyError, ApplySettings
from reconciler.commands.validate import load_desired
from reconciler.guard import POLL, SETTLE, HoldRule, hold
from reconciler.jobstate import load_job_state, repickle, utc_timestamp
from reconciler.plan import PlanSettings, schedule_id_for

RULE = HoldRule(lead=0.1, bound=10.0)
T = 1_800_000_000.0  # a next_run_time


# --- the pure rule --------------------------------------------------------------------------------------


def test_a_paused_row_is_never_held() -> None:
    assert hold({"a": None}, T, RULE).free


def test_a_row_due_later_than_the_lead_is_free() -> None:
    verdict = hold({"a": T}, T - 0.1001, RULE)
    assert verdict.free and verdict.wait == 0.0


def test_a_row_within_the_lead_is_held_until_just_after_it_falls_due() -> None:
    verdict = hold({"a": T}, T - 0.1, RULE)
    assert verdict.held == {"a"}
    assert verdict.wait == pytest.approx(0.1 + SETTLE)


def test_a_due_row_not_yet_moved_is_held_and_read_again_after_one_poll() -> None:
    assert hold({"a": T}, T, RULE) == guard.Hold(frozenset({"a"}), POLL)
    assert hold({"a": T}, T + 9.5, RULE).wait == POLL


def test_the_last_poll_ends_at_the_bound() -> None:
    verdict = hold({"a": T}, T + 9.995, RULE)
    assert verdict.held == {"a"} and verdict.wait == pytest.approx(0.005, abs=1e-6)


def test_a_bound_shorter_than_a_poll_ends_the_hold_at_the_bound() -> None:
    # --guard-seconds 0.01: a row due this instant is read again when it turns overdue, not a poll later
    verdict = hold({"a": T}, T, HoldRule(bound=0.01))
    assert verdict.held == {"a"} and verdict.wait == pytest.approx(0.01, abs=1e-6)


def test_a_row_unmoved_for_the_bound_is_overdue_and_free() -> None:
    # no scheduler processes it: jobs overdue because none runs are not guarded
    assert hold({"a": T}, T + 10.0, RULE).free
    assert hold({"a": T}, T + 3600, RULE).free


def test_the_bound_is_the_guard_seconds() -> None:
    assert hold({"a": T}, T + 2.5, HoldRule(bound=2.0)).free
    assert not hold({"a": T}, T + 1.5, HoldRule(bound=2.0)).free
    assert hold({"a": T}, T, HoldRule(lead=0.0, bound=0.0)).free  # --guard-seconds 0: nothing is guarded


def test_right_after_the_scheduler_moved_a_row_it_is_free() -> None:
    previous = {"a": T}
    verdict = hold({"a": T + 1.0}, T + 0.015, RULE, previous)
    assert verdict.free and verdict.moved == {"a"}


def test_a_row_moved_to_a_time_within_the_lead_is_held_again() -> None:
    verdict = hold({"a": T + 0.05}, T + 0.01, RULE, {"a": T})
    assert verdict.held == {"a"} and verdict.moved == {"a"}


def test_a_set_waits_for_its_earliest_change_not_once_per_row() -> None:
    current = {"a": T + 0.05, "b": T + 0.08, "c": T - 0.5, "d": T + 5.0, "e": None}
    verdict = hold(current, T, RULE)
    assert verdict.held == {"a", "b", "c"}
    assert verdict.wait == POLL  # c may be moved any moment: read again soon
    assert hold({"a": T + 0.05, "b": T + 0.08}, T, RULE).wait == pytest.approx(0.05 + SETTLE)


def test_moved_lists_only_rows_that_changed() -> None:
    verdict = hold({"a": T + 5, "b": T + 6, "c": T + 7}, T, RULE, {"a": T + 5, "b": T - 1})
    assert verdict.moved == {"b"}
    assert hold({"a": T + 5}, T, RULE).moved == frozenset()


def test_an_empty_reading_is_free() -> None:
    assert hold({}, T, RULE) == guard.Hold(frozenset(), 0.0)


def test_negative_edges_are_refused() -> None:
    with pytest.raises(ValueError):
        HoldRule(lead=-0.1)
    with pytest.raises(ValueError):
        HoldRule(bound=-1)


def test_patience_covers_one_whole_hold_of_each_row() -> None:
    rule = HoldRule(lead=0.1, bound=3.0)
    assert guard.patience(rule) == pytest.approx(5.1)
    assert guard.patience(rule) > rule.lead + rule.bound


# --- apply, by the rule, with a fake clock ------------------------------------------------------------------


@dataclass
class FakeScheduler:
    """A clock whose sleep advances time and, like a running scheduler, moves each due row it runs."""

    url: str
    now: float
    step: float = 1.0  # the jobs' interval
    running: bool = True
    late: float = 0.015  # due → moved, as measured (bench/hold_span.py)
    sleeps: list[float] = field(default_factory=list)
    runs: list[tuple[str, float]] = field(default_factory=list)
    on_sleep: Callable[[FakeScheduler], None] | None = None

    def clock(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.running:
            self.move_due()
        if self.on_sleep is not None:
            self.on_sleep(self)

    def move_due(self) -> None:
        engine = scheduler_engine(self.url)
        jobs = store.apscheduler_jobs
        with store.write_transaction(engine) as conn:
            due = conn.execute(
                select(jobs.c.id, jobs.c.next_run_time, jobs.c.job_state).where(
                    jobs.c.next_run_time <= self.now - self.late
                )
            ).all()
            for job_id, due_at, blob in due:
                self.runs.append((job_id, due_at))
                set_next_run(conn, job_id, bytes(blob), due_at + self.step * (1 + (self.now - due_at) // self.step))
        engine.dispose()


def set_next_run(conn: store.Connection, job_id: str, blob: bytes, moment: float) -> None:
    """Column and pickle from one value, as APScheduler's update_job writes them."""
    when = datetime.fromtimestamp(moment, UTC)
    conn.execute(
        update(store.apscheduler_jobs)
        .where(store.apscheduler_jobs.c.id == job_id)
        .values(next_run_time=utc_timestamp(when), job_state=repickle(load_job_state(blob), next_run_time=when))
    )


def scheduler_engine(url: str) -> Engine:
    """The fake scheduler's connection. On SQLite its commits skip the fsync: it stands for another process
    whose durability no test checks, and a give-up test commits hundreds of times (seconds of fsync)."""
    engine = store.connect(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", lambda dbapi, _record: dbapi.execute("PRAGMA synchronous=OFF"))
    return engine


def put_rows_due_at(url: str, moments: dict[str, float]) -> None:
    engine = scheduler_engine(url)
    with store.write_transaction(engine) as conn:
        for job_id, moment in moments.items():
            blob = conn.execute(
                select(store.apscheduler_jobs.c.job_state).where(store.apscheduler_jobs.c.id == job_id)
            ).scalar_one()
            set_next_run(conn, job_id, bytes(blob), moment)
    engine.dispose()


def rows(url: str) -> dict[str, tuple[float | None, str]]:
    engine = store.connect(url)
    with engine.connect() as conn:
        found = {
            r.id: (r.next_run_time, load_job_state(bytes(r.job_state))["name"])
            for r in conn.execute(select(store.apscheduler_jobs))
        }
    engine.dispose()
    return found


def write_dir(directory: Path, specs: Iterable[dict[str, object]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.yaml").write_text("schedules:\n" + "".join(f"  - {json.dumps(s)}\n" for s in specs))
    return directory


def every_second(key: str, **fields: object) -> dict[str, object]:
    return {
        "key": key,
        "workflow_name": "task_clean_up_tasks",
        "trigger": "interval",
        "trigger_kwargs": {"seconds": 1},
        **fields,
    }


def apply_dir(directory: Path, fake: FakeScheduler, **settings: float) -> applier.ApplyResult:
    desired = load_desired(directory, now=fake.clock()).schedules
    engine = store.connect(fake.url)
    try:
        return applier.apply(
            engine,
            desired,
            PlanSettings(),
            ApplySettings(**settings),  # type: ignore[arg-type]
            clock=fake.clock,
            sleep=fake.sleep,
        )
    finally:
        engine.dispose()


@pytest.fixture
def created(db_url: str, tmp_path: Path) -> tuple[FakeScheduler, list[str]]:
    """Ten 1 s schedules applied; the fake clock stands 0.5 s before they are next due (all at T)."""
    start = datetime.now(UTC).timestamp()
    fake = FakeScheduler(db_url, start, running=False)
    keys = [f"job-{i}" for i in range(10)]
    apply_dir(write_dir(tmp_path / "schedules.d", [every_second(k) for k in keys]), fake)
    ids = [schedule_id_for("default", k) for k in keys]
    fake.now = start + 100.0
    put_rows_due_at(db_url, dict.fromkeys(ids, start + 100.5))
    fake.running = True
    return fake, ids


def test_rows_far_from_due_are_written_at_once(created: tuple[FakeScheduler, list[str]], tmp_path: Path) -> None:
    fake, _ids = created
    result = apply_dir(
        write_dir(tmp_path / "schedules.d", [every_second(f"job-{i}", name=f"n{i}") for i in range(10)]), fake
    )
    assert result.verified and result.waited_seconds == 0.0 and fake.sleeps == []
    assert {name for _, name in rows(fake.url).values()} == {f"n{i}" for i in range(10)}


def test_ten_rows_about_to_fall_due_wait_once_for_the_scheduler_then_keep_its_move(
    created: tuple[FakeScheduler, list[str]], tmp_path: Path
) -> None:
    fake, ids = created
    due = fake.now + 0.5
    fake.now = due - 0.05  # inside the lead of all ten
    result = apply_dir(
        write_dir(tmp_path / "schedules.d", [every_second(f"job-{i}", name=f"n{i}") for i in range(10)]), fake
    )
    assert result.verified
    assert fake.sleeps == [pytest.approx(0.05 + SETTLE, abs=1e-4)]  # one wait for the set, not one per row
    assert sorted(fake.runs) == sorted((i, due) for i in ids)  # each ran once, at its time
    after = rows(fake.url)
    # written right after the scheduler moved them: its move is kept (phase), our names are in
    assert {i: after[i] for i in ids} == {i: (due + 1.0, f"n{n}") for n, i in enumerate(ids)}


def test_a_due_row_the_scheduler_is_about_to_move_is_left_to_it(
    created: tuple[FakeScheduler, list[str]], tmp_path: Path
) -> None:
    fake, ids = created
    due = fake.now + 0.5
    fake.now = due + 0.005  # due, not yet moved: a scheduler may hold it this very moment
    result = apply_dir(
        write_dir(tmp_path / "schedules.d", [every_second("job-0", name="only")]), fake, guard_seconds=10
    )
    # job-1..9 are deleted; every row was held until the scheduler moved it
    assert result.verified and fake.sleeps == [POLL]
    assert rows(fake.url) == {ids[0]: (due + 1.0, "only")}


def test_a_due_row_no_scheduler_moves_is_written_once_it_is_overdue(
    created: tuple[FakeScheduler, list[str]], tmp_path: Path
) -> None:
    fake, ids = created
    fake.running = False
    due = fake.now + 0.5
    fake.now = due + 0.5
    result = apply_dir(write_dir(tmp_path / "schedules.d", [every_second("job-0", name="late")]), fake, guard_seconds=2)
    assert result.verified
    assert sum(fake.sleeps) == pytest.approx(1.5, abs=1e-4)  # until due + --guard-seconds, no longer
    assert rows(fake.url) == {ids[0]: (due, "late")}


def test_rows_overdue_longer_than_the_bound_are_written_at_once(
    created: tuple[FakeScheduler, list[str]], tmp_path: Path
) -> None:
    fake, _ids = created
    fake.running = False
    fake.now += 60
    result = apply_dir(write_dir(tmp_path / "schedules.d", [every_second("job-0", name="late")]), fake)
    assert result.verified and fake.sleeps == []


def test_a_set_that_is_never_free_at_once_gives_up_and_applies_nothing(
    created: tuple[FakeScheduler, list[str]], tmp_path: Path
) -> None:
    fake, ids = created
    before = rows(fake.url)

    def keep_one_due(scheduler: FakeScheduler) -> None:
        # someone keeps setting job-3 to fall due right now (a row at a new phase every time)
        put_rows_due_at(scheduler.url, {ids[3]: scheduler.now + 0.05})

    fake.on_sleep = keep_one_due
    fake.now = fake.now + 0.5 - 0.05
    # A bound of 1 s instead of the default 10: the same give-up in a quarter of the polls.
    desired = write_dir(tmp_path / "schedules.d", [every_second(f"job-{i}", name="x") for i in range(10)])
    with pytest.raises(ApplyError, match="nothing was applied"):
        apply_dir(desired, fake, guard_seconds=1.0)
    assert guard.patience(HoldRule(bound=1.0)) - 0.1 <= sum(fake.sleeps) <= guard.patience(HoldRule(bound=1.0)) + 0.1
    after = rows(fake.url)
    assert {i: after[i][1] for i in after} == {i: before[i][1] for i in before}  # no name written


def test_new_rows_are_never_held(db_url: str, tmp_path: Path) -> None:
    fake = FakeScheduler(db_url, datetime.now(UTC).timestamp())
    result = apply_dir(write_dir(tmp_path / "schedules.d", [every_second("a")]), fake)
    assert result.verified and fake.sleeps == []
    assert rows(db_url)[schedule_id_for("default", "a")][0] == pytest.approx(fake.now + 1.0, abs=1e-4)


def test_guard_seconds_zero_writes_even_a_due_row(created: tuple[FakeScheduler, list[str]], tmp_path: Path) -> None:
    fake, _ids = created
    fake.now += 0.5
    result = apply_dir(write_dir(tmp_path / "schedules.d", [every_second("job-0", name="now")]), fake, guard_seconds=0)
    assert result.verified and fake.sleeps == []
    assert len(rows(fake.url)) == 1
