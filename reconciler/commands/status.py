"""`schedules status`: is the database where the repository says it should be?

Three questions, answered read-only (a read-only connection, no ledger migration, no lock):

1. Which commit was last applied? The ledger's `applied_commit` with the most recent `applied_at`
   for this namespace. (A schedule whose spec did not change keeps the commit that last set it, so
   this is "the last commit that changed something", not "the last time reconcile ran".)
2. Where is HEAD relative to it? Commits in between, and which of them touch the schedules directory.
3. Does the database match the files? A dry-run plan of the directory: pending changes are either
   drift (the row was changed outside reconciler) or changes not yet applied (HEAD is ahead).

Exit codes: 0 in sync (the plan is empty, whatever commits came since: a commit that changes nothing in
the database is not "ahead"); 2 HEAD is ahead (changes not yet applied) or the database drifted;
1 error (invalid files, database unreachable).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler import provenance, store
from reconciler.exit_codes import CommandResult
from reconciler.orchestrator_versions import VersionChoice
from reconciler.plan import PlanSettings
from reconciler.timetext import human_iso

MAX_COMMITS_LISTED = 20


@dataclass
class CommitInfo:
    sha: str
    author: str
    date: str
    subject: str
    touches_schedules: bool


@dataclass
class StatusReport:
    """Everything `status` found, as data (text and JSON are renderings of it)."""

    target: str
    namespace: str
    applied_commit: str | None = None
    applied_at: str | None = None
    applied_author: str | None = None
    head: str | None = None
    git: bool = False
    relation: str = "unknown"  # same | ahead | behind | diverged | unknown | not-recorded | no-git
    commits: list[CommitInfo] = field(default_factory=list)
    commits_total: int = 0
    dirty: list[str] = field(default_factory=list)
    pending: int = 0
    drifted: int = 0
    pending_keys: list[str] = field(default_factory=list)
    drifted_keys: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return self.pending == 0 and not self.errors

    @property
    def exit_code(self) -> int:
        if self.errors:
            return 1
        return 0 if self.in_sync else 2

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "namespace": self.namespace,
            "applied": {"commit": self.applied_commit, "at": self.applied_at, "author": self.applied_author},
            "head": self.head,
            "relation": self.relation,
            "commits_since_applied": [c.__dict__ for c in self.commits],
            "commits_since_applied_total": self.commits_total,
            "dirty": self.dirty,
            "pending": self.pending,
            "drifted": self.drifted,
            "pending_keys": self.pending_keys,
            "drifted_keys": self.drifted_keys,
            "in_sync": self.in_sync,
            "errors": self.errors,
        }


def _last_applied(entries: list[store.LedgerEntry], namespace: str) -> store.LedgerEntry | None:
    mine = [e for e in entries if e.namespace == namespace and e.applied_at is not None]
    if not mine:
        return None
    epoch = datetime.min.replace(tzinfo=UTC)

    def moment(e: store.LedgerEntry) -> datetime:
        at = e.applied_at or epoch
        return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite returns naive UTC

    with_commit = [e for e in mine if e.applied_commit]
    return max(with_commit or mine, key=moment)


def _git_part(report: StatusReport, source: provenance.SourceRepo) -> None:
    report.git = True
    report.head = source.head_sha
    report.dirty = provenance.dirty_files(source)
    if report.head is None:
        report.relation = "unknown"
        return
    if not report.applied_commit:
        report.relation = "not-recorded"
        return
    applied = provenance.resolve_commit(source, report.applied_commit.partition(provenance.DIRTY_SUFFIX)[0])
    if applied is None:
        report.relation = "unknown"  # applied from a commit this clone does not have (shallow, or unpushed)
        return
    head = report.head
    if applied == head:
        report.relation = "same"
        return
    if provenance.is_ancestor(source, applied, head):
        report.relation = "ahead"
        span = f"{applied}..{head}"
    elif provenance.is_ancestor(source, head, applied):
        report.relation = "behind"
        span = f"{head}..{applied}"
    else:
        report.relation = "diverged"
        span = f"{applied}...{head}"
    touching = {c.sha for c in provenance.commits_in(source, span, under_directory=True)}
    all_commits = provenance.commits_in(source, span)
    report.commits_total = len(all_commits)
    for c in all_commits[:MAX_COMMITS_LISTED]:
        report.commits.append(
            CommitInfo(sha=c.sha, author=c.author, date=c.date, subject=c.subject, touches_schedules=c.sha in touching)
        )


def collect(
    directory: Path, db_url: str, settings: PlanSettings, orchestrator: VersionChoice | None = None
) -> StatusReport:
    """Read the ledger, the repository and a dry-run plan; never write."""
    from sqlalchemy.exc import SQLAlchemyError

    from reconciler import apply as applier
    from reconciler import orchestrator_versions
    from reconciler.commands.validate import format_problems, load_desired

    report = StatusReport(target=store.redact_url(db_url), namespace=settings.namespace)
    now = datetime.now(UTC)
    loaded = load_desired(directory, now=now)
    if not loaded.ok:
        report.errors.append(format_problems([p for p in loaded.problems if p.is_error], "text"))
        report.errors.append("validation failed; the database was not compared")
        return report
    source = provenance.find_repo(directory)
    desired = loaded.schedules if source is None else provenance.with_repo_sources(loaded.schedules, source)
    if settings.source is None:
        settings = replace(settings, source=provenance.owner_source(directory, source))
    engine = store.connect(db_url, read_only=True)
    try:
        with engine.connect() as conn, conn.begin():
            settings = orchestrator_versions.settle(conn, settings, orchestrator or VersionChoice())
            ledger = store.read_ledger(conn)
        plan = applier.dry_run(engine, desired, settings, now)
    except SQLAlchemyError as exc:
        report.errors.append(f"database: {store.describe_db_error(exc)}")
        return report
    finally:
        engine.dispose()
    last = _last_applied(ledger, settings.namespace)
    if last is not None:
        report.applied_commit = last.applied_commit
        report.applied_author = last.applied_author
        report.applied_at = last.applied_at.isoformat() if last.applied_at else None
    if source is None:
        report.relation = "no-git"
    else:
        try:
            _git_part(report, source)
        except provenance.GitError as exc:
            report.errors.append(str(exc))
    pending = plan.pending
    report.pending = len(pending)
    report.drifted_keys = [c.key for c in pending if c.drift]
    report.drifted = len(report.drifted_keys)
    report.pending_keys = [c.key for c in pending if not c.drift]
    report.errors.extend(plan.errors)
    return report


def render_text(report: StatusReport, directory: Path) -> list[str]:
    """The human report: applied commit, HEAD, the commits between, the database verdict."""
    out = [f"Database:     {report.target} (namespace '{report.namespace}')"]
    if report.applied_commit:
        who = f" by {report.applied_author}" if report.applied_author else ""
        when = human_iso(report.applied_at)
        out.append(f"Last applied: {provenance.short_commit(report.applied_commit)} at {when}{who}")
    else:
        out.append("Last applied: no commit recorded in the ledger (never applied from git, or nothing applied)")
    if not report.git:
        out.append(f"HEAD:         {directory} is not in a git repository")
    else:
        head = provenance.short_commit(report.head) or "(no commits)"
        relation = {
            "same": "the last applied commit",
            "ahead": f"{report.commits_total} commit(s) ahead of the last applied commit",
            "behind": f"{report.commits_total} commit(s) BEHIND the last applied commit (an older checkout?)",
            "diverged": f"diverged from the last applied commit ({report.commits_total} commit(s) apart)",
            "unknown": "cannot be compared: the applied commit is not in this clone (shallow clone? fetch it)",
            "not-recorded": "nothing to compare with",
        }.get(report.relation, report.relation)
        out.append(f"HEAD:         {head} — {relation}")
        for c in report.commits:
            flag = "*" if c.touches_schedules else " "
            out.append(f"  {flag} {c.sha[:12]} {c.date[:10]} {c.author}: {c.subject}")
        if report.commits_total > len(report.commits):
            out.append(f"    … and {report.commits_total - len(report.commits)} more")
        if report.commits:
            out.append(f"    (* touches {directory})")
        if report.dirty:
            out.append(f"Working tree: uncommitted changes under {directory}: {', '.join(report.dirty)}")
    for error in report.errors:
        out.append(f"error: {error}")
    if report.errors:
        return out
    if report.in_sync:
        out.append("In sync: the database matches the schedules directory.")
        return out
    parts = []
    if report.pending_keys:
        parts.append(f"{len(report.pending_keys)} change(s) not yet applied ({', '.join(report.pending_keys[:10])})")
    if report.drifted:
        parts.append(f"{report.drifted} drifted — changed outside reconciler ({', '.join(report.drifted_keys[:10])})")
    out.append(f"Out of sync: {'; '.join(parts)}. `schedules reconcile --dry-run {directory}` shows the plan.")
    return out


def run_status(
    directory: Path, db_url: str, settings: PlanSettings, fmt: str = "text", orchestrator: VersionChoice | None = None
) -> CommandResult:
    """The `status` command: exit code, stdout lines, stderr lines."""
    report = collect(directory, db_url, settings, orchestrator)
    if fmt == "json":
        return CommandResult(report.exit_code, [json.dumps(report.as_dict(), indent=2)])
    lines = render_text(report, directory)
    if report.errors:
        return CommandResult(
            report.exit_code,
            [x for x in lines if not x.startswith("error: ")],
            [x for x in lines if x.startswith("error: ")],
        )
    return CommandResult(report.exit_code, lines)
