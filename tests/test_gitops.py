"""Git awareness, the GitHub Action and the workflows, on real temporary git repositories and real databases."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from git import Repo
from sqlalchemy import select
from typer.testing import CliRunner

from reconciler import action, provenance, render, store
from reconciler.cli import app
from reconciler.commands.show_schedule import run_show_schedule
from reconciler.commands.status import run_status
from reconciler.plan import Action, Change, Plan, PlanSettings, schedule_id_for
from reconciler.planfile import review_digest
from tests.conftest import init_compatible
from tests.test_reconcile import delete_job, reconcile, schedule, write_schedules

REPO_ROOT = Path(__file__).resolve().parent.parent
JANE = "Jane Doe <jane@example.org>"
BOB = "Bob Builder <bob@example.org>"


# -- helpers ----------------------------------------------------------------------------------------------


def make_repo(path: Path) -> Repo:
    """An empty repository on branch main with a local identity (no global git config needed)."""
    path.mkdir(parents=True, exist_ok=True)
    repo = Repo.init(path, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Committer")
        cw.set_value("user", "email", "committer@example.org")
        cw.set_value("commit", "gpgsign", "false")
    return repo


def commit_all(repo: Repo, message: str, author: str = JANE) -> str:
    repo.git.add("-A")
    repo.git.commit("-m", message, f"--author={author}")
    return str(repo.head.commit.hexsha)


def ledger(db: str) -> dict[str, store.LedgerEntry]:
    engine = store.connect(db)
    with engine.connect() as conn:
        entries = {e.key: e for e in store.read_ledger(conn)}
    engine.dispose()
    return entries


def job_ids(db: str) -> set[str]:
    engine = store.connect(db)
    with engine.connect() as conn:
        ids = {r.id for r in conn.execute(select(store.apscheduler_jobs.c.id))}
    engine.dispose()
    return ids


@pytest.fixture(scope="session")
def repo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per run (three git processes); each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "repo"
    r = make_repo(path)
    d = path / "schedules.d"
    write_schedules(d, schedule("alpha"), name="a.yaml")
    write_schedules(d, schedule("beta", trigger="cron", trigger_kwargs={"hour": 3}), name="b.yaml")
    (path / "README.md").write_text("schedules\n")
    commit_all(r, "first schedules")
    r.close()
    return path


@pytest.fixture
def repo(tmp_path: Path, repo_template: Path) -> Repo:
    """A repository with schedules.d/a.yaml (alpha) and schedules.d/b.yaml (beta), committed by Jane."""
    shutil.copytree(repo_template, tmp_path / "repo", symlinks=True)
    return Repo(tmp_path / "repo")


def schedules_dir(repo: Repo) -> Path:
    return Path(str(repo.working_tree_dir)) / "schedules.d"


# -- provenance -------------------------------------------------------------------------------------------


def test_apply_records_commit_author_and_repo_relative_source(db_url: str, repo: Repo) -> None:
    d = schedules_dir(repo)
    sha = str(repo.head.commit.hexsha)
    out = reconcile(d, db_url)
    assert out.exit_code == 0, out.err
    # The plan names files relative to the repository root, whatever the working directory was.
    assert out.plan is not None
    assert {c.key: c.source for c in out.plan.changes} == {
        "alpha": "schedules.d/a.yaml:2",
        "beta": "schedules.d/b.yaml:2",
    }
    entries = ledger(db_url)
    assert entries["alpha"].applied_commit == sha
    assert entries["alpha"].applied_author == JANE
    assert (entries["alpha"].source_path, entries["alpha"].source_line) == ("schedules.d/a.yaml", 2)
    assert (entries["beta"].source_path, entries["beta"].source_line) == ("schedules.d/b.yaml", 2)
    # The helper show-schedule uses for its source column.
    assert provenance.describe_entry(entries["alpha"]) == f"schedules.d/a.yaml:2 @ {sha[:12]} by {JANE}"
    assert provenance.entry_provenance(entries["beta"])["applied_commit"] == sha
    # show-schedule shows it, in the table and in JSON.
    result = run_show_schedule(db_url, directory=d, fmt="json")
    code, shown, _ = result.exit_code, result.out, result.err
    assert code == 0
    applied = {job["key"]: job["applied"] for job in json.loads(shown[0])["jobs"]}
    assert applied["alpha"] == f"schedules.d/a.yaml:2 @ {sha[:12]} by {JANE}"
    result = run_show_schedule(db_url, directory=d, fmt="text", verbose=True)  # -v: the applied commit
    code, table, _ = result.exit_code, result.out, result.err
    assert code == 0 and f"@ {sha[:12]}" in "\n".join(table)

    # Bob changes beta only: beta's entry names Bob's commit, alpha keeps the commit that last set it.
    write_schedules(d, schedule("beta", trigger="cron", trigger_kwargs={"hour": 4}), name="b.yaml")
    bob_sha = commit_all(repo, "beta at four", author=BOB)
    assert reconcile(d, db_url).exit_code == 0
    entries = ledger(db_url)
    assert (entries["beta"].applied_commit, entries["beta"].applied_author) == (bob_sha, BOB)
    assert (entries["alpha"].applied_commit, entries["alpha"].applied_author) == (sha, JANE)


def test_a_job_that_fired_keeps_the_commit_that_set_it(db_url: str, repo: Repo) -> None:
    """The scheduler moves a fired job's next_run_time (a new row, the same schedule): the next apply must
    not claim that job was applied by whoever's commit triggered the apply."""
    from datetime import timedelta

    from reconciler.jobstate import load_job_state, repickle, utc_timestamp

    d = schedules_dir(repo)
    sha = str(repo.head.commit.hexsha)
    assert reconcile(d, db_url).exit_code == 0
    alpha_id = schedule_id_for("default", "alpha")
    engine = store.connect(db_url)
    with store.write_transaction(engine) as conn:  # what the scheduler writes after running alpha
        table = store.apscheduler_jobs
        state = load_job_state(
            bytes(conn.execute(select(table.c.job_state).where(table.c.id == alpha_id)).scalar_one())
        )
        later = state["next_run_time"] + timedelta(hours=1)
        conn.execute(
            table.update()
            .where(table.c.id == alpha_id)
            .values(next_run_time=utc_timestamp(later), job_state=repickle(state, next_run_time=later))
        )
    engine.dispose()
    write_schedules(d, schedule("beta", trigger="cron", trigger_kwargs={"hour": 4}), name="b.yaml")
    bob_sha = commit_all(repo, "beta at four", author=BOB)
    out = reconcile(d, db_url)
    assert out.exit_code == 0, out.err
    assert out.plan is not None and {c.key: c.action for c in out.plan.changes}["alpha"] is Action.NOOP
    entries = ledger(db_url)
    assert (entries["beta"].applied_commit, entries["beta"].applied_author) == (bob_sha, BOB)
    assert (entries["alpha"].applied_commit, entries["alpha"].applied_author) == (sha, JANE)
    engine = store.connect(db_url)
    with engine.connect() as conn:  # the ledger learned the moved row, so the next no-op plan stays fast
        live = {j.id: j.row_hash for j in store.read_jobs(conn)}
    engine.dispose()
    assert entries["alpha"].row_hash == live[alpha_id]


def test_dirty_tree_is_refused_unless_allowed(sqlite_url: str, repo: Repo) -> None:
    d = schedules_dir(repo)
    assert reconcile(d, sqlite_url).exit_code == 0
    cases = {
        "modified": lambda: write_schedules(d, schedule("alpha", name="Changed"), name="a.yaml"),
        "staged": lambda: (
            write_schedules(d, schedule("alpha", name="Staged"), name="a.yaml"),
            repo.git.add("schedules.d/a.yaml"),
        ),
        "untracked": lambda: write_schedules(d, schedule("gamma"), name="c.yaml"),
        "deleted": lambda: (d / "b.yaml").unlink(),
    }
    expected_file = {
        "modified": "schedules.d/a.yaml",
        "staged": "schedules.d/a.yaml",
        "untracked": "schedules.d/c.yaml",
        "deleted": "schedules.d/b.yaml",
    }
    for name, make_dirty in cases.items():
        make_dirty()
        before = job_ids(sqlite_url)
        refused = reconcile(d, sqlite_url, allow_empty=True)
        assert refused.exit_code == 1, name
        assert len(refused.err) == 1 and refused.err[0].startswith("error: uncommitted changes under "), refused.err
        assert expected_file[name] in refused.err[0] and "--allow-dirty" in refused.err[0]
        assert job_ids(sqlite_url) == before, "nothing may be written"
        # A dry run is always allowed: it is how one looks at uncommitted work.
        assert reconcile(d, sqlite_url, dry_run=True).exit_code == 0
        repo.git.reset("--hard")
        repo.git.clean("-fdq")

    # Files the loader ignores do not make the tree dirty.
    (d / "_draft.yaml").write_text("schedules: [\n")
    (d / "notes.txt").write_text("todo\n")
    assert reconcile(d, sqlite_url).exit_code == 0
    (d / "_draft.yaml").unlink()
    (d / "notes.txt").unlink()

    # --allow-dirty applies, and the ledger says the commit did not hold what was applied.
    write_schedules(d, schedule("alpha", name="Hotfix"), name="a.yaml")
    allowed = reconcile(d, sqlite_url, allow_dirty=True)
    assert allowed.exit_code == 0, allowed.err
    alpha = ledger(sqlite_url)["alpha"]
    assert alpha.applied_commit == f"{repo.head.commit.hexsha}-dirty"
    assert provenance.short_commit(alpha.applied_commit) == f"{repo.head.commit.hexsha[:12]}-dirty"


def test_saved_plan_from_a_dirty_tree_needs_allow_dirty(sqlite_url: str, repo: Repo, tmp_path: Path) -> None:
    d = schedules_dir(repo)
    init_compatible(sqlite_url).dispose()
    write_schedules(d, schedule("alpha", name="Uncommitted"), name="a.yaml")
    plan_file = tmp_path / "plan.json"
    assert reconcile(d, sqlite_url, dry_run=True, plan_out=plan_file).exit_code == 0
    saved = json.loads(plan_file.read_text())
    assert saved["provenance"]["dirty"] == ["schedules.d/a.yaml"]
    refused = reconcile(d, sqlite_url, plan_in=plan_file)
    assert refused.exit_code == 1 and "uncommitted changes" in refused.err[0]
    applied = reconcile(d, sqlite_url, plan_in=plan_file, allow_dirty=True)
    assert applied.exit_code == 0, applied.err
    assert ledger(sqlite_url)["alpha"].applied_commit == f"{repo.head.commit.hexsha}-dirty"


def test_outside_git_there_is_no_provenance_and_no_dirty_check(sqlite_url: str, tmp_path: Path) -> None:
    d = tmp_path / "plain" / "schedules.d"
    write_schedules(d, schedule("alpha"))
    out = reconcile(d, sqlite_url)
    assert out.exit_code == 0, out.err
    entry = ledger(sqlite_url)["alpha"]
    assert entry.applied_commit is None and entry.applied_author is None
    based = reconcile(d, sqlite_url, dry_run=True, base="main")
    assert based.exit_code == 1
    assert based.err == [f"error: --base needs a git repository: {d} is not inside one"]


def test_git_is_asked_only_what_a_command_records(
    sqlite_url: str, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No git process outside a repository, one `rev-parse` and one `config` (the remote, which names the
    source that owns the schedules) for a dry run, and the author and the dirty check only for what records
    them (an apply, a saved plan)."""
    asked: list[str] = []
    real, started = provenance.run_git, provenance.start_git

    def counting(cwd: Path, *args: str, **kw: Any) -> tuple[int, bytes]:
        asked.append(args[0])
        return real(cwd, *args, **kw)

    def counting_started(cwd: Path, *args: str) -> Any:  # the rev-parse that runs while the files parse
        asked.append(args[0])
        return started(cwd, *args)

    monkeypatch.setattr(provenance, "run_git", counting)
    monkeypatch.setattr(provenance, "start_git", counting_started)
    plain = tmp_path / "plain" / "schedules.d"
    write_schedules(plain, schedule("alpha"))
    assert reconcile(plain, sqlite_url, dry_run=True).exit_code == 0
    assert asked == []
    d = schedules_dir(repo)
    assert reconcile(d, sqlite_url, dry_run=True).exit_code == 0
    assert asked == ["rev-parse", "config"]
    asked.clear()
    assert reconcile(d, sqlite_url).exit_code == 0
    assert sorted(asked) == ["config", "log", "rev-parse", "status"]
    assert ledger(sqlite_url)["alpha"].applied_author == JANE


# -- --base ------------------------------------------------------------------------------------------------


def test_base_marks_branch_changes_and_drift(db_url: str, repo: Repo) -> None:
    d = schedules_dir(repo)
    assert reconcile(d, db_url).exit_code == 0  # main is applied
    repo.git.checkout("-b", "feature")
    write_schedules(d, schedule("beta", trigger="cron", trigger_kwargs={"hour": 5}), name="b.yaml")
    commit_all(repo, "beta at five")
    write_schedules(d, schedule("gamma"), name="c.yaml")  # not committed: the working tree counts too
    delete_job(db_url, "alpha")  # drift: made directly in the database

    out = reconcile(d, db_url, dry_run=True, base="main")
    assert out.exit_code == 0, out.err
    assert out.origins == {"alpha": "elsewhere", "beta": "branch", "gamma": "branch"}
    text = out.out[0]
    assert re.search(r"alpha .*\(elsewhere\)", text) and re.search(r"beta .*\(this branch\)", text)
    assert "Origin: 2 change(s) from this branch, 1 from elsewhere" in text

    md = reconcile(d, db_url, dry_run=True, base="main", fmt="markdown").out[0]
    rows = {line.split("|")[2].strip(" `"): line for line in md.splitlines() if line.startswith("| `")}
    assert rows["alpha"].rstrip().endswith("| elsewhere |")
    assert rows["beta"].rstrip().endswith("| this branch |")

    body = json.loads(reconcile(d, db_url, dry_run=True, base="main", fmt="json").out[0])
    assert {c["key"]: c["origin"] for c in body["changes"]} == {
        "alpha": "elsewhere",
        "beta": "branch",
        "gamma": "branch",
    }
    assert re.fullmatch(r"[0-9a-f]{64}", body["review_digest"])

    # A schedule this branch removes is the branch's; one main added after the branch left is not.
    (d / "c.yaml").unlink()
    repo.git.checkout("main")
    write_schedules(d, schedule("delta"), name="d.yaml")
    commit_all(repo, "delta on main")
    assert reconcile(d, db_url).exit_code == 0
    repo.git.checkout("feature")
    (d / "a.yaml").unlink()
    removed = reconcile(d, db_url, dry_run=True, base="main")
    assert removed.origins["alpha"] == "branch"  # deleted here
    assert removed.origins["delta"] == "elsewhere"  # gone only because this branch is behind main

    unknown = reconcile(d, db_url, dry_run=True, base="no-such-branch")
    assert unknown.exit_code == 1 and unknown.err[0].startswith("error: --base no-such-branch: unknown revision")


def test_cli_options_and_status_command(repo: Repo, sqlite_url: str) -> None:
    d = schedules_dir(repo)
    runner = CliRunner()
    applied = runner.invoke(app, ["reconcile", str(d), "--db", sqlite_url])
    assert applied.exit_code == 0, applied.output
    write_schedules(d, schedule("alpha", name="dirty"), name="a.yaml")
    refused = runner.invoke(app, ["reconcile", str(d), "--db", sqlite_url])
    assert refused.exit_code == 1 and "uncommitted changes" in refused.output
    assert runner.invoke(app, ["reconcile", str(d), "--db", sqlite_url, "--allow-dirty"]).exit_code == 0
    bad = runner.invoke(app, ["reconcile", str(d), "--db", sqlite_url, "--base", "main"])
    assert bad.exit_code == 1 and "--base goes with --dry-run" in bad.output
    marked = runner.invoke(app, ["reconcile", str(d), "--db", sqlite_url, "--dry-run", "--base", "main"])
    assert marked.exit_code == 0 and "No changes." in marked.output
    status = runner.invoke(app, ["status", str(d), "--db", sqlite_url, "--format", "json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["dirty"] == ["schedules.d/a.yaml"]


# -- status ------------------------------------------------------------------------------------------------


def test_status_reports_applied_commit_head_and_drift(db_url: str, repo: Repo) -> None:
    d = schedules_dir(repo)
    settings = PlanSettings()
    first = str(repo.head.commit.hexsha)
    result = run_status(d, db_url, settings)
    code, out, _ = result.exit_code, result.out, result.err
    assert code == 2 and "Last applied: no commit recorded" in out[1]

    assert reconcile(d, db_url).exit_code == 0
    result = run_status(d, db_url, settings)
    code, out, err = result.exit_code, result.out, result.err
    assert (code, err) == (0, [])
    assert f"Last applied: {first[:12]}" in out[1] and "the last applied commit" in out[2]
    assert out[-1] == "In sync: the database matches the schedules directory."

    # A commit outside schedules.d: HEAD is ahead, but nothing is pending, so still in sync.
    (Path(str(repo.working_tree_dir)) / "README.md").write_text("more\n")
    commit_all(repo, "docs only")
    result = run_status(d, db_url, settings)
    code, out, _ = result.exit_code, result.out, result.err
    assert code == 0 and "1 commit(s) ahead of the last applied commit" in out[2]
    assert any(line.startswith("    ") and "docs only" in line for line in out)

    # A schedule change not yet applied: exit 2, the commit listed and starred.
    write_schedules(d, schedule("alpha", name="Renamed"), name="a.yaml")
    change = commit_all(repo, "rename alpha", author=BOB)
    result = run_status(d, db_url, settings)
    code, out, _ = result.exit_code, result.out, result.err
    assert code == 2
    assert f"  * {change[:12]}" in "\n".join(out) and "2 commit(s) ahead" in out[2]
    assert "1 change(s) not yet applied (alpha)" in out[-1]

    assert reconcile(d, db_url).exit_code == 0
    result = run_status(d, db_url, settings, "json")
    code, out, _ = result.exit_code, result.out, result.err
    body = json.loads(out[0])
    assert code == 0 and body["relation"] == "same" and body["applied"]["commit"] == change
    assert body["applied"]["author"] == BOB and body["in_sync"] is True

    delete_job(db_url, "beta")
    result = run_status(d, db_url, settings)
    code, out, _ = result.exit_code, result.out, result.err
    assert code == 2 and "1 drifted — changed outside reconciler (beta)" in out[-1]

    # An older checkout is reported as behind, not ahead.
    repo.git.checkout(first)
    result = run_status(d, db_url, settings)
    code, out, _ = result.exit_code, result.out, result.err
    assert "BEHIND the last applied commit" in out[2]


def test_status_is_read_only(tmp_path: Path, repo: Repo) -> None:
    db_file = tmp_path / "never.db"
    result = run_status(schedules_dir(repo), f"sqlite:///{db_file}", PlanSettings())
    code, _, _ = result.exit_code, result.out, result.err
    assert code == 2 and not db_file.exists()


# -- review digest: what the merge-time apply holds the database to ------------------------------------------


def test_review_digest_binds_the_apply_to_the_reviewed_plan(db_url: str, repo: Repo) -> None:
    d = schedules_dir(repo)
    assert reconcile(d, db_url).exit_code == 0
    write_schedules(d, schedule("alpha", name="Reviewed"), name="a.yaml")
    commit_all(repo, "rename alpha")
    reviewed = reconcile(d, db_url, dry_run=True)
    assert reviewed.digest is not None and reviewed.plan is not None
    assert reviewed.digest == review_digest(reviewed.plan)
    # The same plan computed again later has the same digest.
    assert reconcile(d, db_url, dry_run=True).digest == reviewed.digest

    delete_job(db_url, "beta")  # drift after the review
    refused = reconcile(d, db_url, expect_digest=reviewed.digest)
    assert refused.exit_code == 3
    assert "the plan is not the reviewed one" in refused.err[0]
    assert ledger(db_url)["alpha"].spec_hash != "", "ledger still there"
    assert schedule_id_for("default", "beta") not in job_ids(db_url), "nothing applied"

    # Once the drift is gone again, the reviewed plan applies.
    fixed = reconcile(d, db_url, dry_run=True)
    assert fixed.digest != reviewed.digest
    assert reconcile(d, db_url, expect_digest=fixed.digest).exit_code == 0


# -- Markdown within GitHub's comment limit ----------------------------------------------------------------


def test_two_thousand_changes_fit_a_pull_request_comment() -> None:
    changes = tuple(
        Change(
            key=f"schedule-{i:04d}",
            action=Action.CREATE,
            schedule_id=schedule_id_for("default", f"schedule-{i:04d}"),
            after={"workflow_name": "task_clean_up_tasks", "name": f"Schedule {i}", "trigger": "every 1 hour"},
            next_runs_after=("2030-01-01T00:00:00+00:00", "2030-01-01T01:00:00+00:00"),
            source=f"schedules.d/big.yaml:{i * 5 + 2}",
        )
        for i in range(2000)
    )
    plan = Plan("default", changes, (), (), (), "f" * 64, "2030-01-01T00:00:00+00:00")
    md = render.render_markdown(plan, mark=lambda c: "this branch")
    assert len(md) < 65_536 - 1_000  # room for the workflow's markers and footer
    assert "**Plan: 2000 to create, 0 to update, 0 to delete, 0 unchanged;" in md
    assert "more change(s) not listed" in md
    summary = render.render_markdown(plan, budget=action.SUMMARY_BUDGET)
    assert len(summary.encode()) < 1024 * 1024 and summary.count("<details>") == 2000


# -- the composite action's body ----------------------------------------------------------------------------


def action_env(tmp_path: Path, directory: Path, **inputs: str) -> dict[str, str]:
    env = {f"INPUT_{k.upper()}": v for k, v in inputs.items()}
    env |= {
        "INPUT_DIRECTORY": str(directory),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "RUNNER_TEMP": str(tmp_path / "runner"),
    }
    (tmp_path / "output").write_text("")
    return env


def outputs(tmp_path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT as GitHub reads it (heredoc entries; a later value of a name wins)."""
    text = (tmp_path / "output").read_text()
    pattern = r"^([\w-]+)<<(ghadelimiter_\w+)\n(.*?)\n\2$"
    return {name: value for name, _, value in re.findall(pattern, text, re.M | re.S)}


def test_action_validate_plan_apply(tmp_path: Path, repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    d = schedules_dir(repo)
    db = f"sqlite:///{tmp_path / 'action.db'}"
    init_compatible(db).dispose()

    (d / "broken.yaml").write_text("schedules:\n  - key: Bad Key\n    workflow_name: x\n    trigger: cron\n")
    env = action_env(tmp_path, d, command="validate")
    assert action.main(env) == 1
    assert re.search(r"^::error file=.*broken\.yaml,line=2,col=\d+::", capsys.readouterr().out, re.M)
    assert ":x:" in (tmp_path / "summary.md").read_text()
    (d / "broken.yaml").unlink()
    assert action.main(env) == 0

    assert action.main(action_env(tmp_path, d, command="plan")) == 1
    assert "::error::input database-uri is empty" in capsys.readouterr().out

    env = action_env(tmp_path, d, command="plan", database_uri=db, base="main")
    assert action.main(env) == 0
    out = outputs(tmp_path)
    assert out["has-changes"] == "true"
    assert json.loads(Path(out["plan-json"]).read_text())["saved_plan_version"] == 1
    comment = Path(out["plan-markdown"]).read_text()
    assert "**Plan: 2 to create" in comment and len(comment) < 60_500
    assert re.fullmatch(r"[0-9a-f]{64}", out["plan-digest"])
    assert "### Schedules plan" in (tmp_path / "summary.md").read_text()

    wrong = action_env(tmp_path, d, command="apply", database_uri=db, expect_digest="0" * 64)
    assert action.main(wrong) == 3
    assert job_ids(db) == set()
    assert "not applied (exit 3)" in (tmp_path / "summary.md").read_text()

    right = action_env(tmp_path, d, command="apply", database_uri=db, expect_digest=out["plan-digest"])
    assert action.main(right) == 0, capsys.readouterr()
    assert outputs(tmp_path)["has-changes"] == "true"
    assert len(job_ids(db)) == 2
    assert ledger(db)["alpha"].applied_commit == repo.head.commit.hexsha

    assert action.main(action_env(tmp_path, d, command="deploy")) == 1


def test_action_without_a_plan_says_so_in_the_summary(tmp_path: Path, repo: Repo) -> None:
    d = schedules_dir(repo)
    (d / "broken.yaml").write_text("schedules:\n  - key: Bad Key\n    workflow_name: x\n    trigger: cron\n")
    db = f"sqlite:///{tmp_path / 'action.db'}"
    for command, failure in (("plan", ":x: no plan: "), ("apply", ":x: nothing applied: ")):
        (tmp_path / "summary.md").unlink(missing_ok=True)
        assert action.main(action_env(tmp_path, d, command=command, database_uri=db)) == 1
        summary = (tmp_path / "summary.md").read_text()
        assert f"### Schedules {command}\n\n{failure}" in summary and "validation failed" in summary
        assert outputs(tmp_path)["has-changes"] == "false"


# -- the files GitHub and pre-commit read --------------------------------------------------------------------


def load_yaml(name: str) -> Any:
    return yaml.safe_load((REPO_ROOT / name).read_text())


def run_scripts(doc: Any) -> list[str]:
    found: list[str] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "run" and isinstance(v, str):
                found.append(v)
            else:
                found.extend(run_scripts(v))
    elif isinstance(doc, list):
        for item in doc:
            found.extend(run_scripts(item))
    return found


def triggers(workflow: dict[Any, Any]) -> Any:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


def test_action_yml_contract() -> None:
    doc = load_yaml("action.yml")
    assert doc["runs"]["using"] == "composite"
    for name in ("command", "directory", "database-uri", "redis-uri", "max-deletes", "allow-empty"):
        assert name in doc["inputs"], name
    assert {"python-version", "namespace", "base", "expect-digest"} <= set(doc["inputs"])
    assert {"has-changes", "plan-json"} <= set(doc["outputs"])
    scripts = run_scripts(doc)
    assert scripts and not any("${{" in s for s in scripts), "inputs reach scripts through env only"
    assert any("GITHUB_ACTION_PATH" in s for s in scripts), "installs the action's own checkout"
    env = next(s["env"] for s in doc["runs"]["steps"] if s.get("id") == "run")
    assert env["INPUT_COMMAND"] == "${{ inputs.command }}"


def test_workflows_contract() -> None:
    ci = load_yaml(".github/workflows/ci.yml")
    assert ci["permissions"] == {"contents": "read"}
    assert set(triggers(ci)) == {"pull_request", "push"}
    services = ci["jobs"]["tests"]["services"]
    assert services["postgres"]["image"] == "postgres:15" and services["redis"]["image"].startswith("redis")
    all_ci = "\n".join(run_scripts(ci))
    for command in ("ruff check", "mypy --strict reconciler", "pytest", "actionlint", "zizmor"):
        assert command in all_ci, command

    wf = load_yaml(".github/workflows/schedules.yml")
    on = triggers(wf)
    assert on["pull_request"]["paths"] == ["schedules.d/**"] and on["push"]["paths"] == ["schedules.d/**"]
    assert wf["permissions"] == {}
    plan, apply = wf["jobs"]["plan"], wf["jobs"]["apply"]
    assert plan["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert apply["permissions"] == {"contents": "read", "pull-requests": "read"}
    assert apply["concurrency"]["cancel-in-progress"] is False
    assert apply["environment"] == "schedules-production"
    assert "<!-- reconciler-plan -->" in "\n".join(run_scripts(plan))
    assert "reconciler-plan-digest" in "\n".join(run_scripts(apply))
    apply_step = next(s for s in apply["steps"] if s.get("name") == "Apply")
    assert "expect-digest" in apply_step["with"]

    for doc in (ci, wf):
        for job in doc["jobs"].values():
            for step in job["steps"]:
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False
                if "@" in str(step.get("uses", "")):
                    assert re.search(r"@[0-9a-f]{40}$", step["uses"]), step["uses"]
                assert "${{" not in step.get("run", ""), "no template expansion inside scripts"


def test_pre_commit_hook() -> None:
    (hook,) = load_yaml(".pre-commit-hooks.yaml")
    assert hook["id"] == "schedules-validate" and hook["entry"] == "schedules validate"
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    pattern = re.compile(hook["files"])
    assert pattern.search("schedules.d/core.yaml") and pattern.search("schedules.d/team/x.yml")
    assert not pattern.search("other/core.yaml") and not pattern.search("schedules.d/readme.md")


# -- the workflow's gh api scripts, against a fake GitHub --------------------------------------------------

FAKE_GH = r'''#!{python}
"""A fake `gh api`: enough of GitHub's REST API for the schedules workflow, state in $FAKE_GH_STATE."""
import json, os, subprocess, sys

state_path = os.environ["FAKE_GH_STATE"]
state = json.load(open(state_path))
args = sys.argv[1:]
assert args[0] == "api", args
args = args[1:]
method, jq, body_file, path = "GET", None, None, None
while args:
    a = args.pop(0)
    if a == "--method":
        method = args.pop(0)
    elif a == "--jq":
        jq = args.pop(0)
    elif a == "--input":
        body_file = args.pop(0)
    elif a == "--paginate":
        pass
    else:
        path = a
state.setdefault("calls", []).append([method, path])
parts = path.split("/")  # repos/OWNER/REPO/...
rest = parts[3:]
result = None
if rest[0] == "issues" and rest[-1] == "comments" and method == "GET":
    result = [c for c in state["comments"] if c["issue"] == int(rest[1])]
elif rest[0] == "issues" and rest[-1] == "comments" and method == "POST":
    body = json.load(open(body_file))["body"]
    comment = {"id": len(state["comments"]) + 100, "issue": int(rest[1]), "body": body,
               "user": {"login": "github-actions[bot]"}}
    state["comments"].append(comment)
    result = comment
elif rest[:2] == ["issues", "comments"] and method == "PATCH":
    comment = next(c for c in state["comments"] if c["id"] == int(rest[2]))
    comment["body"] = json.load(open(body_file))["body"]
    result = comment
elif rest[:2] == ["issues", "comments"]:
    result = next(c for c in state["comments"] if c["id"] == int(rest[2]))
elif rest[0] == "commits" and rest[2] == "pulls":
    result = state["commit_pulls"].get(rest[1], [])
elif rest[0] == "pulls":
    result = state["pulls"][rest[1]]
else:
    sys.exit(f"fake gh: unknown call {method} {path}")
json.dump(state, open(state_path, "w"))
text = json.dumps(result)
if jq:
    text = subprocess.run(["jq", "-r", jq], input=text, capture_output=True, text=True, check=True).stdout
sys.stdout.write(text)
'''


def run_step(script: str, tmp_path: Path, state: dict[str, Any], **env: str) -> tuple[int, str, dict[str, Any]]:
    """Run a workflow `run:` script with bash -e (as GitHub does) and the fake gh first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH.replace("{python}", sys.executable))
    gh.chmod(0o755)
    state_file = tmp_path / "gh-state.json"
    state_file.write_text(json.dumps(state))
    output = tmp_path / "github-output"
    output.write_text("")
    full_env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_GH_STATE": str(state_file),
        "GITHUB_REPOSITORY": "acme/schedules",
        "GITHUB_OUTPUT": str(output),
        "RUNNER_TEMP": str(tmp_path),
        **env,
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr + output.read_text(), json.loads(state_file.read_text())


@pytest.mark.slow
def test_sticky_comment_and_reviewed_digest_scripts(tmp_path: Path) -> None:
    wf = load_yaml(".github/workflows/schedules.yml")
    comment_script = next(s["run"] for s in wf["jobs"]["plan"]["steps"] if str(s.get("name", "")).startswith("Comment"))
    reviewed_script = next(s["run"] for s in wf["jobs"]["apply"]["steps"] if s.get("id") == "reviewed")
    digest, head = "ab" * 32, "c" * 40
    plan_md = tmp_path / "plan.md"
    plan_md.write_text("### Schedules plan\n\n**Plan: 1 to create**\n")
    forged = {
        "id": 1,
        "issue": 7,
        "user": {"login": "mallory"},
        "body": f"<!-- reconciler-plan -->\n<!-- reconciler-plan-digest: {'ee' * 32} head: {head} -->\n",
    }
    state: dict[str, Any] = {
        "comments": [forged],
        "commit_pulls": {"d" * 40: [{"number": 7, "merged_at": "2030-01-01T00:00:00Z"}]},
        "pulls": {"7": {"head": {"sha": head}}},
    }
    env = {"PR_NUMBER": "7", "HEAD_SHA": head, "PLAN_MARKDOWN": str(plan_md), "RUN_URL": "https://example.invalid/run"}

    # First plan: a new comment (the forged one with the marker is not the bot's and is left alone).
    code, out, state = run_step(comment_script, tmp_path, state, PLAN_DIGEST="00" * 32, **env)
    assert code == 0, out
    bot = [c for c in state["comments"] if c["user"]["login"] == "github-actions[bot]"]
    assert len(bot) == 1 and ["POST", "repos/acme/schedules/issues/7/comments"] in state["calls"]
    # The next push: the same comment is updated in place.
    code, out, state = run_step(comment_script, tmp_path, state, PLAN_DIGEST=digest, **env)
    assert code == 0, out
    bot = [c for c in state["comments"] if c["user"]["login"] == "github-actions[bot]"]
    assert len(bot) == 1 and ["PATCH", f"repos/acme/schedules/issues/comments/{bot[0]['id']}"] in state["calls"]
    body = bot[0]["body"]
    assert body.startswith(f"<!-- reconciler-plan -->\n<!-- reconciler-plan-digest: {digest} head: {head} -->\n")
    assert "**Plan: 1 to create**" in body and state["comments"][0] == forged

    # Merge: the digest of the bot's comment is handed to the apply.
    code, out, _ = run_step(reviewed_script, tmp_path, state, SHA="d" * 40, GH_TOKEN="x")
    assert code == 0, out
    assert re.search(rf"^digest={digest}$", out, re.M)

    # The PR got another push that was never planned: refused.
    state["pulls"]["7"]["head"]["sha"] = "f" * 40
    code, out, _ = run_step(reviewed_script, tmp_path, state, SHA="d" * 40, GH_TOKEN="x")
    assert code == 3 and "not for its merged head" in out and "digest=" not in out

    # A commit pushed straight to main: nothing was reviewed.
    code, out, _ = run_step(reviewed_script, tmp_path, state, SHA="9" * 40, GH_TOKEN="x")
    assert code == 3 and "was not merged through a pull request" in out

    # Only a forged comment: refused.
    state["comments"] = [forged]
    state["pulls"]["7"]["head"]["sha"] = head
    code, out, _ = run_step(reviewed_script, tmp_path, state, SHA="d" * 40, GH_TOKEN="x")
    assert code == 3 and "has no plan comment" in out


def test_fork_pull_requests_skip_the_plan_with_a_notice(tmp_path: Path) -> None:
    wf = load_yaml(".github/workflows/schedules.yml")
    steps = wf["jobs"]["plan"]["steps"]
    check = next(s for s in steps if s.get("id") == "secrets")
    plan = next(s for s in steps if s.get("id") == "plan")
    assert plan["if"] == "steps.secrets.outputs.available == 'true'"
    assert check["env"]["DATABASE_URI"] == "${{ secrets.SCHEDULES_DATABASE_URI }}"
    code, out, _ = run_step(check["run"], tmp_path, {}, DATABASE_URI="")
    assert code == 0, out
    assert "::notice title=Plan skipped::" in out and "available=false" in out
    code, out, _ = run_step(check["run"], tmp_path, {}, DATABASE_URI="postgresql://ro@db/orchestrator")
    assert code == 0 and "available=true" in out and "::notice" not in out


def test_the_approver_sees_the_plan_before_the_gate() -> None:
    wf = load_yaml(".github/workflows/schedules.yml")
    preview, apply = wf["jobs"]["preview"], wf["jobs"]["apply"]
    assert apply["needs"] == "preview" and "environment" not in preview  # no gate before the preview
    assert apply["if"] == preview["if"]
    (plan,) = [s for s in preview["steps"] if s.get("uses") == "./"]
    assert plan["with"]["command"] == "plan"


def test_scheduled_drift_check(tmp_path: Path) -> None:
    wf = load_yaml(".github/workflows/schedules-drift.yml")
    on = triggers(wf)
    assert on["schedule"] and "workflow_dispatch" in on
    assert wf["permissions"] == {}
    (job,) = wf["jobs"].values()
    assert job["permissions"] == {"contents": "read"}
    step = next(s for s in job["steps"] if 'schedules" status' in s.get("run", "") or " status " in s.get("run", ""))
    # Run the step's script with a stand-in `schedules` that reports drift (exit 2): the run fails, and
    # the report lands in the job summary.
    venv_bin = tmp_path / "reconciler-venv" / "bin"
    venv_bin.mkdir(parents=True)
    fake = venv_bin / "schedules"
    fake.write_text("#!/bin/sh\necho 'Out of sync: 1 drifted'\nexit 2\n")
    fake.chmod(0o755)
    summary = tmp_path / "summary.md"
    code, out, _ = run_step(
        step["run"], tmp_path, {}, DATABASE_URI="postgresql://ro@db/o", GITHUB_STEP_SUMMARY=str(summary)
    )
    assert code == 2, out
    assert "::error title=Schedules out of sync::" in out
    assert "Out of sync: 1 drifted" in summary.read_text()
    fake.write_text("#!/bin/sh\necho 'In sync'\nexit 0\n")
    code, out, _ = run_step(
        step["run"], tmp_path, {}, DATABASE_URI="postgresql://ro@db/o", GITHUB_STEP_SUMMARY=str(summary)
    )
    assert code == 0 and "::error" not in out
