"""`--timeout` against a frozen PostgreSQL (issue 12, item 4): exit 1, one line, within --timeout + 5 s.

The server is a cluster of this module's own (pg_createcluster on a random free port, a unique name,
dropped afterwards), never the shared one on 5432. Freezing it is SIGSTOP to its postmaster and every
backend: the kernel still accepts connections and acknowledges keepalives, so only the client can give
up. After SIGCONT the database must be exactly as it was.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from reconciler import deadline, interrupts, store
from reconciler.commands.reconcile import ReconcileOptions, run
from reconciler.commands.validate import HELPED_FILES
from reconciler.jobstate import load_job_state
from tests.conftest import init_compatible
from tests.interval_dirs import write_dir

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pg_createcluster") is None, reason="needs PostgreSQL's pg_createcluster"),
]

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pg_version() -> str:
    return sorted(os.listdir("/usr/lib/postgresql"), key=int)[-1]


class Cluster:
    """A PostgreSQL cluster of our own: started, frozen, thawed, dropped."""

    def __init__(self) -> None:
        self.version = pg_version()
        self.name = f"reconciler_frozen_{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        subprocess.run(
            ["pg_createcluster", self.version, self.name, "-p", str(self.port), "--start", "--", "--auth=trust"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.data = Path(f"/var/lib/postgresql/{self.version}/{self.name}")
        self.admin = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def processes(self) -> list[int]:
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        return [postmaster, *map(int, children)]

    def freeze(self) -> list[int]:
        frozen = self.processes()
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        return frozen

    def thaw(self, frozen: list[int]) -> None:
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                continue

    def database(self) -> str:
        name = f"frozen_{uuid.uuid4().hex[:8]}"
        engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        url = self.admin.rsplit("/", 1)[0] + f"/{name}"
        init_compatible(url).dispose()
        return url

    def drop(self) -> None:
        subprocess.run(
            ["pg_dropcluster", self.version, self.name, "--stop"], check=False, capture_output=True, timeout=120
        )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    own = Cluster()
    try:
        yield own
    finally:
        own.drop()


def snapshot(url: str) -> dict[str, tuple[float | None, str]]:
    engine = store.connect(url)
    with engine.connect() as conn:
        rows = {
            r.id: (r.next_run_time, load_job_state(bytes(r.job_state))["name"])
            for r in conn.execute(select(store.apscheduler_jobs))
        }
        ledger = conn.execute(text("SELECT count(*) FROM reconciler_ledger")).scalar_one()
    engine.dispose()
    return {**rows, "ledger": (float(ledger), "")}


def reconcile_cli(
    directory: Path, url: str, timeout: float, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "reconcile", str(directory), "--db", url, "--timeout", f"{timeout:g}"],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def applied(cluster: Cluster, tmp_path: Path) -> tuple[str, dict[str, tuple[float | None, str]]]:
    url = cluster.database()
    first = run(ReconcileOptions(directory=write_dir(tmp_path / "schedules.d", {"a": "A", "b": "B"}), db_url=url))
    assert first.exit_code == 0, first.err
    return url, snapshot(url)


def test_a_frozen_server_ends_the_command_within_its_timeout(
    cluster: Cluster, applied: tuple[str, dict[str, tuple[float | None, str]]], tmp_path: Path
) -> None:
    url, before = applied
    changed = write_dir(tmp_path / "schedules.d", {"a": "A2", "b": "B2", "c": "C"})
    frozen = cluster.freeze()
    try:
        started = time.monotonic()
        proc = reconcile_cli(changed, url, timeout=3)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        cluster.thaw(frozen)
    assert proc.returncode == 1, (out, err)
    assert err.splitlines() == ["error: database did not answer within 3 s; nothing was applied"], err
    assert out == ""
    assert took < 3 + 5, took
    assert snapshot(url) == before


def test_a_server_frozen_in_the_middle_of_an_apply_rolls_it_back(
    cluster: Cluster, applied: tuple[str, dict[str, tuple[float | None, str]]], tmp_path: Path
) -> None:
    url, before = applied
    changed = write_dir(tmp_path / "schedules.d", {"a": "A2", "b": "B2", "c": "C"})
    flag = tmp_path / "paused"
    flag.touch()
    env = {interrupts.PAUSE_AT: "planned", interrupts.PAUSE_FILE: str(flag)}
    started = time.monotonic()
    proc = reconcile_cli(changed, url, timeout=8, env=env)
    frozen: list[int] = []
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().strip() == "paused at planned"  # planned, inside the transaction
        frozen = cluster.freeze()
        flag.unlink()  # the writes now go to a server that does not answer
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        cluster.thaw(frozen)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, (out, err)
    assert err.splitlines() == ["error: database did not answer within 8 s; nothing was applied"], err
    assert took < 8 + 5, took
    deadline = time.monotonic() + 30
    while snapshot(url) != before and time.monotonic() < deadline:  # the server rolls back once it runs again
        time.sleep(0.2)
    assert snapshot(url) == before


def test_the_timeout_comes_from_the_environment(
    cluster: Cluster, applied: tuple[str, dict[str, tuple[float | None, str]]], tmp_path: Path
) -> None:
    url, before = applied
    frozen = cluster.freeze()
    try:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "reconciler", "show-schedule", "--db", url],
            cwd=REPO,
            env={**os.environ, "RECONCILER_TIMEOUT": "2"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - started
    finally:
        cluster.thaw(frozen)
    assert (proc.returncode, proc.stderr.splitlines()) == (
        1,
        ["error: database did not answer within 2 s; nothing was applied"],
    ), proc.stdout
    assert took < 2 + 5
    assert snapshot(url) == before


def test_a_live_server_is_not_cut_off(applied: tuple[str, dict[str, tuple[float | None, str]]], tmp_path: Path) -> None:
    url, _before = applied
    proc = reconcile_cli(write_dir(tmp_path / "schedules.d", {"a": "A2", "b": "B2"}), url, timeout=30)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, (out, err)
    assert sorted(name for key, (_n, name) in snapshot(url).items() if key != "ledger") == ["A2", "B2"]


def running_in_group(group: int) -> list[int]:
    """The processes of process group `group` that still run (not zombies a non-reaping init holds)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            found.append(int(entry.name))
    return found


def wait_until_gone_all(group: int, bound: float = 10.0) -> bool:
    """Poll until nothing of process group `group` runs, at most `bound` seconds (a kill is asynchronous)."""
    until = time.monotonic() + bound
    while running_in_group(group):
        if time.monotonic() > until:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the parent-death signal is Linux's")
def test_a_frozen_server_ends_a_dry_run_that_reads_ahead_within_its_timeout(
    cluster: Cluster, applied: tuple[str, dict[str, tuple[float | None, str]]], tmp_path: Path
) -> None:
    """A dry run of enough files that its read-ahead child would check some once it has read: frozen in its
    read, the child never gets to them; the command checks every file, and ends within its timeout with the
    one line, leaving no process behind."""
    url, before = applied
    directory = tmp_path / "schedules.d"
    for f in range(HELPED_FILES + 8):
        write_dir(directory / f"team{f:03d}", {f"k{f:03d}": f"K{f}"})
    frozen = cluster.freeze()
    try:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "reconcile", str(directory), "--db", url, "--dry-run"],
            cwd=REPO,
            env={**os.environ, "RECONCILER_TIMEOUT": "3"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its process group: whatever it forked is found below
        )
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - started
        # No child of the command outlives it: the kernel ends it with its parent (forked._die_with), where its
        # own alarm would have ended it only at the bound plus deadline.GRACE, two seconds later.
        assert wait_until_gone_all(proc.pid, bound=1.0), running_in_group(proc.pid)
    finally:
        cluster.thaw(frozen)
    assert (proc.returncode, err.splitlines(), out) == (
        1,
        ["error: database did not answer within 3 s; nothing was applied"],
        "",
    )
    # Its output ends with it: a child alive until its own alarm held the pipes open deadline.GRACE longer.
    assert took < 3 + deadline.GRACE, took
    assert snapshot(url) == before
