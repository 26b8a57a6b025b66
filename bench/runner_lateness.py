"""Start lateness of `schedules run`: a 1 s interval schedule, N starts, on SQLite and PostgreSQL.

    python bench/runner_lateness.py                 # 20 runs per backend
    python bench/runner_lateness.py --runs 50 --backend sqlite

For each backend: an empty database, a runner process (`python -m reconciler run`) with a command
starter, and one schedule applied by reconcile: every 1 second. Two latenesses per start:

- runner: scheduled time → the moment the runner calls the starter (its `lateness_ms` log field;
  includes waking up, reading the due row, committing its next run time before the start);
- command: scheduled time → the moment the starter command itself runs (adds spawning a Python
  process, which is the command starter's own cost, not the scheduler's).

Prints one table: median / p90 / max in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run import database  # noqa: E402
from reconciler.apply import ApplySettings  # noqa: E402
from reconciler.commands.reconcile import ReconcileOptions, run  # noqa: E402

STARTER = """\
import json, sys, time
received = time.time()
payload = json.load(sys.stdin)
payload["received"] = received
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(payload) + "\\n")
"""
SCHEDULE = """\
schedules:
  - key: every-second
    workflow_name: task_clean_up_tasks
    trigger: interval
    trigger_kwargs: {seconds: 1}
"""


def measure(backend: str, runs: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory(prefix="lateness-") as tmp:
        workdir = Path(tmp)
        (workdir / "starter.py").write_text(STARTER)
        (workdir / "schedules.d").mkdir()
        (workdir / "schedules.d" / "bench.yaml").write_text(SCHEDULE)
        out, log = workdir / "starts.jsonl", workdir / "runner.log"
        with database(backend, workdir) as url:
            command = shlex.join([sys.executable, str(workdir / "starter.py"), str(out)])
            with log.open("w") as sink:
                runner = subprocess.Popen(
                    [sys.executable, "-m", "reconciler", "run", "--db", url, "--starter", f"command:{command}"],
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    cwd=REPO,
                )
            try:
                while "leader: starting workflows" not in log.read_text():
                    if runner.poll() is not None:
                        raise SystemExit(f"runner exited:\n{log.read_text()}")
                    time.sleep(0.1)
                options = ReconcileOptions(
                    directory=workdir / "schedules.d", db_url=url, apply=ApplySettings(guard_seconds=0)
                )
                outcome = run(options)
                if outcome.exit_code != 0:
                    raise SystemExit("\n".join(outcome.err))
                deadline = time.monotonic() + runs + 15
                while _count(log) < runs and time.monotonic() < deadline:
                    time.sleep(0.2)
            finally:
                runner.send_signal(signal.SIGTERM)
                runner.wait(30)
            started = [e for e in _events(log) if e.get("event") == "workflow started"][:runs]
            by_time = {json.loads(line)["scheduled_time"]: json.loads(line) for line in out.read_text().splitlines()}
            runner_ms = [float(e["lateness_ms"]) for e in started]
            command_ms = [
                (by_time[e["scheduled_time"]]["received"] - datetime.fromisoformat(e["scheduled_time"]).timestamp())
                * 1000
                for e in started
                if e["scheduled_time"] in by_time
            ]
            missed = [e for e in _events(log) if e.get("event") == "run missed"]
            if missed:
                print(f"{backend}: {len(missed)} run(s) missed", file=sys.stderr)
            return runner_ms, command_ms


def _events(log: Path) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text().splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def _count(log: Path) -> int:
    return sum(1 for e in _events(log) if e.get("event") == "workflow started")


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), action="append")
    args = parser.parse_args()
    rows = []
    for backend in args.backend or ["sqlite", "postgres"]:
        runner_ms, command_ms = measure(backend, args.runs)
        for what, values in (("runner", runner_ms), ("command", command_ms)):
            rows.append((backend, what, len(values), statistics.median(values), _p90(values), max(values)))
    print(f"{'backend':<10} {'measured at':<12} {'runs':>4} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}")
    for backend, what, count, median, p90, worst in rows:
        print(f"{backend:<10} {what:<12} {count:>4} {median:>10.1f} {p90:>8.1f} {worst:>8.1f}")


if __name__ == "__main__":
    main()
