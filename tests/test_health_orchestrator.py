"""`schedules health` on a real orchestrator-core 5.5.0 database: its migrations, its schedules, its processes.

One scratch PostgreSQL database for the module, migrated by orchestrator-core's own migrations
(tests/orchestrator_side.py through tests/orchestrator_env.py, in that release's own venv). orchestrator-core
writes everything health reads: API schedules through the
code its scheduler runs for POST /api/schedules, `processes` rows through its own ProcessTable model, the
engine pause through `marshall_processes`, a fired `date` job's removal through its scheduler store
(tests/health_side.py). The reconciler only applies one `date` schedule. Then `health` judges, at an
injected `now` (so no fire slips into the window while the test runs) and through the CLI.

All interval schedules fire at ..., T-5m, T+5m (T is the fixture's start); the command-line tests pass
`--until` T+2m, the `now` injected elsewhere, so however long the module takes every test sees one window.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reconciler.commands.health import HealthOptions, collect
from reconciler.health.core import HealthReport, Liveness, Problem, ScheduleHealth
from tests.orchestrator_env import ANSI, LATEST, VERSIONS, Orchestrator, migrated_database, orchestrator_venv
from tests.test_health import free_port, scrape

pytestmark = [pytest.mark.postgres, pytest.mark.orchestrator]

REPO = Path(__file__).resolve().parent.parent
HEALTH_SIDE = Path(__file__).resolve().with_name("health_side.py")


def health_side(side: Orchestrator, *args: str) -> Any:
    """tests/health_side.py ARGS with that release's python and settings; returns its RESULT."""
    done = subprocess.run([str(side.venv.python), str(HEALTH_SIDE), *args], cwd=REPO, env=side.env,
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    output = ANSI.sub("", done.stdout + done.stderr)
    assert done.returncode == 0, f"health_side {args[0]} exited {done.returncode}:\n{output[-4000:]}"
    results = [line[len("RESULT ") :] for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(results[-1]) if results else None


def schedules_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=120)


def iso(moment: datetime) -> str:
    return moment.isoformat()


@dataclass
class World:
    url: str
    side: Orchestrator
    T: datetime
    ids: dict[str, str]  # case → job id
    fires: dict[str, list[datetime]]  # case → the fires that got a process
    skipped: datetime
    failed_at: datetime
    once_at: datetime
    directory: Path
    dst_instants: list[datetime]

    @property
    def until(self) -> str:
        """The end of the window the command line judges: the injected `now` of `report`, whenever it runs."""
        return iso(self.T + timedelta(minutes=2))

    def report(self, *, now: datetime | None = None, since: timedelta = timedelta(hours=1)) -> HealthReport:
        options = HealthOptions(db_url=self.url, since=since, directory=self.directory)
        report, _notes = collect(options, now=now or self.T + timedelta(minutes=2))
        return report

    def one(self, report: HealthReport, case: str) -> ScheduleHealth:
        key = "once" if case == "once" else self.ids[case]
        (found,) = [s for s in report.schedules if s.key == key]
        return found


INTERVALS = {"every": ("task_clean_up_tasks", 10), "missed": ("task_resume_workflows", 15),
             "failing": ("task_validate_products", 30)}  # fmt: skip
DST = [
    datetime(2026, 10, 24, 0, 30, tzinfo=UTC),  # 02:30 CEST
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST, the first pass
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 02:30 CET, the repeated hour (this one gets no process)
    datetime(2026, 10, 26, 1, 30, tzinfo=UTC),  # 02:30 CET
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("health")
    with migrated_database(orchestrator_venv(LATEST), tmp / "project") as side:
        yield build_world(side, tmp)


def build_world(side: Orchestrator, tmp: Path) -> World:
    url = side.db_url
    T = datetime.now(UTC).replace(microsecond=0)
    base = T + timedelta(minutes=5)  # every interval schedule's next fire
    start = base - timedelta(hours=3)

    def interval(workflow: str, minutes: int, offset: int = 0, name: str = "") -> dict[str, Any]:
        begin = start + timedelta(minutes=offset)
        return {"name": name or f"{workflow} every {minutes}m", "workflow_name": workflow, "trigger": "interval",
                "trigger_kwargs": {"minutes": minutes, "start_date": iso(begin)}}  # fmt: skip

    payloads = [interval(w, m) for w, m in INTERVALS.values()]
    payloads.append(interval("task_validate_subscriptions", 20, 0, "pair A"))
    payloads.append(interval("task_validate_subscriptions", 20, 10, "pair B"))
    payloads.append({"name": "amsterdam", "workflow_name": "task_validate_product_type", "trigger": "cron",
                     "trigger_kwargs": {"hour": 2, "minute": 30, "timezone": "Europe/Amsterdam"}})  # fmt: skip
    created = health_side(side, "add-api-schedules", json.dumps(payloads))["ids"]
    ids = dict(zip([*INTERVALS, "pair-a", "pair-b", "dst"], created, strict=True))

    recent = T - timedelta(minutes=62)  # processes only for fires of the last 62 minutes
    fires: dict[str, list[datetime]] = {}
    for case, minutes, offset in [*((c, m, 0) for c, (_, m) in INTERVALS.items()), ("pair-a", 20, 0),
                                  ("pair-b", 20, 10)]:  # fmt: skip
        first = start + timedelta(minutes=offset)
        fires[case] = [first + timedelta(minutes=minutes * k) for k in range(20)]
        fires[case] = [f for f in fires[case] if recent <= f <= T]
    skipped = fires["missed"].pop(1)
    failed_at = fires["failing"][-1]
    workflows = {c: w for c, (w, _) in INTERVALS.items()} | {"pair-a": "task_validate_subscriptions",
                                                               "pair-b": "task_validate_subscriptions"}  # fmt: skip
    rows = [
        {"workflow": workflows[c], "started_at": iso(f + timedelta(milliseconds=700)),
         "status": "failed" if c == "failing" and f == failed_at else "completed",
         "failed_reason": "RuntimeError: no products found\nTraceback (most recent call last): ..."
         if c == "failing" and f == failed_at else None}
        for c, times in fires.items() for f in times
    ]  # fmt: skip
    # The DST schedule: every fire but the repeated hour; and one start by a person, never a schedule's.
    rows += [{"workflow": "task_validate_product_type", "started_at": iso(t + timedelta(seconds=1))}
             for t in DST if t != DST[2]]  # fmt: skip
    rows.append({"workflow": "task_clean_up_tasks", "started_at": iso(T - timedelta(minutes=3)),
                 "created_by": "jane@example.com"})  # fmt: skip

    # A managed `date` schedule, applied by the reconciler; it fires, APScheduler removes its row.
    once_at = (datetime.now(UTC) + timedelta(seconds=40)).replace(microsecond=0)
    directory = tmp / "schedules.d"
    directory.mkdir()
    (directory / "once.yaml").write_text(
        "schedules:\n  - key: once\n    workflow_name: modify_note\n"
        f"    trigger: date\n    trigger_kwargs: {{run_date: '{iso(once_at)}'}}\n"
    )
    applied = schedules_cli("reconcile", str(directory), "--db", url)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    once_id = health_side(side, "remove-job", _job_id_of(url, "once"))["removed"]
    rows.append({"workflow": "modify_note", "started_at": iso(once_at + timedelta(seconds=1))})
    health_side(side, "write-processes", json.dumps(rows))
    return World(url, side, T, ids | {"once": once_id}, fires, skipped, failed_at, once_at, directory, DST)


def _job_id_of(url: str, key: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        found: str = conn.execute(
            text("SELECT schedule_id FROM reconciler_ledger WHERE key = :k"), {"k": key}
        ).scalar_one()
    engine.dispose()
    return found


def test_every_expected_fire_started(world: World) -> None:
    report = world.report()
    every = world.one(report, "every")
    assert (every.expected, every.started, every.missed, every.problems) == (6, 6, (), ())
    assert every.source == "api" and every.workflow == "task_clean_up_tasks"
    assert every.last_run is not None and every.last_run.fire == world.fires["every"][-1]
    assert report.processes_available and report.engine_paused is False
    assert report.liveness is Liveness.PROCESSING
    assert "task_clean_up_tasks" not in report.unexplained  # jane's start is not the scheduler's


def test_one_fire_missed(world: World) -> None:
    missed = world.one(world.report(), "missed")
    assert missed.missed == (world.skipped,)
    assert (missed.expected, missed.started) == (4, 3)
    assert missed.problems == (Problem.MISSED,)


def test_failing_run(world: World) -> None:
    failing = world.one(world.report(), "failing")
    (failure,) = failing.failures
    assert (failure.fire, failure.status, failure.reason_line) == (
        world.failed_at,
        "failed",
        "RuntimeError: no products found",
    )
    assert failing.problems == (Problem.FAILED,) and failing.missed == ()


def test_two_schedules_of_one_workflow(world: World) -> None:
    report = world.report()
    a, b = world.one(report, "pair-a"), world.one(report, "pair-b")
    assert (a.expected, a.started, b.expected, b.started) == (3, 3, 3, 3)
    assert {r.fire for r in a.runs} == set(world.fires["pair-a"])
    assert {r.fire for r in b.runs} == set(world.fires["pair-b"])
    assert a.ambiguous == b.ambiguous == 0


def test_date_job_that_fired(world: World) -> None:
    once = world.one(world.report(), "once")
    assert not once.row_present and once.source == "gitops"
    assert (once.expected, once.started, once.missed, once.problems) == (1, 1, (), ())
    assert once.last_run is not None and once.last_run.fire == world.once_at
    # Without the schedules directory the fired job's trigger is unknown: it is not judged at all.
    options = HealthOptions(db_url=world.url, since=timedelta(hours=1))
    report, _ = collect(options, now=world.T + timedelta(minutes=2))
    assert "once" not in {s.key for s in report.schedules}


def test_dst_change_inside_the_window(world: World) -> None:
    report = world.report(now=datetime(2026, 10, 27, tzinfo=UTC), since=timedelta(days=3))
    dst = world.one(report, "dst")
    assert dst.expected == 4 and dst.started == 3
    assert dst.missed == (world.dst_instants[2],)  # 02:30 CET on the night the clocks go back
    assert [s.expected for s in report.schedules if s.key not in (world.ids["dst"],)] == [0] * (
        len(report.schedules) - 1
    )


def test_since_bounds_the_window(world: World) -> None:
    half = world.one(world.report(since=timedelta(minutes=30)), "every")
    assert (half.expected, half.started, half.missed) == (3, 3, ())
    longer = world.one(world.report(since=timedelta(hours=2)), "every")
    assert (longer.expected, longer.started) == (12, 6)
    assert len(longer.missed) == 6 and max(longer.missed) < world.T - timedelta(hours=1)


def test_paused_engine(world: World) -> None:
    assert health_side(world.side, "engine-lock", "true") == {"global_lock": True}
    try:
        report = world.report()
        assert report.engine_paused is True and not report.healthy
        done = schedules_cli("health", str(world.directory), "--db", world.url, "--since", "1h", "--until", world.until)
        assert done.returncode == 2
        assert "Engine: PAUSED" in done.stdout
    finally:
        health_side(world.side, "engine-lock", "false")
    assert world.report().engine_paused is False


def test_overdue_scheduler(world: World) -> None:
    """An hour after T no scheduler has moved any job past T+5m: every job is overdue, said once at the top."""
    report = world.report(now=world.T + timedelta(hours=1))
    assert report.liveness is Liveness.STOPPED
    intervals = [world.one(report, case) for case in [*INTERVALS, "pair-a", "pair-b"]]
    assert all(Problem.OVERDUE in s.problems for s in intervals)
    assert all(
        s.overdue
        for s in report.schedules
        if s.row_present and s.next_run and s.next_run < world.T + timedelta(minutes=59)
    )
    assert report.oldest_overdue is not None and report.oldest_overdue >= timedelta(minutes=55)


def test_cli_text_json_and_prometheus(world: World) -> None:
    text = schedules_cli("health", str(world.directory), "--db", world.url, "--since", "1h", "--until", world.until)
    assert text.returncode == 2, text.stderr
    lines = text.stdout.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("KEY"))) :]
    assert all(len(line) <= 80 for line in table[: 1 + 7])
    assert any(f"missed 1 of 4: {world.skipped.strftime('%Y-%m-%d %H:%M:%S')}Z" in line for line in lines)
    assert any("RuntimeError: no products found" in line for line in lines)
    data = json.loads(schedules_cli("health", str(world.directory), "--db", world.url, "--format", "json",
                                    "--since", "1h", "--until", world.until).stdout)  # fmt: skip
    assert data["format_version"] == 1 and data["scheduler"] == "processing"
    by_key = {s["key"]: s for s in data["schedules"]}
    assert by_key[world.ids["missed"]]["missed"] == [iso(world.skipped)]
    exposition = schedules_cli("health", str(world.directory), "--db", world.url, "--format", "prometheus",
                               "--since", "1h", "--until", world.until)  # fmt: skip
    assert exposition.returncode == 2
    families = {f.name: f for f in text_string_to_metric_families(exposition.stdout)}
    missed = {s.labels["key"]: s.value for s in families["schedules_health_missed_runs"].samples}
    assert missed[world.ids["missed"]] == 1.0 and missed[world.ids["every"]] == 0.0
    assert families["schedules_health_engine_paused"].samples[0].value == 0.0


def test_metrics_endpoint_scraped_over_http(world: World) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "health", str(world.directory), "--db", world.url, "--since", "1h",
         "--until", world.until, "--serve", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        body = scrape(f"http://127.0.0.1:{port}/metrics", time.monotonic() + 60)
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    families = {f.name: f for f in text_string_to_metric_families(body)}
    failed = {s.labels["key"]: s.value for s in families["schedules_health_failed_runs"].samples}
    assert failed[world.ids["failing"]] == 1.0
    started = {s.labels["key"]: s for s in families["schedules_health_started_runs"].samples}
    assert started["once"].labels == {"key": "once", "workflow": "modify_note", "source": "gitops"}


# --- orchestrator-core 5.5.0's own `scheduler run`, a 5 s schedule -------------------------------------------


REDIS_URL = os.environ.get("RECONCILER_TEST_HEALTH_REDIS", "redis://127.0.0.1:6379/11")
MISSED_LINE = re.compile(r"next run at: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)[^)]*\)\" was missed by")


def wait_for(condition: Any, seconds: float, what: Any) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; log tail:\n{what()[-3000:]}")
        time.sleep(0.2)


def missed_in_log(log: str) -> set[datetime]:
    """The fires APScheduler itself reported as missed ("Run time of job ... was missed by ...")."""
    return {datetime.fromisoformat(m).replace(tzinfo=UTC) for m in MISSED_LINE.findall(log)}


def health_json(url: str, directory: Path, since: str) -> tuple[int, dict[str, Any]]:
    done = schedules_cli("health", str(directory), "--db", url, "--since", since, "--format", "json")
    assert done.returncode in (0, 2), done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, data


@pytest.mark.slow
def test_real_scheduler_run_then_stopped(tmp_path: Path) -> None:
    """`scheduler run` runs a 5 s schedule for 60 s: `health --since 1m` sees every fire started (a fire
    APScheduler itself skipped as misfired is the only allowed miss, and it must be in its log). Stopped
    for 30 s: the fires since are missed, the job is overdue, and no scheduler processes the database."""
    import redis

    queue = redis.Redis.from_url(REDIS_URL)
    queue.flushdb()
    log_path = tmp_path / "scheduler.log"
    scheduler: subprocess.Popen[str] | None = None

    def read_log() -> str:
        return ANSI.sub("", log_path.read_text()) if log_path.exists() else ""

    with migrated_database(orchestrator_venv(LATEST), tmp_path / "project", redis_url=REDIS_URL) as side:
        url = side.db_url
        try:
            with log_path.open("w") as log:
                scheduler = side.popen(["scheduler", "run"], log)
            wait_for(lambda: "Scheduler started" in read_log(), 90, read_log)
            directory = tmp_path / "schedules.d"
            directory.mkdir()
            (directory / "fast.yaml").write_text(
                "schedules:\n  - key: every-5s\n    workflow_name: task_clean_up_tasks\n"
                "    trigger: interval\n    trigger_kwargs: {seconds: 5}\n"
            )
            applied = schedules_cli("reconcile", str(directory), "--db", url, "--redis", REDIS_URL)
            assert applied.returncode == 0 and "woken through Redis" in applied.stdout, applied.stdout + applied.stderr
            time.sleep(60)

            code, running = health_json(url, directory, "1m")
            (fast,) = running["schedules"]
            print("running:", {k: fast[k] for k in ("expected", "started", "missed", "pending", "overdue")})
            assert fast["expected"] >= 8, fast  # 60 s of 5 s fires, less the ones still pending
            assert set(map(datetime.fromisoformat, fast["missed"])) <= missed_in_log(read_log()), read_log()[-3000:]
            assert fast["started"] + len(fast["missed"]) == fast["expected"]
            assert not fast["overdue"] and running["scheduler"] == "processing"
            assert code == (0 if not fast["missed"] and not fast["failures"] else 2)

            Orchestrator.stop(scheduler)
            stopped_at = datetime.now(UTC)
            time.sleep(30)

            code, stopped = health_json(url, directory, "1m")
            (fast,) = stopped["schedules"]
            print("stopped:", {k: fast[k] for k in ("expected", "started", "missed", "pending", "overdue_seconds")})
            late = [m for m in map(datetime.fromisoformat, fast["missed"]) if m > stopped_at]
            assert len(late) >= 2, fast  # 30 s stopped, less the tolerance (1 s grace + 10 s) still pending
            assert fast["overdue"] and fast["overdue_seconds"] >= 15
            assert stopped["scheduler"] == "stopped" and code == 2
            text = schedules_cli("health", str(directory), "--db", url, "--since", "1m").stdout
            assert text.count("no scheduler is processing this database") == 1
            assert "every-5s: overdue by" in text and "every-5s: missed" in text
        finally:
            if scheduler is not None:
                Orchestrator.stop(scheduler)
            queue.flushdb()
            queue.close()


def test_scheduled_github_workflow_fails_with_the_missed_runs_in_the_summary(world: World, tmp_path: Path) -> None:
    """The `Check schedule health` step of .github/workflows/schedules-health.yml, run as GitHub runs it."""
    import yaml

    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "schedules-health.yml").read_text())
    (step,) = [s for s in workflow["jobs"]["health"]["steps"] if s.get("name") == "Check schedule health"]
    summary = tmp_path / "summary.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")} | {
        "DATABASE_URI": world.url,
        "SINCE": "1h",
        "UNTIL": world.until,
        "SCHEDULES_DIR": str(world.directory),
        "GITHUB_STEP_SUMMARY": str(summary),
        "RUNNER_TEMP": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    done = subprocess.run(["bash", "-e", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "::error title=schedules health::missed, failed or overdue runs in the last 1h" in done.stdout
    text = summary.read_text()
    assert text.startswith("### ❌ Schedule health")
    assert f"missed 1 of 4: {world.skipped.strftime('%Y-%m-%d %H:%M:%S')}Z" in text
    assert "RuntimeError: no products found" in text


@pytest.mark.parametrize("version", [v for v in VERSIONS if v.startswith("4.")][-1:])
def test_a_4x_database(version: str, tmp_path: Path) -> None:
    """orchestrator-core 4.x: its own migrations, API schedules (func `orchestrator.schedules.service:…`,
    kwargs without user_inputs), processes and engine pause, all written by that release, judged alike."""
    with migrated_database(orchestrator_venv(version), tmp_path / "project") as side:
        T = datetime.now(UTC).replace(microsecond=0)
        start = T + timedelta(minutes=5) - timedelta(hours=3)
        payload = {"name": "4.x every 10m", "workflow_name": "task_clean_up_tasks", "trigger": "interval",
                   "trigger_kwargs": {"minutes": 10, "start_date": iso(start)}}  # fmt: skip
        (job_id,) = health_side(side, "add-api-schedules", json.dumps([payload]))["ids"]
        fires = [start + timedelta(minutes=10 * k) for k in range(18)]
        fires = [f for f in fires if T - timedelta(minutes=58) <= f <= T]
        skipped = fires[2]
        rows = [{"workflow": "task_clean_up_tasks", "started_at": iso(f + timedelta(seconds=1))} for f in fires]
        health_side(side, "write-processes", json.dumps([r for r, f in zip(rows, fires, strict=True) if f != skipped]))
        options = HealthOptions(db_url=side.db_url, since=timedelta(hours=1))
        report, _ = collect(options, now=T + timedelta(minutes=2))
        (found,) = [s for s in report.schedules if s.key == job_id]
        assert (found.source, found.workflow) == ("api", "task_clean_up_tasks")
        assert (found.expected, found.started, found.missed) == (6, 5, (skipped,))
        assert report.engine_paused is False and report.liveness is Liveness.PROCESSING
        assert health_side(side, "engine-lock", "true") == {"global_lock": True}
        assert collect(options, now=T + timedelta(minutes=2))[0].engine_paused is True
