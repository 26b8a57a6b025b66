"""`schedules run` end to end: real runner processes, real SQLite and PostgreSQL, a real command starter.

One scenario per database, with two runners (leader + standby):

1. A schedule created by reconcile while the leader sleeps (`--max-wait 3600`: only the change signal
   can wake it) runs on time, 2 s after the apply, and then every 2 s (≥ 3 starts in 7 s).
2. reconcile changes its interval and user_inputs while the runner runs: the new values arrive
   without a restart, on time.
3. The leader is killed (SIGKILL): the standby takes over.
4. reconcile deletes the schedule: nothing starts after that.
5. SIGTERM: the survivor exits 0. Over the whole run, every scheduled time started exactly once.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from reconciler import store
from reconciler.apply import ApplySettings
from reconciler.commands.reconcile import ReconcileOptions, run
from reconciler.plan import PlanSettings

REPO = Path(__file__).resolve().parent.parent
STARTER = Path(__file__).resolve().with_name("runner_starter.py")
LEADER = "leader: starting workflows from now on"
STANDBY = "standby: another runner holds the lock; waiting for it"


def write_schedules(directory: Path, *specs: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    body = "schedules:\n" + "".join(f"  - {json.dumps(s)}\n" for s in specs) if specs else "schedules: []\n"
    (directory / "main.yaml").write_text(body)


def tick(seconds: float, value: int) -> dict[str, Any]:
    return {
        "key": "tick",
        "workflow_name": "task_clean_up_tasks",
        "trigger": "interval",
        "trigger_kwargs": {"seconds": seconds},
        "user_inputs": [{"v": value}],
    }


def reconcile(directory: Path, db_url: str) -> float:
    """Apply the directory; returns the time the apply had committed."""
    outcome = run(
        ReconcileOptions(
            directory=directory,
            db_url=db_url,
            settings=PlanSettings(allow_empty=True),
            # no hold rule bound: these applies also show that the runner copes with a race on its rows
            apply=ApplySettings(guard_seconds=0),
        )
    )
    assert outcome.exit_code == 0, outcome.err
    return time.time()


class RunnerProcess:
    """`python -m reconciler run` with the test command starter; its JSON log goes to a file."""

    def __init__(self, db_url: str, out: Path, log: Path) -> None:
        self.log = log
        command = shlex.join([sys.executable, str(STARTER), str(out)])
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URI", "ORCHESTRATOR_URL")}
        with log.open("w") as sink:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "reconciler",
                    "run",
                    "--db",
                    db_url,
                    "--starter",
                    f"command:{command}",
                    "--lease-seconds",
                    "2",
                    "--poll-interval",
                    "0.2",
                    "--max-wait",
                    "3600",
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env=env,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if name is None or event.get("event") == name:
                found.append(event)
        return found

    def has(self, name: str) -> bool:
        return bool(self.events(name))


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def read_starts(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def scheduled(start: dict[str, Any]) -> float:
    return datetime.fromisoformat(start["scheduled_time"]).timestamp()


@pytest.fixture
def runners() -> Iterator[list[RunnerProcess]]:
    started: list[RunnerProcess] = []
    yield started
    for runner in started:
        if runner.proc.poll() is None:
            runner.proc.kill()
            runner.proc.wait(10)


@pytest.mark.slow
def test_two_runners_end_to_end(db_url: str, tmp_path: Path, runners: list[RunnerProcess]) -> None:
    out, directory = tmp_path / "starts.jsonl", tmp_path / "schedules.d"

    def starts(value: int | None = None, pid: int | None = None) -> list[dict[str, Any]]:
        return [
            s
            for s in read_starts(out)
            if (value is None or s["user_inputs"] == [{"v": value}]) and (pid is None or s["runner_pid"] == pid)
        ]

    leader = RunnerProcess(db_url, out, tmp_path / "leader.log")
    runners.append(leader)
    assert wait_for(lambda: leader.has(LEADER), 30), leader.log.read_text()
    standby = RunnerProcess(db_url, out, tmp_path / "standby.log")
    runners.append(standby)
    assert wait_for(lambda: standby.has(STANDBY), 30), standby.log.read_text()

    # 1. created while the leader sleeps with nothing to do: only the change signal can wake it
    write_schedules(directory, tick(2, 1))
    applied = reconcile(directory, db_url)
    assert wait_for(lambda: bool(starts()) and leader.has("workflow started"), 5), leader.log.read_text()
    first = starts()[0]
    assert applied + 1.0 <= scheduled(first) <= applied + 2.1  # its first run: 2 s after the apply
    (logged, *_) = leader.events("workflow started")
    assert logged["lateness_ms"] < 300, logged  # on time
    assert (logged["key"], logged["workflow"], logged["schedule_id"]) == (
        "tick",
        "task_clean_up_tasks",
        first["schedule_id"],
    )
    assert first["received"] - scheduled(first) < 1.0
    time.sleep(max(0.0, applied + 7.2 - time.time()))
    assert len(starts(1)) >= 3, starts()
    assert not standby.has("workflow started")  # the standby never starts anything

    # 2. a change while running: every 1 s with other inputs, without a restart
    write_schedules(directory, tick(1, 2))
    changed = reconcile(directory, db_url)
    assert wait_for(lambda: len(starts(2)) >= 2, 6), starts()
    new = starts(2)
    assert scheduled(new[0]) <= changed + 1.1  # the new trigger's first run, 1 s after the apply
    assert new[0]["received"] - scheduled(new[0]) < 1.0  # on time: picked up at once
    assert scheduled(new[1]) - scheduled(new[0]) == pytest.approx(1.0, abs=0.01)
    assert {s["runner_pid"] for s in starts()} == {leader.pid}

    # 3. the leader dies; the standby takes over within its lease (2 s here)
    leader.proc.send_signal(signal.SIGKILL)
    killed = time.time()
    leader.proc.wait(10)
    assert wait_for(lambda: len(starts(2, standby.pid)) >= 2, 10), standby.log.read_text()
    assert starts(2, standby.pid)[0]["received"] - killed < 5.0
    assert standby.has(LEADER)

    # 4. deleted by reconcile: it stops
    write_schedules(directory)
    deleted = reconcile(directory, db_url)
    time.sleep(2.5)
    assert [s for s in starts() if scheduled(s) > deleted] == []
    engine = store.connect(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(store.apscheduler_jobs.c.id)).all() == []
    engine.dispose()

    # 5. graceful stop
    standby.proc.send_signal(signal.SIGTERM)
    assert standby.proc.wait(15) == 0
    assert standby.has("runner stopped")

    per_time = Counter(s["scheduled_time"] for s in starts())
    assert per_time and max(per_time.values()) == 1, per_time  # no scheduled time started twice
