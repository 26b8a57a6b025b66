"""Only what this source declares: a plan never changes or deletes what another source owns.

Before, every source got namespace `default`, so `reconcile teamB/` on a database where `teamA/` had
applied five schedules planned "1 to create, 5 to delete" and applied it. Now the ledger records, per
schedule, the source that applied it (git remote + directory, else `--source`, else the directory's
path); a plan that would touch another source's schedules is refused, database unchanged, with the two
ways out: a namespace of one's own, or `--adopt-from` that moves ownership in one apply.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from git import Repo
from sqlalchemy import text

from reconciler import store
from reconciler.plan import Action, LedgerRecord, Plan, PlanSettings, compute_plan, source_parts
from reconciler.provenance import normalized_remote
from reconciler.state import LiveState
from tests import memory_db
from tests.test_gitops import commit_all, ledger, make_repo
from tests.test_reconcile import jobs, reconcile, schedule, write_schedules


def team(directory: Path, prefix: str, count: int) -> Path:
    write_schedules(directory, *(schedule(f"{prefix}-{i}", trigger_kwargs={"hours": i}) for i in range(1, count + 1)))
    return directory


def database(db: str) -> tuple[dict[str, Any], dict[str, tuple[str, str | None]]]:
    """Every job row and every ledger entry (key → schedule id, source): what 'unchanged' is checked on."""
    return jobs(db), {k: (e.schedule_id, e.source) for k, e in ledger(db).items()}


def test_a_second_directory_is_refused_and_changes_nothing(db_url: str, tmp_path: Path) -> None:
    team_a = team(tmp_path / "teamA", "team-a", 5)
    team_b = team(tmp_path / "teamB", "team-b", 1)
    assert reconcile(team_a, db_url).exit_code == 0
    before = database(db_url)
    assert {source for _, source in before[1].values()} == {team_a.resolve().as_posix()}

    refused = reconcile(team_b, db_url)
    assert refused.exit_code == 1
    message = "\n".join(refused.err)
    assert f"5 schedule(s) in namespace 'default' are owned by {team_a.resolve().as_posix()}" in message
    assert "--namespace NAME" in message
    assert f"--adopt-from '{team_a.resolve().as_posix()}'" in message
    assert database(db_url) == before

    dry = reconcile(team_b, db_url, dry_run=True)
    assert dry.exit_code == 1
    assert f"(owned by {team_a.resolve().as_posix()})" in "\n".join(dry.out)


def test_with_a_namespace_of_its_own_both_coexist(db_url: str, tmp_path: Path) -> None:
    team_a = team(tmp_path / "teamA", "team-a", 5)
    team_b = team(tmp_path / "teamB", "team-b", 1)
    assert reconcile(team_a, db_url).exit_code == 0
    rows_a = jobs(db_url)
    assert reconcile(team_b, db_url, namespace="team-b").exit_code == 0
    rows = jobs(db_url)
    assert len(rows) == 6
    assert {k: v for k, v in rows.items() if k in rows_a} == rows_a  # team A's rows untouched
    assert reconcile(team_a, db_url, dry_run=True, detailed_exitcode=True).exit_code == 0
    assert reconcile(team_b, db_url, namespace="team-b", dry_run=True, detailed_exitcode=True).exit_code == 0


def test_adopt_from_moves_ownership_in_one_apply(db_url: str, tmp_path: Path) -> None:
    old = team(tmp_path / "teamA", "team-a", 3)
    assert reconcile(old, db_url).exit_code == 0
    rows = jobs(db_url)
    moved = tmp_path / "moved"
    old.rename(moved)

    assert reconcile(moved, db_url).exit_code == 1  # still the old directory's schedules
    adopted = reconcile(moved, db_url, adopt_from=old.resolve().as_posix())
    assert adopted.exit_code == 0, adopted.err
    assert adopted.plan is not None
    assert [(c.key, c.action) for c in adopted.plan.pending] == [(f"team-a-{i}", Action.ADOPT) for i in (1, 2, 3)]
    assert "< adopt" in "\n".join(adopted.out)
    assert jobs(db_url) == rows  # the rows themselves (ids, next runs, bytes) are untouched
    assert {e.source for e in ledger(db_url).values()} == {moved.resolve().as_posix()}
    assert reconcile(moved, db_url, dry_run=True, detailed_exitcode=True).exit_code == 0


def test_adopt_from_takes_over_another_directorys_schedules(sqlite_url: str, tmp_path: Path) -> None:
    team_a = team(tmp_path / "teamA", "team-a", 5)
    team_b = team(tmp_path / "teamB", "team-b", 1)
    assert reconcile(team_a, sqlite_url).exit_code == 0
    taken = reconcile(team_b, sqlite_url, adopt_from=team_a.resolve().as_posix(), max_deletes=5)
    assert taken.exit_code == 0, taken.err
    assert {k: s for k, (_, s) in database(sqlite_url)[1].items()} == {"team-b-1": team_b.resolve().as_posix()}


def _git_repo(path: Path, remote: str) -> Repo:
    repo = make_repo(path)
    repo.git.remote("add", "origin", remote)
    team(path / "schedules.d", "ops", 2)
    commit_all(repo, "schedules")
    return repo


def test_in_git_the_source_is_remote_and_directory_and_a_moved_directory_is_named(
    sqlite_url: str, tmp_path: Path
) -> None:
    repo = _git_repo(tmp_path / "repo", "git@github.com:org/ops-schedules.git")
    root = Path(str(repo.working_tree_dir))
    assert reconcile(root / "schedules.d", sqlite_url).exit_code == 0
    assert {e.source for e in ledger(sqlite_url).values()} == {"github.com/org/ops-schedules:schedules.d"}

    repo.git.mv("schedules.d", "schedules")
    commit_all(repo, "move the schedules")
    refused = reconcile(root / "schedules", sqlite_url)
    assert refused.exit_code == 1
    message = "\n".join(refused.err)
    assert "owned by github.com/org/ops-schedules:schedules.d" in message
    assert (
        "The schedules directory moved from schedules.d to schedules in github.com/org/ops-schedules? "
        "Then run this command again with --adopt-from 'github.com/org/ops-schedules:schedules.d'"
    ) in message
    moved = reconcile(root / "schedules", sqlite_url, adopt_from="github.com/org/ops-schedules:schedules.d")
    assert moved.exit_code == 0, moved.err
    assert {e.source for e in ledger(sqlite_url).values()} == {"github.com/org/ops-schedules:schedules"}


def test_an_explicit_source_names_the_owner(sqlite_url: str, tmp_path: Path) -> None:
    d = team(tmp_path / "anywhere", "ops", 1)
    assert reconcile(d, sqlite_url, source="ops-team").exit_code == 0
    assert {e.source for e in ledger(sqlite_url).values()} == {"ops-team"}
    copy = team(tmp_path / "elsewhere", "ops", 1)  # the same files from another checkout path
    assert reconcile(copy, sqlite_url, source="ops-team", dry_run=True, detailed_exitcode=True).exit_code == 0
    assert reconcile(copy, sqlite_url, dry_run=True).exit_code == 1  # without it, another source


def test_entries_without_a_source_are_adopted_once(db_url: str, tmp_path: Path) -> None:
    d = team(tmp_path / "teamA", "team-a", 2)
    assert reconcile(d, db_url).exit_code == 0
    engine = store.connect(db_url)
    with store.write_transaction(engine) as conn:  # a ledger written before sources were tracked
        conn.execute(text("UPDATE reconciler_ledger SET source = NULL"))
    engine.dispose()
    rows = jobs(db_url)
    plan = reconcile(d, db_url, dry_run=True)
    assert plan.exit_code == 0
    notes = [w for w in plan.plan.warnings if "recorded before sources were tracked" in w] if plan.plan else []
    assert notes == [
        f"2 schedule(s) recorded before sources were tracked: adopted by {d.resolve().as_posix()} with this apply"
    ]
    assert reconcile(d, db_url).exit_code == 0
    assert jobs(db_url) == rows
    assert {e.source for e in ledger(db_url).values()} == {d.resolve().as_posix()}
    again = reconcile(d, db_url, dry_run=True)
    assert again.plan is not None and not any("before sources" in w for w in again.plan.warnings)


def test_json_plan_and_show_schedule_show_the_owner(sqlite_url: str, tmp_path: Path) -> None:
    from reconciler.commands.show_schedule import run_show_schedule

    d = team(tmp_path / "teamA", "team-a", 1)
    created = reconcile(d, sqlite_url, dry_run=True, fmt="json")
    change = json.loads(created.out[0])["changes"][0]
    assert (change["owner"], change["new_owner"]) == (None, d.resolve().as_posix())
    assert reconcile(d, sqlite_url).exit_code == 0
    shown = run_show_schedule(db_url=sqlite_url, fmt="json", directory=None)
    body = json.loads(shown.out[0])
    assert [j["owner"] for j in body["jobs"]] == [d.resolve().as_posix()]


def test_a_ledger_from_before_the_migration_plans_and_then_migrates(sqlite_url: str, tmp_path: Path) -> None:
    from alembic import command

    from reconciler.migrate import _config

    d = team(tmp_path / "teamA", "team-a", 1)
    engine = store.connect(sqlite_url)
    with store.write_transaction(engine) as conn:
        store.create_compatible_tables(conn)
        command.upgrade(_config(conn), "0002_runner_lease")  # the ledger as the previous release left it
        assert not store.ledger_has_source(conn)
    engine.dispose()
    assert reconcile(d, sqlite_url, dry_run=True).exit_code == 0  # read-only: no migration, source read as NULL
    assert reconcile(d, sqlite_url).exit_code == 0
    engine = store.connect(sqlite_url)
    with engine.connect() as conn:
        assert store.ledger_has_source(conn)
    engine.dispose()
    assert {e.source for e in ledger(sqlite_url).values()} == {d.resolve().as_posix()}


@pytest.mark.parametrize(
    "url",
    [
        "git@github.com:org/repo.git",
        "https://github.com/org/repo.git",
        "https://user:token@github.com/org/repo",
        "ssh://git@github.com/org/repo.git",
        "https://GitHub.com/org/repo/",
    ],
)
def test_remote_urls_name_one_source(url: str) -> None:
    assert normalized_remote(url) == "github.com/org/repo"


# --- the ownership rules in the pure planner (in memory, fixed clock) -------------------------------------

OURS = "github.com/org/ops:schedules.d"
THEIRS = "github.com/org/ops:old-schedules"


def owned_by(source: str | None, *keys: str, **fields: object) -> LiveState:
    """A database holding `keys`, each applied by `source`."""
    live = memory_db.reconcile([memory_db.desired(k, **fields) for k in keys])
    return replace(live, ledger=tuple(replace(e, source=source) for e in live.ledger))


def plan_as(live: LiveState, keys: Sequence[str], source: str | None = OURS, **settings: Any) -> Plan:
    schedules = [memory_db.desired(k) for k in keys]
    return compute_plan(schedules, live, PlanSettings(source=source, **settings), memory_db.NOW)


@pytest.mark.parametrize(
    ("source", "parts"),
    [
        ("github.com/org/ops:schedules.d", ("github.com/org/ops", "schedules.d")),
        ("github.com/org/ops:deploy/schedules", ("github.com/org/ops", "deploy/schedules")),
        ("github.com/org/ops:k/schedules", ("github.com/org/ops", "k/schedules")),
        ("git.example.com:2222/org/ops:schedules.d", ("git.example.com:2222/org/ops", "schedules.d")),  # a port
        ("ops-team", ("ops-team", "")),
        ("/srv/checkout:/srv/checkout/schedules", ("/srv/checkout:/srv/checkout/schedules", "")),
    ],
)
def test_a_source_name_is_repository_and_directory(source: str, parts: tuple[str, str]) -> None:
    assert source_parts(source) == parts


def test_changing_what_another_source_owns_is_refused_naming_at_most_five_keys() -> None:
    keys = [f"k{i}" for i in range(1, 8)]
    live = owned_by("team-a", *keys)
    plan = plan_as(live, [], max_deletes=10, allow_empty=True)
    assert plan.errors == (
        "7 schedule(s) in namespace 'default' are owned by team-a (k1, k2, k3, k4, k5 and 2 more); "
        "this plan would change or delete them. Use a namespace of your own (--namespace NAME), "
        "or take them over in one apply with --adopt-from 'team-a'",
    )
    assert (
        plan_as(owned_by("team-a", *keys[:5]), [], allow_empty=True)
        .errors[0]
        .startswith("5 schedule(s) in namespace 'default' are owned by team-a (k1, k2, k3, k4, k5); this plan")
    )
    six = plan_as(owned_by("team-a", *keys[:6]), [], allow_empty=True).errors[0]
    assert six.startswith("6 schedule(s) in namespace 'default' are owned by team-a (k1, k2, k3, k4, k5 and 1 more);")


def test_ones_own_schedules_do_not_hide_anothers_in_the_refusal() -> None:
    ours, theirs = owned_by(OURS, "a"), owned_by(THEIRS, "b")
    live = replace(ours, jobs=(*ours.jobs, *theirs.jobs), ledger=(*ours.ledger, *theirs.ledger))
    (message,) = plan_as(live, ["a"]).errors  # a (ours, unchanged) sorts first; b (theirs) would be deleted
    assert message.startswith(f"1 schedule(s) in namespace 'default' are owned by {THEIRS} (b)")


def test_a_moved_directory_of_the_same_repository_is_named_in_the_refusal() -> None:
    (message,) = plan_as(owned_by(THEIRS, "a"), [], allow_empty=True).errors
    assert message.endswith(
        ". The schedules directory moved from old-schedules to schedules.d in github.com/org/ops? "
        f"Then run this command again with --adopt-from '{THEIRS}'"
    )
    (other_repo,) = plan_as(owned_by("github.com/org/other:schedules.d", "a"), [], allow_empty=True).errors
    assert "moved from" not in other_repo
    (named,) = plan_as(owned_by("team-a", "a"), [], source="team-b", allow_empty=True).errors
    assert "moved from" not in named


def test_declaring_another_sources_schedule_unchanged_is_refused_too() -> None:
    # Its row stays, but its entry would name this source: a silent takeover, unless adopted.
    plan = plan_as(owned_by(THEIRS, "a"), ["a"])
    (change,) = plan.changes
    assert (change.action, change.ledger, change.owner, change.new_owner) == (
        Action.NOOP,
        LedgerRecord.KEPT_COMMIT,
        THEIRS,
        OURS,
    )
    assert len(plan.errors) == 1 and plan.errors[0].startswith(
        f"1 schedule(s) in namespace 'default' are owned by {THEIRS} (a)"
    )
    assert plan_as(owned_by(OURS, "a"), ["a"]).errors == ()


def test_a_ledger_only_change_to_another_sources_entry_is_refused_too() -> None:
    # Same row, but the entry would be rewritten (here: it learns the row hash it lacked).
    live = owned_by(THEIRS, "a")
    live = replace(live, ledger=tuple(replace(e, row_hash=None) for e in live.ledger))
    plan = plan_as(live, ["a"])
    (change,) = plan.changes
    assert (change.action, change.ledger) == (Action.NOOP, LedgerRecord.KEPT_COMMIT)
    assert len(plan.errors) == 1 and plan.errors[0].startswith(
        f"1 schedule(s) in namespace 'default' are owned by {THEIRS}"
    )


def test_adopt_from_takes_each_kind_of_change_over() -> None:
    live = owned_by(THEIRS, "same", "renamed", "gone")
    schedules = [memory_db.desired("same"), memory_db.desired("renamed", name="New name")]
    plan = compute_plan(schedules, live, PlanSettings(source=OURS, adopt_from=THEIRS), memory_db.NOW)
    assert plan.errors == ()
    by_key = {c.key: c for c in plan.changes}
    owner = ("owner", THEIRS, OURS)
    assert (by_key["same"].action, [(f.name, f.before, f.after) for f in by_key["same"].fields]) == (
        Action.ADOPT,
        [owner],
    )
    assert by_key["renamed"].action is Action.UPDATE
    assert [(f.name, f.before, f.after) for f in by_key["renamed"].fields][-1] == owner
    assert (by_key["gone"].action, by_key["gone"].fields, by_key["gone"].owner) == (Action.DELETE, (), THEIRS)
    after = memory_db.apply_plan(plan, live)
    assert {e.key: e.source for e in after.ledger} == {"same": OURS, "renamed": OURS}


def test_a_protected_schedule_removed_from_the_files_is_labelled_with_its_owner_and_adopted_as_kept() -> None:
    live = owned_by(THEIRS, "kept", protect=True)
    (left,) = plan_as(live, [], allow_empty=True).changes  # not ours, not deleted: listed with its owner
    assert (left.key, left.action, left.owner, left.fields) == ("kept", Action.NOOP, THEIRS, ())
    (taken,) = plan_as(live, [], allow_empty=True, adopt_from=THEIRS).changes
    assert (taken.action, taken.owner) == (Action.ADOPT, THEIRS)
    assert [(f.name, f.before, f.after) for f in taken.fields] == [("owner", THEIRS, OURS)]
    assert taken.remove_row is False


def test_adopt_from_another_source_than_the_owner_adopts_nothing() -> None:
    plan = compute_plan(
        [memory_db.desired("a")],
        owned_by("team-a", "a"),
        PlanSettings(source=OURS, adopt_from="team-b"),
        memory_db.NOW,
    )
    (change,) = plan.changes
    assert (change.action, change.owner, change.fields) == (Action.NOOP, "team-a", ())
    assert len(plan.errors) == 1 and "owned by team-a (a)" in plan.errors[0]


def test_a_plan_without_a_source_is_never_refused_and_keeps_the_owner() -> None:
    live = owned_by("team-a", "a")
    plan = plan_as(live, ["a"], source=None, allow_empty=True)
    assert plan.errors == () and plan.warnings == ()
    plan = compute_plan([memory_db.desired("a", name="B")], live, PlanSettings(), memory_db.NOW)
    assert plan.errors == ()
    (entry,) = memory_db.apply_plan(plan, live).ledger
    assert entry.source == "team-a"


def test_entries_recorded_before_sources_are_counted_in_one_warning() -> None:
    live = owned_by(None, "a", "b")
    plan = plan_as(live, ["a", "b", "c"])
    assert plan.errors == ()
    assert plan.warnings == (f"2 schedule(s) recorded before sources were tracked: adopted by {OURS} with this apply",)
    assert plan_as(live, ["a", "b"], source=None).warnings == ()
    renamed = compute_plan(
        [memory_db.desired("new", moved_from="a")], owned_by(None, "a"), PlanSettings(source=OURS), memory_db.NOW
    )
    assert renamed.warnings == ()  # no "0 schedule(s)" note: the renamed entry is the rename's
    assert plan_as(owned_by(OURS, "a", "b"), ["a", "b", "c"]).warnings == ()
    # Taken over by the warning alone: no owner field, no adoption; a new key has no owner to move either.
    by_key = {c.key: c for c in plan.changes}
    assert [(c.action, c.owner, c.fields) for c in (by_key["a"], by_key["b"])] == [(Action.NOOP, None, ())] * 2
    assert (by_key["c"].action, by_key["c"].owner, [f.name for f in by_key["c"].fields]) == (Action.CREATE, None, [])
