"""Which orchestrator-core a database belongs to, decided from the database (DESIGN.md §4 rule 8).

Every database here was migrated by the release itself (tests/orchestrator_env.py: one venv per release).
Detection reads only; what cannot be decided is refused with one line naming --orchestrator-version, the
database unchanged. On 4.x the reconciler writes what 4.x reads and runs, and refuses user_inputs it cannot.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text

from reconciler import orchestrator_versions, reads
from reconciler.jobstate import ORCHESTRATOR_4_FUNC, ORCHESTRATOR_FUNC, load_job_state
from reconciler.orchestrator_versions import Generation, Marker, OrchestratorVersionError, decide, parse_version
from tests.command_line import WHOLE_PROCESS, Schedules
from tests.conftest import create_scratch_pg, drop_scratch_pg, init_compatible
from tests.orchestrator_env import VERSIONS, Orchestrator, migrated_database, orchestrator_venv

REPO = Path(__file__).resolve().parent.parent
HEADS = {"4.7.2": "9736496e3eba", "4.8.2": "d69e10434a04", "5.0.5": "fbc16e410bc6", "5.5.0": "fbc16e410bc6"}


def cli(
    *args: str, env: dict[str, str] | None = None, run: Schedules = WHOLE_PROCESS
) -> subprocess.CompletedProcess[str]:
    """`schedules ARGS` with the project's own python, as a whole process unless `run` says otherwise."""
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URI", "CACHE_URI", "ORCHESTRATOR_VERSION"}}
    return run(*args, cwd=REPO, env=base | (env or {}))


def snapshot(url: str) -> dict[str, Any]:
    """Everything a reconcile could write: job rows, linker rows and (if any) the ledger."""
    engine = create_engine(url)
    with engine.connect() as conn:
        tables = {r[0] for r in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))}
        out: dict[str, Any] = {"tables": tables}
        for table in ("apscheduler_jobs", "workflows_apscheduler_jobs", "reconciler_ledger"):
            if table in tables:
                out[table] = sorted(tuple(map(str, r)) for r in conn.execute(text(f"SELECT * FROM {table}")))
    engine.dispose()
    return out


def detect(url: str, override: str | None = None) -> Generation:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return orchestrator_versions.detect(conn, override)
    finally:
        engine.dispose()


def write_dir(directory: Path, schedules: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "s.yaml").write_text(yaml.safe_dump({"schedules": schedules}, sort_keys=False))
    return directory


HOURLY = {
    "key": "hourly",
    "workflow_name": "task_clean_up_tasks",
    "trigger": "interval",
    "trigger_kwargs": {"hours": 1},
}


# --- pure: the decision over the markers ------------------------------------------------------------------


def test_markers_that_agree_name_the_generation_and_the_first_says_how() -> None:
    found = decide([Marker("alembic d69e10434a04", 4), Marker("linker table", 4)], embedded=False)
    assert (found.major, found.label) == (4, "orchestrator-core 4.x (alembic d69e10434a04)")
    assert found.func == ORCHESTRATOR_4_FUNC and not found.takes_user_inputs


def test_disagreeing_or_absent_markers_are_refused_naming_the_override() -> None:
    with pytest.raises(OrchestratorVersionError) as disagree:
        decide([Marker("alembic fbc16e410bc6", 5), Marker("orchestrator-written jobs", 4)], embedded=False)
    assert "alembic fbc16e410bc6 says 5.x, orchestrator-written jobs says 4.x" in str(disagree.value)
    with pytest.raises(OrchestratorVersionError) as none:
        decide([], embedded=False)
    for message in (str(disagree.value), str(none.value)):
        assert "--orchestrator-version" in message and "ORCHESTRATOR_VERSION" in message
        assert "\n" not in message
    assert decide([], embedded=True) == orchestrator_versions.EMBEDDED


@pytest.mark.parametrize(("text", "major"), [("4.7", 4), ("4.8.2", 4), ("5", 5), ("5.5", 5), ("v5.0.5", 5)])
def test_the_override_names_a_generation(text: str, major: int) -> None:
    assert parse_version(text).major == major


@pytest.mark.parametrize("text", ["4.6", "3.2", "4.0.1"])
def test_the_override_below_4_7_is_refused_as_schedules_in_code(text: str) -> None:
    with pytest.raises(OrchestratorVersionError, match=r"< 4\.7 keeps schedules in code; upgrade, or use"):
        parse_version(text)


def test_an_unknown_override_is_refused() -> None:
    for version in ("latest", "6.0"):
        with pytest.raises(OrchestratorVersionError):
            parse_version(version)


# --- real databases, each migrated by its release ------------------------------------------------------------


@pytest.fixture(scope="module", params=VERSIONS)
def migrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orchestrator]:
    venv = orchestrator_venv(request.param)
    with migrated_database(venv, tmp_path_factory.mktemp("project")) as side:
        yield side


@pytest.mark.postgres
@pytest.mark.orchestrator
def test_each_release_is_detected_from_its_own_migrations_by_every_marker(migrated: Orchestrator) -> None:
    engine = create_engine(migrated.db_url)
    with engine.connect() as conn:
        tables = {r[0] for r in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))}
        markers = orchestrator_versions.read_markers(reads.Reader.of(conn), tables)
    engine.dispose()
    major = migrated.venv.major
    head = HEADS[migrated.venv.version]
    # every marker present says the release's generation: alembic, the linker table's shape, engine_settings
    assert [(m.what, m.major) for m in markers] == [
        (f"alembic {head}", major),
        ("linker table", major),
        ("engine_settings", major),
    ]
    found = detect(migrated.db_url)
    assert found.label == f"orchestrator-core {major}.x (alembic {head})"


@pytest.mark.postgres
@pytest.mark.orchestrator
def test_a_project_revision_alone_in_alembic_version_still_detects(migrated: Orchestrator) -> None:
    """A project with its own data migrations may hold only its own revision id: the other markers decide."""
    engine = create_engine(migrated.db_url)
    with engine.begin() as conn:
        before = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
        conn.execute(text("UPDATE alembic_version SET version_num = 'a1b2c3d4e5f6'"))
    try:
        found = detect(migrated.db_url)
        assert found.major == migrated.venv.major
        assert found.how == "linker table"
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": before[0]})
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.orchestrator
def test_plan_header_and_json_carry_the_generation(migrated: Orchestrator, tmp_path: Path) -> None:
    directory = write_dir(tmp_path / "schedules.d", [HOURLY])
    major, head = migrated.venv.major, HEADS[migrated.venv.version]
    done = cli("reconcile", "--dry-run", str(directory), "--db", migrated.db_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"(orchestrator-core {major}.x (alembic {head}))" in done.stdout.splitlines()[0]
    as_json = cli("reconcile", "--dry-run", str(directory), "--db", migrated.db_url, "--format", "json")
    body = json.loads(as_json.stdout)
    assert body["orchestrator"] == f"orchestrator-core {major}.x (alembic {head})"
    (change,) = body["changes"]
    shown = cli("show-schedule", str(directory), "--db", migrated.db_url, "--format", "json")
    assert json.loads(shown.stdout)["orchestrator"] == body["orchestrator"]
    assert (
        f"Database: orchestrator-core {major}.x (alembic {head})."
        in cli("show-schedule", str(directory), "--db", migrated.db_url).stdout
    )
    assert change["action"] == "create"


@pytest.mark.postgres
@pytest.mark.orchestrator
def test_another_generations_func_is_refused_unless_forced(migrated: Orchestrator, tmp_path: Path) -> None:
    directory = write_dir(tmp_path / "schedules.d", [HOURLY])
    other = ORCHESTRATOR_FUNC if migrated.venv.major == 4 else ORCHESTRATOR_4_FUNC
    before = snapshot(migrated.db_url)
    refused = cli("reconcile", str(directory), "--db", migrated.db_url, "--func", other)
    assert refused.returncode == 1
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: --func {other} is what orchestrator-core") and "--force-func" in line, line
    assert snapshot(migrated.db_url) == before
    forced = cli("reconcile", "--dry-run", str(directory), "--db", migrated.db_url, "--func", other, "--force-func")
    assert forced.returncode == 0, forced.stderr
    # the generation's own func, spelled out, is fine
    own = cli("reconcile", "--dry-run", str(directory), "--db", migrated.db_url, "--func", migrated.venv.func)
    assert own.returncode == 0, own.stderr


# --- refusals: unknown, disagreeing, too old; user_inputs on 4.x ----------------------------------------------


@pytest.mark.postgres
@pytest.mark.orchestrator
def test_markers_that_disagree_are_refused_with_one_line_and_nothing_written(tmp_path: Path) -> None:
    """A 4.8 database whose linker table someone gave 5.x's index: alembic and engine_settings say 4.x."""
    with migrated_database(orchestrator_venv("4.8.2"), tmp_path / "project") as side:
        engine = create_engine(side.db_url)
        with engine.begin() as conn:
            conn.execute(
                text(
                    f"CREATE INDEX {orchestrator_versions.LINKER_5X_INDEX} ON workflows_apscheduler_jobs (workflow_id)"
                )
            )
        engine.dispose()
        directory = write_dir(tmp_path / "schedules.d", [HOURLY])
        before = snapshot(side.db_url)
        for args in (["reconcile"], ["reconcile", "--dry-run"], ["show-schedule"], ["status"]):
            done = cli(*args, str(directory), "--db", side.db_url)
            assert done.returncode == 1, (args, done.stdout, done.stderr)
            (line,) = done.stderr.strip().splitlines()
            assert "alembic d69e10434a04 says 4.x, linker table says 5.x" in line, line
            assert "--orchestrator-version" in line
            assert snapshot(side.db_url) == before
        # the override decides, and is then what the plan says
        overridden = cli(
            "reconcile", "--dry-run", str(directory), "--db", side.db_url, env={"ORCHESTRATOR_VERSION": "4.8"}
        )
        assert overridden.returncode == 0, overridden.stderr
        assert "(orchestrator-core 4.x (--orchestrator-version 4.8))" in overridden.stdout


@pytest.mark.postgres
def test_an_unknown_generation_is_refused_with_one_line_naming_the_override(tmp_path: Path) -> None:
    """Tables without any marker and a project's own alembic revision only: nothing says which release."""
    url = create_scratch_pg()
    try:
        init_compatible(url).dispose()
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)"))
            conn.execute(text("INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6')"))
        engine.dispose()
        directory = write_dir(tmp_path / "schedules.d", [HOURLY])
        before = snapshot(url)
        done = cli("reconcile", str(directory), "--db", url)
        assert done.returncode == 1
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith("error: cannot tell which orchestrator-core this database belongs to"), line
        assert "--orchestrator-version" in line
        assert snapshot(url) == before
        assert cli("reconcile", str(directory), "--db", url, "--orchestrator-version", "5.5").returncode == 0
    finally:
        drop_scratch_pg(url)


@pytest.mark.postgres
def test_below_4_7_is_refused_as_schedules_in_code(tmp_path: Path) -> None:
    url = create_scratch_pg()
    try:
        engine = create_engine(url)
        with engine.begin() as conn:  # what 4.6 leaves: workflows and (APScheduler's own) apscheduler_jobs, no linker
            conn.execute(text("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)"))
            conn.execute(text("INSERT INTO alembic_version VALUES ('850dccac3b02')"))
            conn.execute(text("CREATE TABLE workflows (workflow_id uuid PRIMARY KEY, name varchar NOT NULL)"))
        engine.dispose()
        before = snapshot(url)
        done = cli("reconcile", str(write_dir(tmp_path / "s", [HOURLY])), "--db", url)
        assert done.returncode == 1
        assert done.stderr.strip() == (
            "error: orchestrator-core < 4.7 keeps schedules in code; upgrade, or use `load-initial-schedule` "
            "to prepare the YAML"
        )
        assert snapshot(url) == before
    finally:
        drop_scratch_pg(url)


def test_the_embedded_default_counts_as_5x(tmp_path: Path, command_line: Schedules) -> None:
    directory = write_dir(tmp_path / "schedules.d", [HOURLY])
    db = f"sqlite:///{tmp_path / 'schedules.db'}"
    assert cli("reconcile", str(directory), "--db", db, run=command_line).returncode == 0
    shown = cli("show-schedule", str(directory), "--db", db, run=command_line)
    assert "Database: orchestrator-core 5.x (embedded default)." in shown.stdout
    engine = create_engine(db)
    with engine.connect() as conn:
        (blob,) = conn.execute(text("SELECT job_state FROM apscheduler_jobs")).one()
    engine.dispose()
    state = load_job_state(bytes(blob))
    assert state["func"] == ORCHESTRATOR_FUNC and state["kwargs"] == {
        "workflow_name": "task_clean_up_tasks",
        "user_inputs": [{}],
    }


@pytest.mark.postgres
@pytest.mark.orchestrator
def test_user_inputs_on_4_8_are_an_error_at_the_schedule_and_nothing_is_written(tmp_path: Path) -> None:
    with migrated_database(orchestrator_venv("4.8.2"), tmp_path / "project") as side:
        schedules = [HOURLY, {**HOURLY, "key": "dry", "user_inputs": [{"dry_run": True}]}]
        directory = write_dir(tmp_path / "schedules.d", schedules)
        before = snapshot(side.db_url)
        done = cli("reconcile", str(directory), "--db", side.db_url)
        assert done.returncode == 1, done.stdout + done.stderr
        errors = [line for line in (done.stdout + done.stderr).splitlines() if "user_inputs" in line]
        assert len(errors) == 1, done.stdout + done.stderr
        assert f"{directory / 's.yaml'}:" in errors[0] or "s.yaml:" in errors[0], errors
        assert 'dry: user_inputs [{"dry_run": true}] cannot reach the workflow' in errors[0]
        assert "orchestrator-core 4.x" in errors[0]
        assert snapshot(side.db_url) == before
        checked = cli("validate", str(directory), "--db", side.db_url)
        assert checked.returncode == 1
        (error,) = [line for line in checked.stdout.splitlines() if "user_inputs" in line]
        assert error.split(":")[1].isdigit() and "s.yaml" in error.split(":")[0], error  # path:line
        # without --db nothing says it is 4.x: valid
        assert cli("validate", str(directory)).returncode == 0


# --- the upgrade path: 4.8.2 reconciled, then migrated by 5.5.0's own migrations --------------------------------


def job_states(url: str) -> dict[str, tuple[float | None, bytes]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = {
            r.id: (r.next_run_time, bytes(r.job_state)) for r in conn.execute(text("SELECT * FROM apscheduler_jobs"))
        }
    engine.dispose()
    return rows


@pytest.mark.postgres
@pytest.mark.orchestrator
def test_a_4_8_database_reconciled_then_upgraded_to_5_5_plans_one_labelled_format_upgrade(tmp_path: Path) -> None:
    schedules = [
        HOURLY,
        {"key": "nightly", "workflow_name": "task_validate_products", "trigger": "cron",
         "trigger_kwargs": {"hour": 3, "minute": 7}, "timezone": "Europe/Amsterdam"},
    ]  # fmt: skip
    directory = write_dir(tmp_path / "schedules.d", schedules)
    with migrated_database(orchestrator_venv("4.8.2"), tmp_path / "project") as side48:
        url = side48.db_url
        api = {"name": "From the 4.8 UI", "workflow_name": "task_resume_workflows", "trigger": "interval",
               "trigger_kwargs": {"hours": 5}}  # fmt: skip
        (api_id,) = side48.run("add-api-schedule", json.dumps(api)).result["ids"]
        applied = cli("reconcile", str(directory), "--db", url)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        on_48 = job_states(url)
        ours = sorted(set(on_48) - {api_id})
        for job_id in ours:
            state = load_job_state(on_48[job_id][1])
            assert state["func"] == ORCHESTRATOR_4_FUNC and set(state["kwargs"]) == {"workflow_name"}
        # a dry run against 4.x without --func plans nothing: no func change that would make 4.x delete the rows
        calm = cli("reconcile", "--dry-run", "--detailed-exitcode", str(directory), "--db", url)
        assert calm.returncode == 0, calm.stdout
        assert len(side48.run("inspect").result["jobs"]) == len(on_48)  # 4.8 itself restores every row

        # 5.5.0's own migrations (cab8b6a0ac92 rewrites the func prefix of every job row)
        side55 = Orchestrator(orchestrator_venv("5.5.0"), url, tmp_path / "project55")
        migrated = side55.migrate()
        assert "cab8b6a0ac92" in migrated["also_ran"]
        upgraded = job_states(url)
        assert set(upgraded) == set(on_48)
        for job_id in upgraded:
            assert load_job_state(upgraded[job_id][1])["func"] == ORCHESTRATOR_FUNC

        planned = cli("reconcile", "--dry-run", str(directory), "--db", url, "--format", "json")
        assert planned.returncode == 0, planned.stderr
        body = json.loads(planned.stdout)
        assert body["orchestrator"] == "orchestrator-core 5.x (alembic fbc16e410bc6)"
        assert body["summary"] == {"create": 0, "update": len(ours), "delete": 0, "unchanged": 0}
        for change in body["changes"]:
            assert change["action"] == "update" and not change["drift"], change
            assert [(f["name"], f["before"], f["after"]) for f in change["fields"]] == [("user_inputs", None, [{}])]
            assert any(w.startswith("one-time format upgrade") for w in change["warnings"]), change
            assert change["next_runs_after"] == change["next_runs_before"]  # the phase is kept
        assert [(u["id"], u["source"]) for u in body["unmanaged"]] == [(api_id, "api")]
        text_plan = cli("reconcile", "--dry-run", str(directory), "--db", url)
        assert text_plan.stdout.count("one-time format upgrade") == len(ours)

        applied = cli("reconcile", str(directory), "--db", url)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        after = job_states(url)
        assert after[api_id] == upgraded[api_id]  # the row 4.8 wrote (5.5 migrated) is untouched
        for job_id in ours:
            assert after[job_id][0] == upgraded[job_id][0]  # next_run_time kept
            assert load_job_state(after[job_id][1])["kwargs"]["user_inputs"] == [{}]
        again = cli("reconcile", "--dry-run", "--detailed-exitcode", str(directory), "--db", url)
        assert again.returncode == 0, again.stdout
        seen = side55.run("inspect").result["jobs"]
        assert sorted(j["id"] for j in seen) == sorted(after)  # 5.5.0 restores every row, deletes none
