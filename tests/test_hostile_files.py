"""Every *.yaml / *.yml below the schedules directory is read, or the run fails at its path.

Before, an entry the loader could not read as a regular file was skipped, so its schedules looked removed
and the next apply deleted them. Each case here first applies a directory with two files, then makes one
of them hostile: the reconcile must exit 1 naming that path, and the database must not change.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.commands.validate import load_desired
from tests.command_line import Schedules
from tests.conftest import init_compatible
from tests.test_reconcile import jobs, reconcile, schedule, write_schedules

NOW_FOR_TESTS = datetime.now(UTC)


def _dangling(d: Path) -> Path:
    (d / "team-a.yaml").unlink()
    (d / "team-a.yaml").symlink_to(d / "gone.yaml")
    return d / "team-a.yaml"


def _fifo(d: Path) -> Path:
    (d / "team-a.yaml").unlink()
    os.mkfifo(d / "team-a.yaml")
    return d / "team-a.yaml"


def _socket(d: Path) -> Path:
    import socket

    (d / "team-a.yaml").unlink()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(d / "team-a.yaml"))  # the socket file stays after close
    server.close()
    return d / "team-a.yaml"


def _device(d: Path) -> Path:
    import stat

    (d / "team-a.yaml").unlink()
    os.mknod(d / "team-a.yaml", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # a /dev/null
    return d / "team-a.yaml"


def _directory_with_yaml_name(d: Path) -> Path:
    (d / "team-a.yaml").unlink()
    (d / "team-a.yaml").mkdir()
    return d / "team-a.yaml"


def _file_symlink_loop(d: Path) -> Path:
    (d / "team-a.yaml").unlink()
    (d / "team-a.yaml").symlink_to(d / "other.yaml")
    (d / "other.yaml").symlink_to(d / "team-a.yaml")
    return d / "other.yaml"  # the first of the two links met (sorted order)


def _directory_loop(d: Path) -> Path:
    sub = d / "nested"
    sub.mkdir()
    (d / "team-a.yaml").rename(sub / "team-a.yaml")
    (sub / "again").symlink_to(d, target_is_directory=True)
    return sub / "again"


def _outside_symlink(d: Path) -> Path:
    outside = d.parent / "elsewhere.yaml"
    (d / "team-a.yaml").rename(outside)
    (d / "team-a.yaml").symlink_to(outside)
    return d / "team-a.yaml"


def _outside_directory_symlink(d: Path) -> Path:
    outside = d.parent / "vendor"
    outside.mkdir()
    (d / "team-a.yaml").rename(outside / "team-a.yaml")
    (d / "vendor").symlink_to(outside, target_is_directory=True)
    return d / "vendor"


HOSTILE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "dangling symlink": (_dangling, "dangling symlink"),
    "fifo": (_fifo, "is a FIFO, not a regular file"),
    "socket": (_socket, "is a socket, not a regular file"),
    "device": (_device, "is a device, not a regular file"),
    "directory named x.yaml": (_directory_with_yaml_name, "is a directory with a YAML file name"),
    "file symlink loop": (_file_symlink_loop, "symlink loop"),
    "directory symlink loop": (_directory_loop, "symlink loop"),
    "file symlink outside": (_outside_symlink, "outside the schedules directory; pass --follow-symlinks-outside"),
    "directory symlink outside": (_outside_directory_symlink, "outside the schedules directory"),
}


def _two_teams(d: Path) -> None:
    write_schedules(d, schedule("team-a-1"), schedule("team-a-2"), name="team-a.yaml")
    write_schedules(d, schedule("team-b-1"), name="team-b.yaml")


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a device needs root"))
        if c == "device"
        else c
        for c in HOSTILE
    ],
)
def test_hostile_entry_fails_the_run_at_its_path_and_changes_nothing(
    case: str, sqlite_url: str, tmp_path: Path
) -> None:
    d = tmp_path / "schedules.d"
    _two_teams(d)
    first = reconcile(d, sqlite_url)
    assert first.exit_code == 0, first.err
    before = jobs(sqlite_url)
    assert len(before) == 3

    make, reason = HOSTILE[case]
    bad_path = make(d)
    outcome = reconcile(d, sqlite_url)

    assert outcome.exit_code == 1, outcome.out
    message = "\n".join(outcome.err)
    assert f"{bad_path}:1:1: error:" in message or f"{os.path.relpath(bad_path)}:1:1: error:" in message, message
    assert reason in message, message
    assert "nothing planned" in message
    assert jobs(sqlite_url) == before


def test_hostile_entry_on_postgres_too(pg_url: str, tmp_path: Path) -> None:
    d = tmp_path / "schedules.d"
    _two_teams(d)
    init_compatible(pg_url).dispose()
    assert reconcile(d, pg_url).exit_code == 0
    before = jobs(pg_url)
    _fifo(d)
    outcome = reconcile(d, pg_url)
    assert outcome.exit_code == 1
    assert jobs(pg_url) == before


def test_symlinks_inside_the_tree_are_followed_once(tmp_path: Path) -> None:
    d = tmp_path / "schedules.d"
    _two_teams(d)
    (d / "shared").mkdir()
    (d / "team-b.yaml").rename(d / "shared" / "team-b.yaml")
    (d / "linked").symlink_to(d / "shared", target_is_directory=True)  # the same file through a second path
    (d / "alias.yaml").symlink_to(d / "team-a.yaml")
    loaded = load_desired(d, now=NOW_FOR_TESTS)
    assert loaded.ok, loaded.problems
    assert sorted(s.key for s in loaded.schedules) == ["team-a-1", "team-a-2", "team-b-1"]


def test_follow_symlinks_outside_reads_the_target(tmp_path: Path) -> None:
    d = tmp_path / "schedules.d"
    _two_teams(d)
    _outside_symlink(d)
    assert not load_desired(d, now=NOW_FOR_TESTS).ok
    loaded = load_desired(d, now=NOW_FOR_TESTS, follow_symlinks_outside=True)
    assert loaded.ok, loaded.problems
    assert sorted(s.key for s in loaded.schedules) == ["team-a-1", "team-a-2", "team-b-1"]


def test_non_yaml_entries_stay_ignored(tmp_path: Path) -> None:
    d = tmp_path / "schedules.d"
    _two_teams(d)
    os.mkfifo(d / "notes.fifo")
    (d / "README").symlink_to(d / "missing")
    (d / "_draft.yaml").mkdir()
    loaded = load_desired(d, now=NOW_FOR_TESTS)
    assert loaded.ok, loaded.problems


def test_cli_flag_follows_outside_symlinks(tmp_path: Path, command_line: Schedules) -> None:
    d = tmp_path / "schedules.d"
    _two_teams(d)
    _outside_symlink(d)
    refused = command_line("validate", str(d), cwd=tmp_path)
    assert refused.returncode == 1
    assert "team-a.yaml:1:1: error: symlink to" in refused.stdout
    followed = command_line("validate", str(d), "--follow-symlinks-outside", cwd=tmp_path)
    assert followed.returncode == 0, followed.stdout + followed.stderr
