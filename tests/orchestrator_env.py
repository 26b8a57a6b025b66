"""A real orchestrator-core per release, each in a venv of its own, driven through a subprocess.

The project's own test venv never holds orchestrator-core (it would pin our pydantic, SQLAlchemy and
typer to its versions). A test that needs orchestrator-core's own behaviour asks this module for a
release, and runs that release's code the way a deployment runs it: a separate Python process with
orchestrator-core's settings in its environment (tests/orchestrator_side.py is the project's `main.py`).

    from tests.orchestrator_env import LATEST, VERSIONS, orchestrator_venv, Orchestrator

    venv = orchestrator_venv("4.8.2")           # built once, then cached (see below)
    with migrated_database(venv) as side:     # a scratch PostgreSQL database, migrated by that release
        side.run("register-tasks", json.dumps({...}))   # -> SideRun(result=<RESULT json>, output=...)
        side.run("inspect").result["jobs"]      # its job store's reading of every row
        side.run("scheduler", "show-schedule")  # its own CLI
        proc = side.popen(["scheduler", "run"], log_path)  # a long-running command (stop with side.stop(proc))
        side.python_code("print(1)")            # any snippet, run with that release's python

`Orchestrator(venv, db_url, project_dir)` does the same for a database you made yourself. `side.env` is the
environment its processes get (DATABASE_URI in the driver that release uses, CACHE_URI, EXECUTOR=threadpool, ...).

The venvs live under $RECONCILER_TEST_CACHE (default ~/.cache/reconciler-test), one folder per release and
pin set (`orchestrator-<version>-<digest>`), so CI on the same machine reuses them. A file lock per folder
makes parallel pytest runs wait for one build instead of building twice; a folder is used only once its
`ready.json` exists. Each venv also holds the reconciler's own runtime dependencies (from pyproject.toml),
so `python -m reconciler` can run inside it with PYTHONPATH=<repo> — a deployment that mounts `schedules`
in orchestrator-core's CLI or starts workflows with `--starter orchestrator`.
Builds use `uv` (a test dependency) when it is installed, else `python -m venv` + pip.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
SIDE = Path(__file__).resolve().with_name("orchestrator_side.py")

#: Every release the compatibility matrix runs: the first with the schedule API and linker table (4.7),
#: the last 4.x, the first 5.x and the newest on the registry.
VERSIONS = ("4.7.2", "4.8.2", "5.0.5", "5.5.0")
LATEST = "5.5.0"

#: What a plain `pip install orchestrator-core==X` needs added today for the release to import at all
#: (strawberry-graphql and oauth2-lib moved on; their newer releases need graphql-core 3.3 / drop httpx).
EXTRA_PINS: Mapping[str, tuple[str, ...]] = {
    "4.7.2": ("graphql-core>=3.2,<3.3", "httpx"),
    "4.8.2": ("graphql-core>=3.2,<3.3", "httpx"),
}

CACHE = Path(os.environ.get("RECONCILER_TEST_CACHE", "~/.cache/reconciler-test")).expanduser()
REDIS_URL = f"{os.environ.get('RECONCILER_TEST_REDIS', 'redis://127.0.0.1:6379')}/" + os.environ.get(
    "RECONCILER_TEST_REDIS_DB", "13"
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BUILD_TIMEOUT = 900


def reconciler_requirements() -> tuple[str, ...]:
    """The reconciler's runtime dependencies (and its PostgreSQL driver), as pyproject.toml declares them."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return (*project["dependencies"], *project["optional-dependencies"]["postgres"])


def requirements_for(version: str) -> tuple[str, ...]:
    return (f"orchestrator-core=={version}", *EXTRA_PINS.get(version, ()), *reconciler_requirements())


@dataclass(frozen=True)
class OrchestratorVenv:
    """One built venv holding one orchestrator-core release."""

    version: str
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def package(self) -> str:
        """Its import root: 5.0 moved everything below `orchestrator.core`."""
        return "orchestrator.core" if self.major >= 5 else "orchestrator"

    @property
    def func(self) -> str:
        """The job func reference this release writes for API schedules."""
        return f"{self.package}.schedules.service:run_start_workflow_scheduler_task"

    def database_uri(self, url: str) -> str:
        """`url` with the driver this release installs: psycopg2 in 4.x, psycopg 3 in 5.x."""
        rest = url.split("://", 1)[1]
        return f"postgresql://{rest}" if self.major < 5 else f"postgresql+psycopg://{rest}"


def _base_python() -> str:
    return getattr(sys, "_base_executable", None) or sys.executable


def _uv() -> str | None:
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.exists() else shutil.which("uv")


def orchestrator_venv(version: str) -> OrchestratorVenv:
    """The venv of orchestrator-core `version`, building it on first use (locked against parallel builds)."""
    requirements = requirements_for(version)
    key = json.dumps({"version": version, "requirements": requirements, "python": sys.version_info[:3]})
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    path = CACHE / f"orchestrator-{version}-{digest}"
    ready = path / "ready.json"
    if ready.exists():
        return OrchestratorVenv(version, path)
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{path.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it: wait for it, then use its result
        if not ready.exists():
            _build(path, requirements)
            ready.write_text(key)
    return OrchestratorVenv(version, path)


def _build(path: Path, requirements: Sequence[str]) -> None:
    shutil.rmtree(path, ignore_errors=True)  # a build that died half way
    python = path / "bin" / "python"
    uv = _uv()
    if uv:
        commands = [
            [uv, "venv", "--quiet", "--python", _base_python(), str(path)],
            [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(python), *requirements],
        ]
    else:
        commands = [
            [_base_python(), "-m", "venv", str(path)],
            [str(python), "-m", "pip", "install", "--quiet", *requirements],
        ]
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        if done.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            raise RuntimeError(f"building {path.name} failed: {' '.join(command[:3])}:\n{done.stderr[-4000:]}")


@dataclass
class SideRun:
    """One finished command of tests/orchestrator_side.py: its `RESULT` value and its whole output."""

    result: Any
    output: str  # stdout + stderr, ANSI colours stripped
    returncode: int
    stdout: str = ""


@dataclass
class Orchestrator:
    """orchestrator-core `venv` configured for the database `db_url` (any SQLAlchemy PostgreSQL URL)."""

    venv: OrchestratorVenv
    db_url: str
    project: Path  # the project's folder: its en-GB.json (translations of the project's own tasks)
    redis_url: str = REDIS_URL
    extra_env: Mapping[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(init=False)
    migrated: dict[str, Any] = field(init=False, default_factory=dict)  # what `migrate` reported

    def __post_init__(self) -> None:
        self.project.mkdir(parents=True, exist_ok=True)
        translations = {"task_reconciler_probe": "Reconciler probe", "task_reconciler_plain": "Reconciler plain task"}
        (self.project / "en-GB.json").write_text(json.dumps({"workflow": translations}))
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RECONCILER_", "VIRTUAL_ENV", "PYTHON")) and k not in {"DATABASE_URI", "CACHE_URI"}
        }
        env.update(
            DATABASE_URI=self.venv.database_uri(self.db_url),
            TRANSLATIONS_DIR=str(self.project),
            CACHE_URI=self.redis_url,
            EXECUTOR="threadpool",
            LOG_LEVEL="DEBUG",
            COLUMNS="400",  # rich tables (show-schedule) unwrapped
            TERM="dumb",
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(REPO),  # the side script imports tests.*; `python -m reconciler` runs from the repo
            # 5.x imports litellm, which would otherwise try to download a price list at import (no internet here)
            LITELLM_LOCAL_MODEL_COST_MAP="True",
        )
        env.update(self.extra_env)
        self.env = env

    def command(self, *args: str) -> list[str]:
        return [str(self.venv.python), str(SIDE), *args]

    def run(self, *args: str, timeout: float = 180, check: bool = True) -> SideRun:
        """tests/orchestrator_side.py ARGS with this release; asserts exit 0 unless `check=False`."""
        return self._finish(
            subprocess.run(
                self.command(*args), cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
            ),
            args[0] if args else "",
            check,
        )

    def python_code(self, code: str, *args: str, timeout: float = 180, check: bool = True) -> SideRun:
        """`python -c code ARGS` with this release's python and settings."""
        done = subprocess.run(
            [str(self.venv.python), "-c", code, *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return self._finish(done, "python -c", check)

    def reconciler(self, *args: str, timeout: float = 180, check: bool = False) -> SideRun:
        """`python -m reconciler ARGS` inside this release's venv (the reconciler mounted in a deployment)."""
        done = subprocess.run(
            [str(self.venv.python), "-m", "reconciler", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return self._finish(done, "reconciler", check)

    def popen(self, args: Sequence[str], log: IO[str]) -> subprocess.Popen[str]:
        """A long-running side command (`scheduler run`), its output into `log`; stop it with `stop`."""
        return subprocess.Popen(
            self.command(*args), cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True
        )

    @staticmethod
    def stop(proc: subprocess.Popen[str], timeout: float = 30) -> None:
        """SIGTERM (the side script turns it into a clean shutdown), then SIGKILL after `timeout`."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def migrate(self) -> dict[str, Any]:
        """This release's own alembic migrations (see orchestrator_side.migrate); returns revisions and heads."""
        value: dict[str, Any] = self.run("migrate", timeout=300).result
        self.migrated = value
        return value

    @staticmethod
    def _finish(done: subprocess.CompletedProcess[str], what: str, check: bool) -> SideRun:
        output = ANSI.sub("", done.stdout + done.stderr)
        if check:
            assert done.returncode == 0, f"orchestrator side {what} exited {done.returncode}:\n{output[-6000:]}"
        results = [line[len("RESULT ") :] for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        return SideRun(json.loads(results[-1]) if results else None, output, done.returncode, done.stdout)


@contextlib.contextmanager
def migrated_database(venv: OrchestratorVenv, project: Path, **settings: Any) -> Iterator[Orchestrator]:
    """A scratch PostgreSQL database as `venv`'s release migrates one, dropped afterwards.

    The release's migrations run once per release (and version of tests/orchestrator_side.py) into a
    template database on the server, `rt_tmpl_<...>`, kept like the venvs; each scratch database is a copy
    of it (CREATE DATABASE ... TEMPLATE), which takes a second instead of that release's half a minute.
    `side.migrated` is what the migration reported.
    """
    from tests.conftest import drop_scratch_pg

    template, migrated = migrated_template(venv)
    url = _create_from_template(template)
    try:
        side = Orchestrator(venv, url, project, **settings)
        side.migrated = migrated
        yield side
    finally:
        drop_scratch_pg(url)


def migrated_template(venv: OrchestratorVenv) -> tuple[str, dict[str, Any]]:
    """The name of `venv`'s migrated template database, and what its migration reported (built once)."""
    from sqlalchemy import text

    from tests.conftest import PG_ADMIN, pg_admin_engine

    # keyed by the venv (its folder: release, pins, cache) and by what `migrate` runs
    digest = hashlib.sha256(str(venv.path).encode() + SIDE.read_bytes()).hexdigest()[:10]
    name = f"rt_tmpl_{venv.version.replace('.', '_')}_{digest}"
    admin = pg_admin_engine()
    try:
        with (CACHE / f"{name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with admin.connect() as conn:
                query = "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"
                found = conn.execute(text(query), {"n": name}).first()
                if found is not None and found[0]:
                    return name, json.loads(found[0])
                building = f"{name}_building"
                conn.execute(text(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)'))
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{building}"'))
            side = Orchestrator(venv, PG_ADMIN.rsplit("/", 1)[0] + f"/{building}", CACHE / f"{name}-project")
            migrated = side.migrate()
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{name}"'))
                # the report travels with the template: a database comment (done last: it marks "complete")
                comment = json.dumps(migrated).replace("'", "''")
                conn.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{comment}'"))
            return name, migrated
    finally:
        admin.dispose()


def _create_from_template(template: str) -> str:
    import uuid

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from tests.conftest import PG_ADMIN, pg_admin_engine

    name = f"rt_{uuid.uuid4().hex[:12]}"
    admin = pg_admin_engine()
    try:
        for attempt in range(50):  # "source database is being accessed by other users": another copy in flight
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
                break
            except OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.2)
    finally:
        admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def wait_for_text(path: Path, needle: str, timeout: float) -> str:
    """Until the log file at `path` contains `needle`; returns the log (ANSI stripped) or raises."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = ANSI.sub("", path.read_text()) if path.exists() else ""
        if needle in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} not seen within {timeout}s:\n{text[-6000:]}")
