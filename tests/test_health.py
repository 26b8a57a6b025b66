"""`schedules health`, the pure part: expected fires, attribution of starts to fires, verdicts, renderings.

Every case builds real APScheduler triggers and plain `ProcessRun` values and judges them at an injected
`now`; the database side (orchestrator-core's own tables) is in tests/test_health_orchestrator.py.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client.parser import text_string_to_metric_families

from reconciler.commands.health import HealthError, parse_duration, parse_instant, parse_listen
from reconciler.health import metrics, render
from reconciler.health.core import (
    Liveness,
    Observations,
    Problem,
    ProcessRun,
    ScheduleInput,
    Tolerance,
    assess,
)
from reconciler.triggers import fire_times_between
from tests.command_line import IN_PROCESS, WHOLE_PROCESS, Schedules

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
WORKFLOWS = {"task_a": False, "task_b": False}


def every(minutes: int, *, start: datetime = NOW - 2 * HOUR) -> IntervalTrigger:
    return IntervalTrigger(minutes=minutes, start_date=start, timezone=ZoneInfo("UTC"))


def schedule(key: str, trigger: object, *, workflow: str = "task_a", next_run: datetime | None = None, **kw: object):  # type: ignore[no-untyped-def]
    return ScheduleInput(
        job_id=f"id-{key}",
        key=key,
        name=key,
        workflow_name=workflow,
        source="api",
        trigger=trigger,  # type: ignore[arg-type]
        next_run_time=next_run or NOW + timedelta(minutes=5),
        **kw,  # type: ignore[arg-type]
    )


def run(at: datetime, *, workflow: str = "task_a", status: str = "completed", reason: str | None = None) -> ProcessRun:
    return ProcessRun(f"pid-{at.isoformat()}-{workflow}", workflow, status, at, at, reason)


def seen(runs: list[ProcessRun] | None, *, paused: bool | None = False) -> Observations:
    return Observations(runs=runs, engine_paused=paused, workflows=WORKFLOWS)


def fires(minutes: int, since: datetime, until: datetime = NOW) -> list[datetime]:
    times, _ = fire_times_between(every(minutes), since, until)
    return [t.astimezone(UTC) for t in times]


def test_every_fire_started_is_healthy() -> None:
    since = NOW - HOUR
    runs = [run(f + timedelta(milliseconds=400)) for f in fires(10, since, NOW - timedelta(seconds=30))]
    report = assess([schedule("ten", every(10))], seen(runs), now=NOW, since=since)
    (health,) = report.schedules
    assert (health.expected, health.started, health.missed) == (6, 6, ())
    assert health.problems == () and report.healthy
    assert health.last_run is not None and health.last_run.fire == NOW - timedelta(minutes=10)
    assert report.liveness is Liveness.PROCESSING


def test_one_missed_fire_is_named() -> None:
    since = NOW - HOUR
    expected = fires(10, since, NOW - timedelta(seconds=30))
    skipped = expected[2]
    runs = [run(f + timedelta(seconds=1)) for f in expected if f != skipped]
    report = assess([schedule("ten", every(10))], seen(runs), now=NOW, since=since)
    (health,) = report.schedules
    assert health.missed == (skipped,)
    assert (health.expected, health.started) == (6, 5)
    assert health.problems == (Problem.MISSED,) and not report.healthy


def test_a_start_later_than_grace_plus_latency_is_a_miss() -> None:
    since = NOW - HOUR
    expected = fires(30, since, NOW - timedelta(minutes=1))
    late = [run(expected[0] + timedelta(seconds=12))]  # grace 1 s + latency 10 s = 11 s
    report = assess([schedule("half", every(30))], seen(late), now=NOW, since=since)
    assert report.schedules[0].missed == tuple(expected)
    assert report.unexplained == {"task_a": 1}
    wider = assess([schedule("half", every(30))], seen(late), now=NOW, since=since, tolerance=Tolerance(
        latency=timedelta(seconds=15)))  # fmt: skip
    assert wider.schedules[0].missed == (expected[1],)


def test_failing_run_gives_first_line_of_reason() -> None:
    since = NOW - HOUR
    expected = fires(30, since, NOW - timedelta(minutes=1))
    runs = [
        run(expected[0] + timedelta(seconds=1)),
        run(expected[1] + timedelta(seconds=1), status="failed", reason="ValueError: boom\nTraceback ..."),
    ]
    (health,) = assess([schedule("half", every(30))], seen(runs), now=NOW, since=since).schedules
    assert [(r.status, r.reason_line) for r in health.failures] == [("failed", "ValueError: boom")]
    assert health.problems == (Problem.FAILED,)
    assert health.last_run is not None and health.last_run.status == "failed"


def test_paused_engine_is_a_problem_even_when_every_fire_started() -> None:
    since = NOW - HOUR
    runs = [run(f + timedelta(seconds=1)) for f in fires(30, since, NOW - timedelta(minutes=1))]
    report = assess([schedule("half", every(30))], seen(runs, paused=True), now=NOW, since=since)
    assert report.schedules[0].problems == ()
    assert report.engine_paused and not report.healthy
    assert any("PAUSED" in line for line in render.render_text(report))


def test_overdue_everywhere_means_no_scheduler() -> None:
    since = NOW - HOUR
    late = NOW - timedelta(minutes=7)
    jobs = [schedule("a", every(10), next_run=late), schedule("b", every(30), next_run=NOW - timedelta(seconds=20))]
    report = assess(jobs, seen([]), now=NOW, since=since)
    assert [s.overdue for s in report.schedules] == [True, True]
    assert report.liveness is Liveness.STOPPED and report.oldest_overdue == timedelta(minutes=7)
    text = render.render_text(report)
    assert sum("no scheduler is processing this database" in line for line in text) == 1
    # A job a few seconds behind is within tolerance; a scheduled start after `late` shows a scheduler at
    # work that has not seen job a's row.
    fresh = [schedule("a", every(10), next_run=late), schedule("b", every(30), next_run=NOW - timedelta(seconds=5))]
    assert assess(fresh, seen([]), now=NOW, since=since).liveness is Liveness.STOPPED
    working = assess(fresh, seen([run(NOW - timedelta(minutes=1), workflow="task_b")]), now=NOW, since=since)
    assert working.liveness is Liveness.PARTLY
    assert [s.overdue for s in working.schedules] == [True, False]
    # A daily job due tomorrow proves nothing: with the others overdue and no start, still STOPPED.
    daily = schedule("c", CronTrigger(hour=3, timezone=ZoneInfo("UTC")), next_run=NOW + timedelta(hours=15))
    assert assess([*jobs, daily], seen([]), now=NOW, since=since).liveness is Liveness.STOPPED


def test_two_schedules_of_one_workflow_are_attributed_by_nearest_fire() -> None:
    since = NOW - HOUR
    a = every(20, start=NOW - 2 * HOUR)  # :00 :20 :40
    b = every(20, start=NOW - 2 * HOUR + timedelta(minutes=10))  # :10 :30 :50
    runs = [run(f + timedelta(seconds=1)) for f in fires(10, since, NOW - timedelta(minutes=1))]
    dropped = NOW - timedelta(minutes=30)  # b's :30 never started
    runs = [r for r in runs if r.started_at != dropped + timedelta(seconds=1)]
    report = assess([schedule("a", a), schedule("b", b)], seen(runs), now=NOW, since=since)
    first, second = report.schedules
    assert (first.expected, first.started, first.missed) == (3, 3, ())
    assert (second.expected, second.started, second.missed) == (3, 2, (dropped,))
    assert first.ambiguous == second.ambiguous == 0


def test_two_schedules_due_together_are_flagged_ambiguous() -> None:
    since = NOW - HOUR
    a = every(30, start=NOW - 2 * HOUR)
    b = every(30, start=NOW - 2 * HOUR + timedelta(seconds=1))  # 1 s after a: a start can be either's
    starts = [f + timedelta(seconds=d) for f in fires(30, since, NOW - timedelta(minutes=1)) for d in (1.5, 2)]
    runs = [run(at) for at in starts]
    first, second = assess([schedule("a", a), schedule("b", b)], seen(runs), now=NOW, since=since).schedules
    assert (first.started, second.started, first.missed, second.missed) == (2, 2, (), ())
    assert first.ambiguous == 2 and second.ambiguous == 2
    assert first.problems == second.problems == ()
    assert any("nearest fire" in line for line in render.render_text(assess([schedule("a", a), schedule("b", b)],
               seen(runs), now=NOW, since=since)))  # fmt: skip
    # Far apart, the same two schedules are not ambiguous (see the test above).


def test_date_job_that_fired() -> None:
    since = NOW - HOUR
    fired_at = NOW - timedelta(minutes=25)
    job = schedule("once", DateTrigger(run_date=fired_at), next_run=None, row_present=False)
    (health,) = assess([job], seen([run(fired_at + timedelta(seconds=2))]), now=NOW, since=since).schedules
    assert (health.expected, health.started, health.missed) == (1, 1, ())
    assert health.problems == () and not health.overdue and not health.paused
    (never,) = assess([job], seen([]), now=NOW, since=since).schedules
    assert never.missed == (fired_at,)


def test_dst_change_inside_the_window_amsterdam_cron() -> None:
    """02:30 Europe/Amsterdam daily: on 2026-10-25 the clock passes 02:30 twice, so APScheduler fires twice."""
    now = datetime(2026, 10, 27, 0, 0, tzinfo=UTC)
    since = datetime(2026, 10, 24, 0, 0, tzinfo=UTC)
    cron = CronTrigger(hour=2, minute=30, timezone=ZoneInfo("Europe/Amsterdam"))
    instants = [
        datetime(2026, 10, 24, 0, 30, tzinfo=UTC),  # 02:30 CEST
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST, first pass
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 02:30 CET, the repeated hour
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),  # 02:30 CET
    ]
    job = schedule("amsterdam", cron, next_run=datetime(2026, 10, 27, 1, 30, tzinfo=UTC))
    runs = [run(t + timedelta(seconds=1)) for t in instants if t != instants[2]]
    (health,) = assess([job], seen(runs), now=now, since=since).schedules
    assert health.expected == 4 and health.missed == (instants[2],)
    # Spring forward: 02:30 does not exist on 2026-03-29; APScheduler runs it at 03:30 CEST (01:30Z).
    spring = assess([job], seen([]), now=datetime(2026, 3, 31, tzinfo=UTC), since=datetime(2026, 3, 28, tzinfo=UTC))
    assert spring.schedules[0].missed == (
        datetime(2026, 3, 28, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),
    )


def test_since_bounds_the_window() -> None:
    runs = [run(f + timedelta(seconds=1)) for f in fires(10, NOW - 2 * HOUR, NOW - timedelta(minutes=1))]
    half = [r for r in runs if r.started_at > NOW - timedelta(minutes=45)]
    short = assess([schedule("ten", every(10))], seen(half), now=NOW, since=NOW - timedelta(minutes=45))
    (health,) = short.schedules
    assert (health.expected, health.started, health.missed) == (4, 4, ())
    assert short.unexplained == {}
    long = assess([schedule("ten", every(10))], seen(half), now=NOW, since=NOW - 2 * HOUR)
    assert long.schedules[0].expected == 12 and len(long.schedules[0].missed) == 8
    assert long.schedules[0].missed[0] == NOW - 2 * HOUR


def test_not_before_skips_fires_before_the_last_apply() -> None:
    applied = NOW - timedelta(minutes=25)
    job = schedule("ten", every(10), not_before=applied)
    (health,) = assess([job], seen([]), now=NOW, since=NOW - HOUR).schedules
    assert health.missed == (NOW - timedelta(minutes=20), NOW - timedelta(minutes=10))


def test_pending_fire_is_not_yet_missed() -> None:
    report = assess([schedule("ten", every(10))], seen([]), now=NOW + timedelta(seconds=3), since=NOW - HOUR / 4)
    (health,) = report.schedules
    assert health.pending == 1 and health.missed == (NOW - timedelta(minutes=10),)


def test_coalesced_fires_count_as_run() -> None:
    since = NOW - timedelta(minutes=2)
    every_second = IntervalTrigger(seconds=1, start_date=NOW - HOUR, timezone=ZoneInfo("UTC"))
    one_start = [run(NOW - timedelta(seconds=60) + timedelta(seconds=3))]  # a wake-up 3 s late: 4 fires due
    job = schedule("fast", every_second, misfire_grace_time=5)
    (health,) = assess([job], seen(one_start), now=NOW, since=since).schedules
    assert health.started == 1 and health.coalesced >= 3
    assert health.expected == health.started + health.coalesced + len(health.missed)
    no_coalesce = schedule("fast", every_second, misfire_grace_time=5, coalesce=False)
    (separate,) = assess([no_coalesce], seen(one_start), now=NOW, since=since).schedules
    assert separate.coalesced == 0 and len(separate.missed) == separate.expected - 1


def test_paused_job_and_missing_workflow() -> None:
    paused = ScheduleInput("id-p", "p", "p", "task_a", "api", every(10), next_run_time=None)
    gone = schedule("g", every(60), workflow="task_gone")
    report = assess([paused, gone], seen([]), now=NOW, since=NOW - HOUR)
    first, second = report.schedules
    assert first.paused and first.expected == 0 and first.problems == ()
    assert Problem.WORKFLOW_MISSING in second.problems


def test_liveness_only_without_processes_table() -> None:
    report = assess([schedule("ten", every(10))], seen(None), now=NOW, since=NOW - HOUR)
    (health,) = report.schedules
    assert health.started is None and health.missed == () and health.expected == 6
    assert report.healthy and not report.processes_available
    assert any("No processes table" in line for line in render.render_text(report))


def test_text_table_fits_80_columns_and_json_is_versioned() -> None:
    long_key = "a-very-long-schedule-key-that-goes-on-and-on"
    jobs = [schedule(long_key, every(10), workflow="task_with_a_long_workflow_name"), schedule("b", every(10))]
    report = assess(jobs, seen([]), now=NOW, since=NOW - HOUR)
    text = render.render_text(report)
    table = text[text.index(next(line for line in text if line.startswith("KEY"))) :][:3]
    assert all(len(line) <= 80 for line in table)
    data = json.loads(render.render_json(report)[0])
    assert data["format_version"] == 1 and data["summary"]["missed"] == 12
    assert data["schedules"][0]["problems"] == ["missed", "workflow-missing"]
    markdown = render.render_markdown(report)
    assert markdown[0].startswith("### ❌") and any(line.startswith("| `b` |") for line in markdown)


def test_prometheus_exposition_parses_with_prometheus_client() -> None:
    since = NOW - HOUR
    expected = fires(10, since, NOW - timedelta(seconds=30))
    runs = [run(f + timedelta(seconds=1), status="failed" if i == 0 else "completed") for i, f in enumerate(expected)]
    report = assess([schedule("ten", every(10)), schedule("b", every(30), workflow="task_b")], seen(runs), now=NOW,
                    since=since)  # fmt: skip
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition(report))}
    by_key = {s.labels["key"]: s for s in families["schedules_health_missed_runs"].samples}
    assert by_key["ten"].value == 0 and by_key["b"].value == 2
    assert by_key["b"].labels == {"key": "b", "workflow": "task_b", "source": "api"}
    failed = {s.labels["key"]: s.value for s in families["schedules_health_failed_runs"].samples}
    assert failed == {"ten": 1.0, "b": 0.0}
    assert families["schedules_health_up"].samples[0].value == 1.0
    assert families["schedules_health_problem_schedules"].samples[0].value == 2.0
    labels = {tuple(sorted(s.labels)) for f in families.values() for s in f.samples}
    assert labels <= {(), ("key", "source", "workflow")}  # bounded: no instants, pids or reasons as labels


def test_fire_times_between_respects_start_and_end_date() -> None:
    trigger = IntervalTrigger(minutes=10, start_date=NOW - HOUR, end_date=NOW - HOUR / 2, timezone=ZoneInfo("UTC"))
    times, cut = fire_times_between(trigger, NOW - 2 * HOUR, NOW)
    assert [t.astimezone(UTC) for t in times] == [NOW - HOUR + timedelta(minutes=m) for m in (0, 10, 20, 30)]
    assert not cut
    many, cut = fire_times_between(every(1), NOW - HOUR, NOW, limit=5)
    assert len(many) == 5 and cut


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("24h", 86400), ("1h30m", 5400), ("7d", 604800)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "24", "h", "-1h", "0s", "400d", "1 hour"])
def test_parse_duration_refuses_with_the_form(text: str) -> None:
    with pytest.raises(HealthError, match=r"duration such as|longer than 0"):
        parse_duration(text)


def test_until_ends_the_window_in_the_past() -> None:
    runs = [run(f + timedelta(seconds=1)) for f in fires(10, NOW - 3 * HOUR, NOW - timedelta(minutes=1))]
    earlier = assess([schedule("ten", every(10))], seen(runs), now=NOW - HOUR, since=NOW - 2 * HOUR)
    (health,) = earlier.schedules
    # 10:00 .. 10:50 started; 11:00 is the window's end, its start (11:00:01) after it: pending, not missed
    assert (health.expected, health.started, health.missed, health.pending) == (6, 6, (), 1)
    assert earlier.last_scheduled_start is not None and earlier.last_scheduled_start <= NOW - HOUR
    assert parse_instant("2026-06-10T12:00:00Z") == NOW and parse_instant("2026-06-10 12:00") == NOW
    with pytest.raises(HealthError, match="ISO 8601"):
        parse_instant("yesterday")


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert parse_listen(":9108") == ("127.0.0.1", 9108)
    with pytest.raises(HealthError, match="HOST:PORT"):
        parse_listen("9108x")


# --- the command, end to end on the embedded SQLite default ------------------------------------------------


SCHEDULES_YAML = """\
schedules:
  - key: every-minute
    workflow_name: task_clean_up_tasks
    trigger: interval
    trigger_kwargs: {minutes: 1}
"""


def schedules_cli(run: Schedules, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run(*args, env=env)


@pytest.fixture
def embedded_db(tmp_path: Path) -> str:
    directory = tmp_path / "schedules.d"
    directory.mkdir()
    (directory / "jobs.yaml").write_text(SCHEDULES_YAML)
    url = f"sqlite:///{tmp_path / 'schedules.db'}"
    applied = schedules_cli(IN_PROCESS, "reconcile", str(directory), "--db", url)  # set-up, not under test
    assert applied.returncode == 0, applied.stderr
    return url


def test_embedded_sqlite_says_liveness_only_in_one_line(
    embedded_db: str, tmp_path: Path, command_line: Schedules
) -> None:
    before = Path(embedded_db.removeprefix("sqlite:///")).read_bytes()
    done = schedules_cli(command_line, "health", str(tmp_path / "absent"), "--db", embedded_db, "--since", "1h")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sum("No processes table" in line for line in lines) == 1
    assert any(line.startswith("every-minute ") and line.rstrip().endswith("ok") for line in lines)
    assert done.stderr == ""
    as_json = schedules_cli(command_line, "health", "--db", embedded_db, "--format", "json")
    data = json.loads(as_json.stdout)
    assert data["processes_available"] is False and data["schedules"][0]["started"] is None
    assert "no processes table" in as_json.stderr
    assert Path(embedded_db.removeprefix("sqlite:///")).read_bytes() == before  # read-only


def test_bad_since_is_one_line_exit_1(embedded_db: str, command_line: Schedules) -> None:
    done = schedules_cli(command_line, "health", "--db", embedded_db, "--since", "yesterday")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "--since 'yesterday'" in done.stderr


def test_unreachable_database_is_one_line_exit_1(command_line: Schedules) -> None:
    done = schedules_cli(command_line, "health", "--db", "postgresql://nobody:secret@127.0.0.1:1/none")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: database") and "secret" not in done.stderr
    assert done.stderr.strip().count("\n") == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scrape(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body: bytes = response.read()
                return body.decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
def test_serve_metrics_over_http(embedded_db: str) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "health", "--db", embedded_db, "--serve", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = scrape(f"http://127.0.0.1:{port}/metrics", time.monotonic() + 60)
        families = {f.name: f for f in text_string_to_metric_families(body)}
        (expected,) = families["schedules_health_expected_runs"].samples
        assert expected.labels == {"key": "every-minute", "workflow": "task_clean_up_tasks", "source": "gitops"}
        assert families["schedules_health_up"].samples[0].value == 1.0
        assert families["schedules_health_processes_table"].samples[0].value == 0.0
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert out == "" and "serving /metrics" in err


def test_serve_on_a_taken_port_is_one_line_exit_1(embedded_db: str, command_line: Schedules) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = schedules_cli(command_line, "health", "--db", embedded_db, "--serve", f"127.0.0.1:{port}")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"error: --serve 127.0.0.1:{port}: ") and done.stderr.count("\n") == 1


def test_soft_deleted_workflow_and_unreadable_row_are_problems() -> None:
    deleted = schedule("d", every(60), workflow="task_b")
    unreadable = ScheduleInput("id-u", "u", "", "task_a", "unreadable", None, NOW + HOUR, error="cannot unpickle")
    workflows = {"task_a": False, "task_b": True}  # task_b soft-deleted
    report = assess([deleted, unreadable], Observations([], False, workflows), now=NOW, since=NOW - HOUR)
    first, second = report.schedules
    assert Problem.WORKFLOW_DELETED in first.problems and first.workflow_state == "soft-deleted"
    assert second.problems == (Problem.UNREADABLE,) and second.expected == 0
    text = render.render_text(report)
    assert "d: workflow 'task_b' is soft-deleted" in text and "u: unreadable row: cannot unpickle" in text


@pytest.mark.slow
def test_runner_metrics_count_starts_and_lateness(tmp_path: Path) -> None:
    """`schedules run --metrics`: its start counter and lateness histogram, beside health's gauges, over HTTP."""
    directory = tmp_path / "schedules.d"
    directory.mkdir()
    (directory / "jobs.yaml").write_text(
        "schedules:\n  - key: tick\n    workflow_name: task_clean_up_tasks\n    trigger: interval\n"
        "    trigger_kwargs: {seconds: 1}\n"
    )
    url = f"sqlite:///{tmp_path / 'schedules.db'}"
    assert schedules_cli(WHOLE_PROCESS, "reconcile", str(directory), "--db", url).returncode == 0
    starts = tmp_path / "starts.jsonl"
    starter = Path(__file__).resolve().with_name("runner_starter.py")
    port = free_port()
    runner = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "run", "--db", url, "--starter",
         f"command:{sys.executable} {starter} {starts}", "--metrics", f"127.0.0.1:{port}", "--poll-interval", "0.2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def started_by_outcome(body: str) -> tuple[dict[str, Any], list[Any], dict[str, float]]:
        families = {f.name: f for f in text_string_to_metric_families(body)}
        samples = families["schedules_runner_starts"].samples if "schedules_runner_starts" in families else []
        started = [s for s in samples if s.name == "schedules_runner_starts_total"]
        return families, started, {s.labels["outcome"]: s.value for s in started}

    try:
        # The starter writes its line before the runner counts that start: scrape until the counter has two
        # (a fixed number of lines in starts.jsonl raced the count on a busy machine).
        deadline = time.monotonic() + 60
        while True:
            body = scrape(f"http://127.0.0.1:{port}/metrics", time.monotonic() + 30)
            families, started, by_outcome = started_by_outcome(body)
            if by_outcome.get("started", 0) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=30)
    assert runner.returncode == 0, err[-3000:]
    assert by_outcome.get("started", 0) >= 2, body
    assert len(starts.read_text().splitlines()) >= 2  # the starter was called for each
    assert started[0].labels["key"] == "tick" and started[0].labels["workflow"] == "task_clean_up_tasks"
    lateness = families["schedules_runner_start_lateness_seconds"].samples
    count = next(s.value for s in lateness if s.name.endswith("_count"))
    assert count >= by_outcome["started"] - 1  # a start may land between the two reads of one scrape
    assert "schedules_health_expected_runs" in families and families["schedules_health_up"].samples[0].value == 1.0
