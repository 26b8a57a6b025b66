"""`schedules show-schedule` and `schedules force`, run as the real command on real databases.

The database holds every kind of row a real one has: schedules reconcile owns (in sync, drifted,
with pending file changes, with their row deleted outside), an API job, a paused API job, a legacy
decorator job and an unreadable row.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select, update

from reconciler import store
from reconciler.apply import ApplySettings
from reconciler.commands.reconcile import ReconcileOptions, run
from reconciler.jobstate import build_job_row, load_job_state, repickle
from reconciler.plan import PlanSettings, schedule_id_for
from tests.command_line import WHOLE_PROCESS, Schedules
from tests.test_reconcile import schedule as spec
from tests.test_reconcile import write_schedules

REPO = Path(__file__).resolve().parent.parent
STARTER = Path(__file__).resolve().with_name("runner_starter.py")
TOKEN = "s3cret-token-for-tests"


def schedules_cli(*args: str, run: Schedules = WHOLE_PROCESS) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URI", "ORCHESTRATOR_URL", "ORCHESTRATOR_TOKEN")}
    return run(*args, cwd=REPO, env=env)


def command_starter(out: Path, *extra: str) -> str:
    return "command:" + shlex.join([sys.executable, str(STARTER), str(out), *extra])


@dataclass
class Fixture:
    db_url: str
    directory: Path
    api_id: str
    paused_id: str


SPECS = {
    "in-sync": spec("in-sync", user_inputs=[{"message": "hello"}]),
    "drifted": spec("drifted", trigger="cron", trigger_kwargs={"hour": 3}, timezone="Europe/Amsterdam", name="Nightly"),
    "pending": spec("pending", trigger_kwargs={"hours": 2}),
    "gone": spec("gone", trigger_kwargs={"hours": 4}),
}


@pytest.fixture
def populated(db_url: str, tmp_path: Path) -> Iterator[Fixture]:
    directory = tmp_path / "schedules.d"
    write_schedules(directory, *SPECS.values())
    outcome = run(ReconcileOptions(directory=directory, db_url=db_url, apply=ApplySettings(guard_seconds=0)))
    assert outcome.exit_code == 0, outcome.err
    engine = store.connect(db_url)
    api_id, paused_id = str(uuid.uuid4()), str(uuid.uuid4())
    with store.write_transaction(engine) as conn:
        workflow = {w.name: w for w in store.read_workflows(conn)}["task_validate_products"]
        trigger = IntervalTrigger(hours=2, timezone="UTC")
        rows = [
            build_job_row(
                job_id=job_id,
                trigger=trigger,
                workflow_name="task_validate_products",
                user_inputs=[{}],
                name=name,
                next_run_time=next_run,
            )
            for job_id, name, next_run in (
                (api_id, "Made in the UI", datetime.now(UTC) + timedelta(minutes=30)),
                (paused_id, "Paused in the UI", None),
            )
        ]
        store.insert_jobs(conn, rows, [(workflow.workflow_id, api_id), (workflow.workflow_id, paused_id)])
        decorator = build_job_row(
            job_id="nightly-legacy",
            trigger=trigger,
            workflow_name="unused",
            user_inputs=[],
            name="legacy",
            next_run_time=datetime.now(UTC) + timedelta(minutes=10),
            func="myproject.schedules:nightly",
        )
        store.insert_jobs(conn, [decorator], [])
        conn.execute(
            store.apscheduler_jobs.insert().values(id="garbage", next_run_time=None, job_state=b"\x80\x05junk")
        )
        # drift: someone renamed the job in the database
        drifted = schedule_id_for("default", "drifted")
        blob = conn.execute(
            select(store.apscheduler_jobs.c.job_state).where(store.apscheduler_jobs.c.id == drifted)
        ).scalar_one()
        conn.execute(
            update(store.apscheduler_jobs)
            .where(store.apscheduler_jobs.c.id == drifted)
            .values(job_state=repickle(load_job_state(bytes(blob)), name="Renamed by hand"))
        )
        store.delete_jobs(conn, [schedule_id_for("default", "gone")])
    engine.dispose()
    # a file change that has not been applied yet
    write_schedules(
        directory, *[s if k != "pending" else spec("pending", trigger_kwargs={"hours": 3}) for k, s in SPECS.items()]
    )
    yield Fixture(db_url, directory, api_id, paused_id)


def snapshot(db_url: str) -> Any:
    """Every row of every table the commands could touch (and the file itself for SQLite)."""
    engine = store.connect(db_url)
    with engine.connect() as conn:
        jobs = sorted((r.id, r.next_run_time, bytes(r.job_state)) for r in conn.execute(select(store.apscheduler_jobs)))
        ledger = sorted(tuple(str(v) for v in r) for r in conn.execute(select(store.ledger)))
        tables = sorted(store.table_names(conn))
    engine.dispose()
    raw = b""
    if db_url.startswith("sqlite:///"):
        raw = hashlib.sha256(Path(db_url.removeprefix("sqlite:///")).read_bytes()).digest()
    return jobs, ledger, tables, raw


def test_show_schedule_lists_every_kind_of_job(populated: Fixture, command_line: Schedules) -> None:
    before = snapshot(populated.db_url)
    done = schedules_cli(
        "show-schedule", str(populated.directory), "--db", populated.db_url, "--format", "json", run=command_line
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    by_id = {j["id"]: j for j in listed["jobs"]}
    by_key = {j["key"]: j for j in listed["jobs"] if j["key"]}

    assert {k: by_key[k]["source"] for k in SPECS} == dict.fromkeys(SPECS, "gitops")
    assert {k: by_key[k]["drift"] for k in SPECS} == {
        "in-sync": "no",
        "drifted": "drift",
        "pending": "pending",
        "gone": "row deleted",
    }
    assert by_id[populated.api_id]["source"] == "api" and by_id[populated.api_id]["drift"] == "-"
    assert by_id["nightly-legacy"]["source"] == "decorator"
    assert by_id["garbage"]["source"] == "unreadable"
    paused = by_id[populated.paused_id]
    assert paused["paused"] is True and paused["next_run_utc"] is None and paused["source"] == "api"
    assert by_key["in-sync"]["trigger"] == "every 1 hour"
    assert by_key["in-sync"]["workflow"] == "task_clean_up_tasks"
    drifted = by_key["drifted"]
    assert drifted["name"] == "Renamed by hand"
    assert drifted["next_run_local"].endswith(("CET", "CEST"))  # the schedule's own zone
    local = datetime.strptime(drifted["next_run_local"][:19], "%Y-%m-%d %H:%M:%S")
    assert local.hour == 3 and datetime.fromisoformat(drifted["next_run_utc"]).hour in (1, 2)
    # paused and unreadable jobs sort last, and nothing was written (read-only connection)
    assert [j["next_run_utc"] is None for j in listed["jobs"]] == sorted(
        j["next_run_utc"] is None for j in listed["jobs"]
    )
    assert snapshot(populated.db_url) == before

    text = schedules_cli("show-schedule", str(populated.directory), "--db", populated.db_url, run=command_line)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == f"Jobs in {populated.db_url}"
    header = text.stdout.splitlines()[2]  # not a terminal: the wide layout
    for column in ("key", "name", "workflow", "trigger", "next run", "source", "drift"):
        assert column in header
    assert "paused" in text.stdout and "unreadable" in text.stdout and "row deleted" in text.stdout

    # without the files only the ledger's row hash is there: unchanged is "no", changed is "?"
    bare = schedules_cli(
        "show-schedule",
        str(populated.directory / "absent"),
        "--db",
        populated.db_url,
        "--format",
        "json",
        run=command_line,
    )
    assert bare.returncode == 0, bare.stderr
    bare_by_key = {j["key"]: j for j in json.loads(bare.stdout)["jobs"] if j["key"]}
    assert bare_by_key["in-sync"]["drift"] == "no"
    assert bare_by_key["drifted"]["drift"] == "?"
    assert snapshot(populated.db_url) == before


@pytest.mark.slow
def test_force_starts_through_the_command_starter(populated: Fixture, tmp_path: Path) -> None:
    out = tmp_path / "starts.jsonl"
    before = snapshot(populated.db_url)
    done = schedules_cli("force", "in-sync", "--db", populated.db_url, "--starter", command_starter(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Started task_clean_up_tasks for in-sync"), done.stdout
    (start,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert start["key"] == "in-sync" and start["scheduled_time"] is None
    assert start["user_inputs"] == [{"message": "hello"}]
    assert start["schedule_id"] == schedule_id_for("default", "in-sync")

    by_id = schedules_cli("force", populated.api_id, "--db", populated.db_url, "--starter", command_starter(out))
    assert by_id.returncode == 0, by_id.stderr
    assert json.loads(out.read_text().splitlines()[-1])["workflow_name"] == "task_validate_products"
    assert snapshot(populated.db_url) == before  # a forced start does not move the schedule

    failing = schedules_cli("force", "in-sync", "--db", populated.db_url, "--starter", command_starter(out, "fail"))
    assert failing.returncode == 1
    assert failing.stderr.strip().splitlines() == [
        "error: starting task_clean_up_tasks for in-sync failed: "
        "command exited with 3: cannot reach the workflow engine"
    ]

    for name, message in (
        ("no-such-key", "error: unknown schedule 'no-such-key': no ledger key and no job id matches"),
        ("nightly-legacy", "error: nightly-legacy: not an orchestrator-core scheduled task"),
        ("garbage", "error: garbage: the job row is unreadable"),
    ):
        refused = schedules_cli("force", name, "--db", populated.db_url, "--starter", command_starter(out))
        assert refused.returncode == 1, refused.stdout
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), lines
    assert len(out.read_text().splitlines()) == 2  # only the two successful starts


class _Api(BaseHTTPRequestHandler):
    status = 201
    answer: ClassVar[dict[str, Any]] = {"id": "3f0c1a52-0000-4000-8000-000000000001"}
    seen: ClassVar[list[tuple[str, str | None, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        type(self).seen.append((self.path, self.headers.get("Authorization"), json.loads(self.rfile.read(length))))
        body = json.dumps(type(self).answer).encode()
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    _Api.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_force_through_the_rest_api(sqlite_url: str, tmp_path: Path, fake_api: str) -> None:
    directory = tmp_path / "schedules.d"
    write_schedules(directory, SPECS["in-sync"])
    assert run(ReconcileOptions(directory=directory, db_url=sqlite_url, settings=PlanSettings())).exit_code == 0
    env_token = {**os.environ, "ORCHESTRATOR_TOKEN": TOKEN}
    env_token.pop("DATABASE_URI", None)
    command = [sys.executable, "-m", "reconciler", "force", "in-sync", "--db", sqlite_url]
    done = subprocess.run(
        [*command, "--orchestrator-url", fake_api], capture_output=True, text=True, cwd=REPO, env=env_token, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "process 3f0c1a52-0000-4000-8000-000000000001" in done.stdout
    assert _Api.seen == [("/api/processes/task_clean_up_tasks", f"Bearer {TOKEN}", [{"message": "hello"}])]

    _Api.status, _Api.answer = 404, {"detail": "Workflow does not exist"}
    try:
        refused = subprocess.run(
            [*command, "--starter", "rest", "--orchestrator-url", fake_api, "--token", TOKEN],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env_token,
            timeout=60,
        )
    finally:
        _Api.status, _Api.answer = 201, {"id": "3f0c1a52-0000-4000-8000-000000000001"}
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: starting task_clean_up_tasks for in-sync failed: orchestrator-core answered 404 Not Found: "
        "Workflow does not exist"
    ]
    for output in (done.stdout, done.stderr, refused.stdout, refused.stderr):
        assert TOKEN not in output

    # no starter available at all: one clear line, for force and for run alike
    for args in (["force", "in-sync"], ["run"]):
        nothing = schedules_cli(*args, "--db", sqlite_url)
        assert nothing.returncode == 1
        (line,) = nothing.stderr.strip().splitlines()
        assert line.startswith("error: no way to start workflows here"), line
