"""Git awareness: which commit a schedule came from, whether the tree is dirty, what a branch changed.

Everything here is optional by design: a schedules directory outside a git repository (or a machine
without the `git` executable) simply has no provenance, no dirty check and no branch marking. Nothing
here writes to the repository; every call is a read (`git status`, `git diff`, reading blobs).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from reconciler.spec import DesiredSchedule

if TYPE_CHECKING:
    from git import Repo

    from reconciler.plan import Change, Plan
    from reconciler.store import LedgerEntry

DIRTY_SUFFIX = "-dirty"  # appended to the commit SHA when an apply ran with --allow-dirty on a dirty tree

BRANCH = "branch"  # a change caused by the files this branch touched
ELSEWHERE = "elsewhere"  # drift in the database, or a change made on another branch / not yet applied


class GitError(Exception):
    """A git question that has no answer (unknown revision, no common ancestor, a failing git command)."""


@contextmanager
def git_errors() -> Iterator[None]:
    """A failing git command becomes one clear GitError line, never a traceback."""
    from git import GitCommandError

    try:
        yield
    except GitCommandError as exc:
        detail = (str(exc.stderr or "").strip().splitlines() or [str(exc)])[-1]
        raise GitError(f"git: {detail}") from exc


@dataclass(frozen=True)
class SourceRepo:
    """The git repository that holds a schedules directory."""

    repo: Repo
    root: Path  # the work tree's top level, resolved
    directory: str  # the schedules directory relative to `root`, POSIX ("." for the root itself)

    @property
    def head_sha(self) -> str | None:
        """HEAD's commit SHA; None in a repository without commits yet."""
        try:
            return str(self.repo.head.commit.hexsha)
        except ValueError:
            return None

    @property
    def head_author(self) -> str | None:
        """HEAD's author as `Name <email>`."""
        try:
            author = self.repo.head.commit.author
        except ValueError:
            return None
        return f"{author.name} <{author.email}>" if author.email else str(author.name)

    def relative(self, path: str | Path) -> str:
        """A path (absolute or relative to the working directory) relative to the repository root."""
        absolute = Path(path).resolve()
        try:
            return absolute.relative_to(self.root).as_posix()
        except ValueError:
            return Path(path).as_posix()


def find_repo(directory: Path) -> SourceRepo | None:
    """The repository containing `directory`, or None (not a repository, bare, or no `git` executable)."""
    try:
        # GitPython refuses to import when the git executable is missing; that is "no provenance", not an error.
        from git import InvalidGitRepositoryError, NoSuchPathError, Repo
    except ImportError:
        return None
    try:
        repo = Repo(directory, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        return None
    if repo.bare or repo.working_tree_dir is None:
        return None
    root = Path(repo.working_tree_dir).resolve()
    try:
        rel = directory.resolve().relative_to(root).as_posix()
    except ValueError:
        return None
    return SourceRepo(repo, root, rel or ".")


def is_schedule_path(path: str, directory: str) -> bool:
    """Whether a repository path is (or was) a file the loader reads below `directory`.

    Mirrors `loader.schedule_files`: *.yaml / *.yml, no path part starting with '_' or '.'.
    """
    pure = PurePosixPath(path)
    try:
        rel = pure.relative_to(directory) if directory != "." else pure
    except ValueError:
        return False
    if any(part.startswith(("_", ".")) for part in rel.parts):
        return False
    return pure.suffix in (".yaml", ".yml")


def dirty_files(source: SourceRepo) -> list[str]:
    """Schedule files under the directory with uncommitted changes: modified, staged, deleted or untracked.

    Only files the loader reads count: an editor's swap file or a README does not change what is applied.
    """
    out = source.repo.git.status("--porcelain=v1", "-z", "--untracked-files=all", "--", source.directory)
    entries = out.split("\0")
    found: list[str] = []
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        if "R" in status or "C" in status:
            # -z puts the rename's original path in the next entry; both sides changed.
            if i < len(entries) and is_schedule_path(entries[i], source.directory):
                found.append(entries[i])
            i += 1
        if is_schedule_path(path, source.directory):
            found.append(path)
    return sorted(set(found))


def with_repo_sources(desired: Sequence[DesiredSchedule], source: SourceRepo) -> list[DesiredSchedule]:
    """The schedules with `source.path` made relative to the repository root.

    The ledger, the plan and GitHub annotations then name a file the same way on every machine,
    whatever the working directory of the command was.
    """
    result = []
    for d in desired:
        if d.source is None:
            result.append(d)
            continue
        result.append(replace(d, source=replace(d.source, path=source.relative(d.source.path))))
    return result


@dataclass(frozen=True)
class GitProvenance:
    """What an apply records about the tree it applied: commit, author, and what was uncommitted."""

    commit: str | None
    author: str | None
    dirty: tuple[str, ...] = ()

    @property
    def recorded_commit(self) -> str | None:
        """The commit as written to the ledger: `<sha>-dirty` when uncommitted schedule files were applied."""
        if self.commit is None:
            return None
        return self.commit + DIRTY_SUFFIX if self.dirty else self.commit


def provenance_of(source: SourceRepo) -> GitProvenance:
    """HEAD's commit and author, and the dirty schedule files, of the repository."""
    with git_errors():
        return GitProvenance(source.head_sha, source.head_author, tuple(dirty_files(source)))


def dirty_message(directory: Path, files: Sequence[str]) -> str:
    """The one line that refuses an apply from a dirty tree."""
    shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
    return (
        f"error: uncommitted changes under {directory}: {shown}; "
        "commit them (so the ledger can name the commit) or pass --allow-dirty"
    )


# -- --base: which changes did this branch make? ------------------------------------------------------


def _resolve(source: SourceRepo, rev: str) -> Any:
    from git import BadName

    try:
        return source.repo.commit(rev)
    except (BadName, ValueError) as exc:
        raise GitError(f"--base {rev}: unknown revision (fetch it first, e.g. git fetch origin)") from exc


def merge_base(source: SourceRepo, rev: str) -> str:
    """The commit where HEAD left `rev` (what `git diff rev...HEAD` compares against)."""
    base = _resolve(source, rev)
    if source.head_sha is None:
        raise GitError("--base: the repository has no commits yet")
    bases = source.repo.merge_base(base, source.repo.head.commit)
    if not bases:
        raise GitError(f"--base {rev}: no common ancestor with HEAD")
    return str(bases[0].hexsha)


def touched_files(source: SourceRepo, base_sha: str) -> set[str]:
    """Repository paths under the directory changed since `base_sha`: commits, staged, unstaged, untracked."""
    changed = source.repo.git.diff("--name-only", "--no-renames", "-z", base_sha, "--", source.directory)
    untracked = source.repo.git.ls_files("--others", "--exclude-standard", "-z", "--", source.directory)
    return {p for p in (changed + "\0" + untracked).split("\0") if p}


def _export_tree(source: SourceRepo, sha: str, into: Path) -> Path | None:
    """Write the schedules directory as it was at `sha` into `into`; None if it did not exist then."""
    tree = source.repo.commit(sha).tree
    if source.directory != ".":
        try:
            tree = tree / source.directory
        except KeyError:
            return None
    for item in tree.traverse():
        if item.type != "blob":  # type: ignore[union-attr]
            continue
        rel = PurePosixPath(item.path).relative_to(source.directory) if source.directory != "." else item.path  # type: ignore[union-attr]
        target = into / str(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.data_stream.read())  # type: ignore[union-attr]
    return into


def specs_at(source: SourceRepo, sha: str) -> dict[str, dict[str, Any]]:
    """key → the schedule's resolved spec in the directory at commit `sha` (broken files contribute nothing)."""
    from reconciler.commands.validate import as_plain, load_desired

    with tempfile.TemporaryDirectory(prefix="reconciler-base-") as tmp:
        exported = _export_tree(source, sha, Path(tmp))
        if exported is None:
            return {}
        loaded = load_desired(exported, now=datetime.now(UTC))
        return {d.key: as_plain(d) for d in loaded.schedules}


def classify(
    changes: Iterable[Change],
    desired: Mapping[str, DesiredSchedule],
    base_specs: Mapping[str, dict[str, Any]],
    touched: set[str],
) -> dict[str, str]:
    """key → BRANCH or ELSEWHERE for every pending change.

    BRANCH: the schedule's file was touched on this branch (or in the working tree) *and* the schedule
    itself differs from the merge base — or the branch removed a schedule the merge base declared.
    ELSEWHERE: everything else — drift in the database, or a difference between the database and the
    merge base that this branch did not make (another branch applied, main not yet applied, a file
    edited but this schedule in it unchanged).
    """
    from reconciler.commands.validate import as_plain

    origins: dict[str, str] = {}
    for change in changes:
        if not change.touches_database:
            continue
        origin = ELSEWHERE
        if change.drift:
            origin = ELSEWHERE
        elif change.key in desired:
            d = desired[change.key]
            in_touched_file = d.source is not None and d.source.path in touched
            if in_touched_file and base_specs.get(change.key) != as_plain(d):
                origin = BRANCH
        elif change.key in base_specs:
            origin = BRANCH  # declared at the merge base, gone now: this branch removed it
        origins[change.key] = origin
    return origins


def branch_origins(source: SourceRepo, base_rev: str, plan: Plan, desired: Sequence[DesiredSchedule]) -> dict[str, str]:
    """For `--base REV`: key → "branch" | "elsewhere" for each change of `plan`.

    `desired` must carry repository-relative sources (see `with_repo_sources`).
    """
    with git_errors():
        sha = merge_base(source, base_rev)
        touched = touched_files(source, sha)
        base_specs = specs_at(source, sha)
    return classify(plan.changes, {d.key: d for d in desired}, base_specs, touched)


# -- show-schedule / status helpers -------------------------------------------------------------------


def short_commit(commit: str | None) -> str | None:
    """A ledger commit shortened for display (12 hex digits, the -dirty suffix kept)."""
    if not commit:
        return None
    sha, dirty, _ = commit.partition(DIRTY_SUFFIX)
    return sha[:12] + (DIRTY_SUFFIX if dirty else "")


def describe_entry(entry: LedgerEntry) -> str:
    """One cell for `show-schedule`: where a managed schedule came from, e.g.
    `schedules.d/core.yaml:4 @ 1a2b3c4d5e6f by Jane <jane@example.org>`; "" when nothing is recorded.
    """
    parts: list[str] = []
    if entry.source_path:
        parts.append(f"{entry.source_path}:{entry.source_line}" if entry.source_line else entry.source_path)
    commit = short_commit(entry.applied_commit)
    if commit:
        parts.append(f"@ {commit}")
    if entry.applied_author:
        parts.append(f"by {entry.applied_author}")
    return " ".join(parts)


def entry_provenance(entry: LedgerEntry) -> dict[str, Any]:
    """The same as `describe_entry`, as JSON-able fields (for `show-schedule --format json`)."""
    return {
        "source_path": entry.source_path,
        "source_line": entry.source_line,
        "applied_commit": entry.applied_commit,
        "applied_author": entry.applied_author,
        "applied_at": entry.applied_at.isoformat() if entry.applied_at else None,
    }
