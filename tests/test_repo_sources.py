"""Repository-relative sources (provenance.with_repo_sources): each folder resolved once, the answer of
`os.path.realpath` for every file, symlinks of every kind included. No server, no git process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler import provenance
from reconciler.spec import DesiredSchedule, SourceLocation


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A repository-like tree: plain files, a file linked from another folder, a linked folder, a dangling link."""
    root = tmp_path / "repo"
    (root / "schedules.d" / "team").mkdir(parents=True)
    (root / "elsewhere").mkdir()
    (root / "schedules.d" / "team" / "a.yaml").write_text("schedules: []\n")
    (root / "elsewhere" / "real.yaml").write_text("schedules: []\n")
    (root / "schedules.d" / "team" / "linked.yaml").symlink_to(root / "elsewhere" / "real.yaml")
    (root / "schedules.d" / "via").symlink_to(root / "elsewhere", target_is_directory=True)
    (root / "schedules.d" / "team" / "dangling.yaml").symlink_to(root / "missing.yaml")
    return root


def paths_in(tree: Path) -> list[str]:
    return [
        "schedules.d/team/a.yaml",
        "schedules.d/team/linked.yaml",
        "schedules.d/via/real.yaml",
        "schedules.d/team/dangling.yaml",
        "schedules.d/team/../team/a.yaml",
        "./schedules.d/team/a.yaml",
        str(tree / "schedules.d" / "via" / "real.yaml"),
        "schedules.d/team/.",
        "top.yaml",
    ]


def test_each_file_resolves_as_realpath_resolves_it(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    folders: dict[str, str] = {}
    for path in paths_in(tree):
        assert provenance._resolved(path, folders) == os.path.realpath(path), path
    assert len(folders) < len(paths_in(tree))  # folders were shared


def test_repo_sources_are_those_of_one_realpath_per_file(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree / "schedules.d")  # not the root: every path changes
    source = provenance.SourceRepo(root=Path(os.path.realpath(tree)), directory="schedules.d", head_sha=None)
    paths = [p.removeprefix("schedules.d/") for p in paths_in(tree)]
    desired = [
        DesiredSchedule(f"k{i}", "task_clean_up_tasks", "interval", {"hours": 1}, "UTC", source=SourceLocation(p, i))
        for i, p in enumerate(paths)
    ]
    found = provenance.with_repo_sources(desired, source)
    assert [d.source.path if d.source else None for d in found] == [source.relative(p) for p in paths]
    assert found[0].source is not None and found[0].source.path == "schedules.d/team/a.yaml"
    assert found[1].source is not None and found[1].source.path == "elsewhere/real.yaml"  # where the link points
