"""Git awareness: which commit a schedule came from, whether the tree is dirty, what a branch changed.

Everything here is optional by design: a schedules directory outside a git repository (or a machine
without the `git` executable) simply has no provenance, no dirty check and no branch marking. Nothing
here writes to the repository; every call is a read (`git rev-parse`, `git status`, `git diff`, blobs).

Git is asked through its own command line, as few times as a command needs: no process at all outside a
repository (no `.git` above the directory), one `git rev-parse` for the root and HEAD (all a dry run needs),
`git status` and one `git log` more for what an apply records, and one `git cat-file --batch` for a whole
tree at another commit (`--base`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from reconciler.spec import DesiredSchedule, SourceLocation

if TYPE_CHECKING:
    from reconciler.plan import Change, Plan
    from reconciler.store import LedgerEntry

DIRTY_SUFFIX = "-dirty"  # appended to the commit SHA when an apply ran with --allow-dirty on a dirty tree

BRANCH = "branch"  # a change caused by the files this branch touched
ELSEWHERE = "elsewhere"  # drift in the database, or a change made on another branch / not yet applied


class GitError(Exception):
    """A git question that has no answer (unknown revision, no common ancestor, a failing git command)."""


# core.quotepath=off: paths come back as they are (with -z they are never quoted anyway).
GIT = ("git", "-c", "core.quotepath=off")


def run_git(cwd: Path, *args: str, ok_codes: Sequence[int] = (0,), stdin: bytes | None = None) -> tuple[int, bytes]:
    """One `git` process in `cwd`; its exit code and stdout. Any other exit code is a GitError with git's last line."""
    try:
        proc = subprocess.run([*GIT, *args], cwd=cwd, input=stdin, capture_output=True, check=False)
    except OSError as exc:  # no git executable, or cwd gone
        raise GitError(f"git: {exc.strerror or exc}") from exc
    if proc.returncode not in ok_codes:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"git: {lines[-1] if lines else f'git {args[0]} exited {proc.returncode}'}")
    return proc.returncode, proc.stdout


def start_git(cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    """One `git` process in `cwd`, started and left running; read its stdout with `communicate()`.
    OSError when there is no git executable (or no `cwd`)."""
    return subprocess.Popen(
        [*GIT, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def _text(out: bytes) -> str:
    return out.decode(errors="replace")


@dataclass
class SourceRepo:
    """The git repository that holds a schedules directory."""

    root: Path  # the work tree's top level, resolved
    directory: str  # the schedules directory relative to `root`, POSIX ("." for the root itself)
    head_sha: str | None  # HEAD's commit SHA; None in a repository without commits yet
    _author: str | None = field(default=None, repr=False)

    def git(self, *args: str, ok_codes: Sequence[int] = (0,), stdin: bytes | None = None) -> tuple[int, bytes]:
        """`git ARGS` at the repository root."""
        return run_git(self.root, *args, ok_codes=ok_codes, stdin=stdin)

    @property
    def head_author(self) -> str | None:
        """HEAD's author as `Name <email>` (asked once, only when something records it)."""
        if self.head_sha is None:
            return None
        if self._author is None:
            _, out = self.git("log", "-1", "--no-show-signature", "--format=%an%x00%ae", self.head_sha, "--")
            name, _, email = _text(out).rstrip("\n").partition("\0")
            self._author = f"{name} <{email}>" if email else name
        return self._author

    def relative(self, path: str | Path, *, resolved: str | None = None) -> str:
        """A path (absolute or relative to the working directory) relative to the repository root.
        `resolved`: its `os.path.realpath`, when the caller has it."""
        # os.path on strings: called once per schedule file (1,000 in a large tree), pathlib costs twice as much.
        absolute = resolved if resolved is not None else os.path.realpath(path)
        root = str(self.root)
        if absolute == root:
            return "."
        if absolute.startswith(root.rstrip(os.sep) + os.sep):
            # A resolved path has no `.` or doubled separators left: only the separator to make POSIX.
            return absolute[len(root.rstrip(os.sep)) + 1 :].replace(os.sep, "/")
        return Path(path).as_posix()


def normalized_remote(url: str) -> str:
    """A remote URL as an owner name: host/path, without scheme, credentials, port-less `git@` form or `.git`.

    `git@github.com:org/repo.git`, `https://user:token@github.com/org/repo` and `ssh://git@github.com/org/repo`
    are all `github.com/org/repo`, so clones over different protocols are one source.
    """
    text = url.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
        text = text.rsplit("@", 1)[-1] if "@" in text.split("/", 1)[0] else text
    elif "@" in text.split("/", 1)[0] and ":" in text:  # scp-like: git@host:org/repo
        host, _, path = text.rsplit("@", 1)[-1].partition(":")
        text = f"{host}/{path}"
    host, _, path = text.partition("/")
    path = path.rstrip("/").removesuffix(".git")
    return f"{host.lower()}/{path}" if path else host.lower()


def source_name(repo: SourceRepo) -> str:
    """Who applies from this directory: `<remote (origin first) or repository root>:<directory>`.

    The ledger records it per schedule, so a second repository (or directory) writing the same namespace
    is refused instead of deleting the first one's schedules. One `git config` process.
    """
    code, out = repo.git("config", "--get-regexp", r"^remote\..*\.url$", ok_codes=(0, 1))
    remotes: dict[str, str] = {}
    for line in _text(out).splitlines() if code == 0 else []:
        name, _, url = line.partition(" ")
        remotes[name.removeprefix("remote.").removesuffix(".url")] = url
    chosen = remotes.get("origin") or (remotes[sorted(remotes)[0]] if remotes else None)
    where = normalized_remote(chosen) if chosen else repo.root.as_posix()
    return f"{where}:{repo.directory}"


def owner_source(directory: Path, repo: SourceRepo | None) -> str:
    """The source a plan for `directory` applies as, when `--source` does not name one: the repository's
    remote and directory (`source_name`), outside git the directory's absolute path."""
    return source_name(repo) if repo is not None else directory.resolve().as_posix()


def _inside_a_repository(directory: Path) -> bool:
    """Whether git could find a repository from `directory`: a `.git` (directory, or file for worktrees and
    submodules) in it or above it, or GIT_DIR set. False spares a process for every directory outside git."""
    if "GIT_DIR" in os.environ:
        return True
    return any((folder / ".git").exists() for folder in (directory, *directory.parents))


def find_repo(directory: Path) -> SourceRepo | None:
    """The repository containing `directory`, or None (not a repository, bare, or no `git` executable).

    One `git rev-parse` answers both the work tree's root and HEAD.
    """
    return RepoLookup(directory).result()


class RepoLookup:
    """`find_repo` with its `git rev-parse` started at once and read by `result()`, so that git runs while
    the command parses the schedule files. `close()` ends a lookup nobody will read."""

    def __init__(self, directory: Path) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._resolved = directory.resolve() if directory.is_dir() else None
        if self._resolved is None or not _inside_a_repository(self._resolved):
            return
        with contextlib.suppress(OSError):  # no git executable, or the directory went away: no repository
            # --verify -q HEAD exits 1 (after printing the root) in a repository without commits yet.
            self._process = start_git(self._resolved, "rev-parse", "--show-toplevel", "--verify", "-q", "HEAD")

    def result(self) -> SourceRepo | None:
        """The repository, or None: not a work tree (bare, inside .git), no git, or a repository git refuses."""
        process, resolved = self._process, self._resolved
        if process is None or resolved is None:  # no process is started without a resolved directory
            return None
        self._process = None
        out, _ = process.communicate()
        if process.returncode not in (0, 1):
            return None
        lines = _text(out).splitlines()
        if not lines:
            return None
        root = Path(lines[0]).resolve()
        try:
            rel = resolved.relative_to(root).as_posix()
        except ValueError:
            return None
        head = lines[1] if process.returncode == 0 and len(lines) > 1 else None
        return SourceRepo(root, rel or ".", head)

    def close(self) -> None:
        """Wait for git if nobody read it (it takes milliseconds), so no process is left behind."""
        if self._process is not None:
            self._process.communicate()
            self._process = None


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
    _, out = source.git("status", "--porcelain=v1", "-z", "--untracked-files=all", "--", source.directory)
    entries = _text(out).split("\0")
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
    whatever the working directory of the command was. Each file's path is resolved once (not once per
    schedule: 10,000 `realpath` calls cost more than the rest of a dry run's git work), and a schedule whose
    path is already repository-relative (run from the root) is kept as it is.
    """
    relative: dict[str, str] = {}
    folders: dict[str, str] = {}
    result = []
    for d in desired:
        if d.source is None:
            result.append(d)
            continue
        path = d.source.path
        rel = relative.get(path)
        if rel is None:
            rel = relative[path] = source.relative(path, resolved=_resolved(path, folders))
        if rel == path:
            result.append(d)
        else:
            result.append(d.found_at(SourceLocation(rel, d.source.line, d.source.column)))
    return result


def _resolved(path: str, folders: dict[str, str]) -> str:
    """`os.path.realpath(path)`, each folder resolved once (`folders` remembers them): a file that is not itself
    a symlink is its resolved folder and its name. A tree of 1,000 files in 20 folders then costs 1,000 `lstat`s
    and 20 resolutions instead of 1,000 resolutions, each an `lstat` per path component (~20 ms)."""
    folder, name = os.path.split(path)
    if name in ("", ".", "..") or os.path.islink(path):
        return os.path.realpath(path)
    real = folders.get(folder)
    if real is None:
        real = folders[folder] = os.path.realpath(folder or os.curdir)
    return os.path.join(real, name)


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
    return GitProvenance(source.head_sha, source.head_author, tuple(dirty_files(source)))


def dirty_message(directory: Path, files: Sequence[str]) -> str:
    """The one line that refuses an apply from a dirty tree."""
    shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
    return (
        f"error: uncommitted changes under {directory}: {shown}; "
        "commit them (so the ledger can name the commit) or pass --allow-dirty"
    )


# -- --base: which changes did this branch make? ------------------------------------------------------


def resolve_commit(source: SourceRepo, rev: str) -> str | None:
    """The commit SHA that `rev` names, or None when this clone has no such commit."""
    code, out = source.git("rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}", ok_codes=(0, 1))
    return _text(out).strip() if code == 0 else None


def merge_base(source: SourceRepo, rev: str) -> str:
    """The commit where HEAD left `rev` (what `git diff rev...HEAD` compares against)."""
    base = resolve_commit(source, rev)
    if base is None:
        raise GitError(f"--base {rev}: unknown revision (fetch it first, e.g. git fetch origin)")
    if source.head_sha is None:
        raise GitError("--base: the repository has no commits yet")
    code, out = source.git("merge-base", base, source.head_sha, ok_codes=(0, 1))
    if code != 0:
        raise GitError(f"--base {rev}: no common ancestor with HEAD")
    return _text(out).split()[0]


def touched_files(source: SourceRepo, base_sha: str) -> set[str]:
    """Repository paths under the directory changed since `base_sha`: commits, staged, unstaged, untracked."""
    _, changed = source.git("diff", "--name-only", "--no-renames", "-z", base_sha, "--", source.directory)
    _, untracked = source.git("ls-files", "--others", "--exclude-standard", "-z", "--", source.directory)
    return {p for p in _text(changed + b"\0" + untracked).split("\0") if p}


def _export_tree(source: SourceRepo, sha: str, into: Path) -> Path | None:
    """Write the schedules directory as it was at `sha` into `into`; None if it did not exist then.

    One `git ls-tree` lists the files and one `git cat-file --batch` reads them all.
    """
    _, listing = source.git("ls-tree", "-r", "-z", sha, "--", source.directory)
    blobs: list[tuple[str, str]] = []  # (object id, repository path)
    for entry in _text(listing).split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob":
            blobs.append((parts[2], path))
    if not blobs:
        return None
    _, batch = source.git("cat-file", "--batch", stdin="".join(f"{oid}\n" for oid, _ in blobs).encode())
    at = 0
    for _, path in blobs:
        header_end = batch.index(b"\n", at)
        size = int(batch[at:header_end].split()[2])
        content = batch[header_end + 1 : header_end + 1 + size]
        at = header_end + 1 + size + 1  # the content is followed by one newline
        rel = PurePosixPath(path).relative_to(source.directory) if source.directory != "." else PurePosixPath(path)
        target = into / str(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return into


def specs_at(source: SourceRepo, sha: str) -> dict[str, dict[str, Any]]:
    """key → the schedule's resolved spec in the directory at commit `sha` (broken files contribute nothing)."""
    from reconciler.commands.validate import load_desired
    from reconciler.spec import as_plain

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
    from reconciler.spec import as_plain

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
    sha = merge_base(source, base_rev)
    touched = touched_files(source, sha)
    base_specs = specs_at(source, sha)
    return classify(plan.changes, {d.key: d for d in desired}, base_specs, touched)


# -- history, for `status` ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommitSummary:
    """One commit as `status` lists it."""

    sha: str
    author: str
    date: str  # committer date, ISO 8601 with its offset
    subject: str


def is_ancestor(source: SourceRepo, ancestor: str, descendant: str) -> bool:
    """Whether commit `ancestor` is reachable from `descendant`."""
    code, _ = source.git("merge-base", "--is-ancestor", ancestor, descendant, ok_codes=(0, 1))
    return code == 0


def commits_in(source: SourceRepo, span: str, *, under_directory: bool = False) -> list[CommitSummary]:
    """The commits of a revision range (`a..b`, `a...b`), newest first; only those touching the schedules
    directory when `under_directory`."""
    paths = ["--", source.directory] if under_directory else ["--"]
    _, out = source.git("log", "-z", "--no-show-signature", "--format=%H%x1f%an%x1f%cI%x1f%s", span, *paths)
    found = []
    for record in _text(out).split("\0"):
        fields = record.strip("\n").split("\x1f")
        if len(fields) == 4:
            found.append(CommitSummary(*fields))
    return found


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
