"""`schedules reconcile`: validate the directory, plan against the database, and (unless --dry-run) apply.

Exit codes (DESIGN.md §3): 0 done / no changes, 1 error or refused, 2 changes pending with
--detailed-exitcode, 3 lock not taken or stale saved plan.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from reconciler import forked, orchestrator_versions, provenance, read_ahead, reads, render
from reconciler.apply_settings import ApplySettings, Provenance
from reconciler.commands.validate import HELPED_FILES, CheckedFile, FileHelper, format_problems, load_desired
from reconciler.database_url import DEFAULT_DB_URL, describe_db_error, redact, redact_url
from reconciler.exit_codes import CommandResult
from reconciler.heap import collector_paused
from reconciler.plan import Action, Change, Plan, PlanSettings, default_user_inputs, inputs_on_4x
from reconciler.planfile import plan_json, read_saved_plan, review_digest, saved_plan_text
from reconciler.problems import Problem
from reconciler.spec import DesiredSchedule


@dataclass
class ReconcileOptions:
    directory: Path = Path("schedules.d")
    db_url: str = DEFAULT_DB_URL
    dry_run: bool = False
    detailed_exitcode: bool = False
    fmt: str = "text"
    plan_out: Path | None = None
    plan_in: Path | None = None
    settings: PlanSettings = field(default_factory=PlanSettings)
    apply: ApplySettings = field(default_factory=ApplySettings)
    color: bool = False
    verbose: bool = False
    # Git awareness (see reconciler/provenance.py): refuse uncommitted schedule files unless allow_dirty;
    # with `base` (a git revision, dry run only) label each change "branch" or "elsewhere".
    allow_dirty: bool = False
    base: str | None = None
    # Apply only if the plan's review digest equals this one (the digest shown in the reviewed PR); exit 3 otherwise.
    expect_digest: str | None = None
    # Read symlinks whose target is outside the schedules directory (an error by default; see loader).
    follow_symlinks_outside: bool = False
    # Asked, with the plan, before an apply that deletes or overwrites anything (the CLI sets it on an
    # interactive terminal without --auto-approve); None applies as planned, as in CI.
    approve: Callable[[str, list[Change]], bool] | None = None
    # --orchestrator-version / --func / --force-func: which orchestrator-core generation the rows are for.
    orchestrator: orchestrator_versions.VersionChoice = field(default_factory=orchestrator_versions.VersionChoice)
    # A dry run on PostgreSQL reads the database in a forked process while the files parse (read_ahead.py);
    # False reads after parsing, in this process (the tests compare the two).
    read_ahead: bool = True


@dataclass
class Outcome(CommandResult):
    """What the command prints (stdout / stderr lines) and its exit code, and the plan behind it."""

    plan: Plan | None = None
    origins: dict[str, str] = field(default_factory=dict)  # key → "branch" | "elsewhere" (with --base)

    @property
    def digest(self) -> str | None:
        """review_digest(plan), computed when asked: the Action and tests ask, a terminal never does (it costs
        ~0.1 s at 10,000 changes)."""
        return review_digest(self.plan) if self.plan is not None else None


ORIGIN_LABELS = {provenance.BRANCH: "this branch", provenance.ELSEWHERE: "elsewhere"}


def origin_mark(origins: Mapping[str, str]) -> Callable[[Change], str] | None:
    """A `mark` for the renderers that labels each change with where it comes from (None without --base)."""
    if not origins:
        return None
    return lambda change: ORIGIN_LABELS.get(origins.get(change.key, ""), "")


def render_plan(
    plan: Plan, fmt: str, *, color: bool, verbose: bool, target: str, origins: Mapping[str, str] | None = None
) -> str:
    """The plan in the requested output format."""
    mark = origin_mark(origins or {})
    if fmt == "json":
        return json.dumps(plan_json(plan, origins), indent=2, default=str, ensure_ascii=False)
    if fmt == "markdown":
        return render.render_markdown(plan, mark=mark)
    if fmt == "github":
        return render.render_github(plan)
    # On a terminal, wrapped by field to its width; into a pipe or a CI log, one line per fact, whole, for grep.
    width = shutil.get_terminal_size((render.TEXT_WIDTH, 24)).columns if sys.stdout.isatty() else None
    text = render.render_text(plan, color=color, verbose=verbose, target=target, mark=mark, width=width)
    if origins:
        branch = sum(1 for o in origins.values() if o == provenance.BRANCH)
        text += (
            f"\nOrigin: {branch} change(s) from this branch, {len(origins) - branch} from elsewhere "
            "(drift in the database, or changes this branch did not make)."
        )
    return text


def _git_context(
    options: ReconcileOptions, desired: list[DesiredSchedule], lookup: provenance.RepoLookup
) -> tuple[provenance.SourceRepo | None, list[DesiredSchedule], provenance.GitProvenance | None]:
    """The repository of the schedules directory (`lookup`, started before the files were read), the schedules
    with repository-relative sources, and HEAD's provenance (commit, author, dirty schedule files). Outside
    git: (None, desired, None).

    Provenance is asked of git only when something records it (an apply, or a saved plan): a plain dry run
    needs the repository root alone, one `git rev-parse`."""
    source = lookup.result()
    if source is None:
        return None, desired, None
    recorded = not options.dry_run or options.plan_out is not None
    git = provenance.provenance_of(source) if recorded else None
    return source, provenance.with_repo_sources(desired, source), git


def _warning_lines(warnings: list[Problem], fmt: str) -> list[str]:
    # On stderr, so JSON and Markdown on stdout stay clean; annotations when GitHub reads them.
    if not warnings:
        return []
    return [format_problems(warnings, "github" if fmt == "github" else "text")]


class CompletedKeys:
    """The keys of fired `date` schedules, read the first time validation asks about one.

    Validation asks only about a schedule whose run_date has passed: most runs never read them.
    """

    def __init__(self, read: Callable[[], frozenset[str]]) -> None:
        self._read = read
        self._keys: frozenset[str] | None = None

    def __contains__(self, key: object) -> bool:
        if self._keys is None:
            self._keys = self._read()
        return key in self._keys


def _completed_keys(
    options: ReconcileOptions, settings: PlanSettings, reader: reads.Reader | None, engine: Any
) -> frozenset[str]:
    """Owned keys whose job row is gone: a fired `date` schedule among them is complete, not invalid.

    Read through the dry run's reader, or the apply's own engine (one engine, one connection, per run)."""
    try:
        if reader is not None:
            with reader.transaction():
                return reads.absent_keys(reader, settings.namespace)
        from reconciler import store

        # The apply's engine, except on SQLite (and in a dry run over a URL only SQLAlchemy reads): read-only,
        # a file that is not there yet is not created by reading it (files that fail validation leave none).
        own = engine is not None and not store.is_sqlite(engine)
        source = engine if own else store.connect(options.db_url, read_only=True)
        try:
            with source.connect() as conn, conn.begin():
                return store.absent_keys(conn, settings.namespace)
        finally:
            if not own:
                source.dispose()
    except Exception as exc:
        if not reads.is_database_error(exc):
            raise
        return frozenset()  # the database error is reported by the plan itself, one line


def _dry_run_plan(
    reader: reads.Reader | None,
    engine: Any,
    desired: list[DesiredSchedule],
    settings: PlanSettings,
    now: datetime,
    ahead: read_ahead.ReadResult | None = None,
) -> Plan:
    """The plan of a dry run: over the bare read-only connection when there is one (no SQLAlchemy, no apply
    code imported), else through SQLAlchemy's read-only engine (a URL only it understands). With `ahead`,
    from the snapshot read while the files parsed; `reader` then reads only the rows it cannot vouch for."""
    if reader is not None:
        snapshot = ahead.live() if ahead is not None else None
        with reader.transaction():
            return reads.dry_run_plan(reader, desired, settings, now, snapshot)
    from reconciler import apply as applier

    return applier.dry_run(engine, desired, settings, now)


def run(options: ReconcileOptions) -> Outcome:
    """The whole command, as data in and data out (the CLI only prints the outcome)."""
    now = datetime.now(UTC)
    target = redact_url(options.db_url)
    if options.base and not options.dry_run:
        return Outcome(1, err=["error: --base goes with --dry-run"])
    reader = reads.open_read_only(options.db_url, timeout=options.apply.lock_timeout) if options.dry_run else None
    engine = None if options.dry_run else _ApplyEngine(options)
    ahead = None
    if reader is not None and reader.postgres and options.read_ahead and options.plan_in is None:
        ahead = _ReadAheadStart(options) if read_ahead.enabled() else None
    # Without a read ahead on the other core, a child of its own checks files from the end (forked.Helpers).
    helpers = forked.Helpers(HELPED_FILES) if ahead is None else None
    try:
        return _run(options, reader, engine, now, target, ahead, helpers)
    finally:
        if ahead is not None:
            ahead.close()
        if helpers is not None:
            helpers.close()
        if reader is not None:
            reader.close()
        if engine is not None:
            engine.dispose()


class _ReadAheadStart:
    """A dry run's read ahead (read_ahead.py), forked once the schedule files are listed: the child reads the
    database, then checks files from the end while this process checks from the front."""

    def __init__(self, options: ReconcileOptions) -> None:
        self._options = options
        self._started: read_ahead.ReadAhead | None = None

    def share(self, shared: forked.BothEnds[CheckedFile]) -> Callable[[], dict[int, CheckedFile] | None] | None:
        """load_desired's `helper`: start the child; how to wait for the files it checked (None: no child)."""
        o = self._options
        helps = shared.count >= HELPED_FILES  # fewer files: done before the child has read
        started = read_ahead.start(
            o.db_url, o.orchestrator.version, o.apply.lock_timeout, files=shared if helps else None
        )
        self._started = started
        if started is None:
            return None
        shared.meanwhile = started.take  # the read and the child's files, unpickled while this process parses
        return started.helped if helps else None

    def result(self) -> read_ahead.ReadResult | None:
        """What the child read, or None (not started, or it gave nothing): then the dry run reads here."""
        return self._started.result() if self._started is not None else None

    def close(self) -> None:
        """End the child if it is still running."""
        if self._started is not None:
            self._started.close()


class _ApplyEngine:
    """The apply's one engine (it also reads the completed keys, if validation asks), made on first use.

    Made once the files' helper child has forked: importing SQLAlchemy and psycopg (~0.15 s) then happens
    while the child checks files, and the child is forked from the smaller process."""

    def __init__(self, options: ReconcileOptions) -> None:
        self._options = options
        self._engine: Any = None

    def get(self) -> Any:
        """The engine, made now if it was not yet."""
        if self._engine is None:
            from reconciler import store

            self._engine = store.connect(self._options.db_url, lock_timeout=self._options.apply.lock_timeout)
        return self._engine

    def dispose(self) -> None:
        """Close the engine's connections, if it was made."""
        if self._engine is not None:
            self._engine.dispose()


def _run(
    options: ReconcileOptions,
    reader: reads.Reader | None,
    engine: _ApplyEngine | None,
    now: datetime,
    target: str,
    ahead: _ReadAheadStart | None = None,
    helpers: forked.Helpers | None = None,
) -> Outcome:
    """`run`, given the read-only reader of a dry run (None: an apply, or a URL only SQLAlchemy reads) or the
    apply's engine, the dry run's read ahead if one was started, and the helpers that may share the files."""
    settings = options.settings
    expected = None
    warnings: list[Problem] = []  # validation warnings (DST, weekday numbering): shown with the plan
    source: provenance.SourceRepo | None = None
    git: provenance.GitProvenance | None = None
    try:
        if options.plan_in is not None:
            try:
                saved_plan = read_saved_plan(options.plan_in.read_text())
                desired, settings = saved_plan.desired, saved_plan.settings
                expected, git = saved_plan.fingerprint, saved_plan.provenance
            except (OSError, ValueError, KeyError, TypeError) as exc:
                return Outcome(1, err=[f"error: cannot read saved plan {options.plan_in}: {exc}"])
        else:
            lookup = provenance.RepoLookup(options.directory)  # git answers while the files parse
            try:
                loaded = load_desired(
                    options.directory,
                    now=now,
                    completed=CompletedKeys(
                        lambda: _completed_keys(options, settings, reader, engine.get() if engine else None)
                    ),
                    follow_symlinks_outside=options.follow_symlinks_outside,
                    helper=ahead.share if ahead is not None else _sharing(helpers, engine),
                    prepare=_digest_parts,
                )
                if not loaded.ok:
                    # A broken file must never look like "these schedules were removed": abort before the database.
                    problems = [p for p in loaded.problems if p.is_error]
                    return Outcome(
                        1, err=[format_problems(problems, "text"), "error: validation failed; nothing planned"]
                    )
                source, desired, git = _git_context(options, loaded.schedules, lookup)
            finally:
                lookup.close()
            if settings.source is None:
                settings = replace(settings, source=provenance.owner_source(options.directory, source))
            warnings = [p for p in loaded.problems if not p.is_error]
    except provenance.GitError as exc:
        return Outcome(1, err=[f"error: {exc}"])
    if options.base and source is None:
        return Outcome(1, err=[f"error: --base needs a git repository: {options.directory} is not inside one"])
    if not options.dry_run and git is not None and git.dirty and not options.allow_dirty:
        # The ledger would name a commit that does not hold what was applied.
        return Outcome(1, err=[provenance.dirty_message(options.directory, git.dirty)])
    if not options.dry_run and git is not None and options.apply.provenance.commit is None:
        options = replace(options, apply=replace(options.apply, provenance=Provenance(git.recorded_commit, git.author)))
    declared = _Declared(desired, settings, expected, warnings, source, git)
    with collector_paused():
        if options.dry_run:
            return _dry_run(options, reader, declared, now, target, ahead)
        assert engine is not None, "an apply has its engine"
        return _apply(options, engine.get(), declared, now, target)


def _digest_parts(desired: DesiredSchedule) -> str:
    """load_desired's `prepare`: the schedule's `row_parts_repr`, which the plan's digest needs (~4 µs a
    schedule), made where its file is checked; a helper child's cached string crosses with the schedule."""
    return desired.row_parts_repr


def _sharing(helpers: forked.Helpers | None, engine: _ApplyEngine | None) -> FileHelper | None:
    """load_desired's `helper`: fork the child that checks files from the end, then make the apply's engine
    while it does (see _ApplyEngine)."""
    if helpers is None:
        return None

    def share(shared: forked.BothEnds[CheckedFile]) -> Callable[[], dict[int, CheckedFile] | None] | None:
        wait = helpers.back_of(shared)
        if engine is not None:
            engine.get()
        return wait

    return share


@dataclass(frozen=True)
class _Declared:
    """What a run plans from: the files' schedules (or a saved plan's), and what came with them."""

    desired: list[DesiredSchedule]
    settings: PlanSettings
    expected: str | None  # the fingerprint a saved plan was made against
    warnings: list[Problem]  # validation warnings (DST, weekday numbering): shown with the plan
    source: provenance.SourceRepo | None
    git: provenance.GitProvenance | None


def _dry_run(
    options: ReconcileOptions,
    reader: reads.Reader | None,
    declared: _Declared,
    now: datetime,
    target: str,
    ahead: _ReadAheadStart | None,
) -> Outcome:
    """The plan, shown (and saved with --out), nothing written."""
    desired, settings, expected, warnings = declared.desired, declared.settings, declared.expected, declared.warnings
    source, git = declared.source, declared.git
    read_only = None
    if reader is None:  # a URL only SQLAlchemy reads; a URL it cannot read either fails here, as its own error
        from reconciler import store

        read_only = store.connect(options.db_url, lock_timeout=options.apply.lock_timeout, read_only=True)
    try:
        fetched = ahead.result() if ahead is not None else None  # None: read here, after parsing
        if fetched is not None:
            settled = _settled(options, desired, _given(fetched, settings, options.orchestrator))
        else:
            settled = _settled(options, desired, _detecting(reader, read_only, settings, options.orchestrator))
        if isinstance(settled, Outcome):
            return settled
        settings = settled
        plan = _dry_run_plan(reader, read_only, desired, settings, now, fetched)
    except read_ahead.DatabaseReadFailed as exc:
        return Outcome(1, err=[f"error: {exc}"])
    except Exception as exc:  # the database edge: one clear line, never a traceback
        if not reads.is_database_error(exc):
            raise
        return Outcome(1, err=[f"error: database: {describe_db_error(exc)}"])
    finally:
        if read_only is not None:
            read_only.dispose()
    if expected and plan.fingerprint != expected:
        return Outcome(3, err=["error: stale plan: the database changed since the plan was made"])
    origins: dict[str, str] = {}
    if options.base and source is not None:
        try:
            origins = provenance.branch_origins(source, options.base, plan, desired)
        except provenance.GitError as exc:
            return Outcome(1, err=[f"error: {exc}"])
    out = [
        render_plan(
            plan,
            options.fmt,
            color=options.color,
            verbose=options.verbose,
            target=target,
            origins=origins,
        )
    ]
    err: list[str] = []
    if options.plan_out is not None:
        options.plan_out.write_text(saved_plan_text(plan, desired, settings, git))
        saved = f"Saved the plan to {options.plan_out}; apply it with --plan {options.plan_out}"
        # JSON and Markdown are piped into files and comments: keep the note out of them.
        (err if options.fmt in ("json", "markdown") else out).append(saved)
    code = 1 if plan.errors else (2 if options.detailed_exitcode and plan.has_changes else 0)
    err = _warning_lines(warnings, options.fmt) + err
    return Outcome(code, out=out, err=err, plan=plan, origins=origins)


def _apply(options: ReconcileOptions, engine: Any, declared: _Declared, now: datetime, target: str) -> Outcome:
    """Plan under the lock and write, in one transaction (asking first when `options.approve` says so)."""
    from reconciler import apply as applier

    desired, settings, expected, warnings = declared.desired, declared.settings, declared.expected, declared.warnings

    try:
        settled = _settled(options, desired, _detecting(None, engine, settings, options.orchestrator))
        if isinstance(settled, Outcome):
            return settled
        settings = settled
        apply_settings = options.apply
        if options.expect_digest:
            checked = _check_reviewed(engine, desired, settings, options, expected, now)
            if isinstance(checked, Outcome):
                return checked
            expected = checked
        approved = False
        if options.approve is not None and options.plan_in is None and not options.expect_digest:
            shown = applier.dry_run(engine, desired, settings, now)
            risky = changes_needing_approval(shown)
            if risky and not shown.errors:
                text = render_plan(shown, "text", color=options.color, verbose=options.verbose, target=target)
                if not options.approve(text, risky):
                    return Outcome(1, err=["Apply cancelled: nothing was applied."], plan=shown)
                # Apply exactly what was approved: if the database moved meanwhile, the apply is refused (exit 3).
                expected, approved = shown.fingerprint, True
        if expected:
            apply_settings = replace(apply_settings, expected_fingerprint=expected)

        def as_text(plan: Plan) -> str:
            return render_plan(plan, options.fmt, color=options.color, verbose=options.verbose, target=target)

        try:
            result = applier.apply(engine, desired, settings, apply_settings, render=None if approved else as_text)
        except applier.ApplyError as exc:
            return Outcome(exc.exit_code, err=[f"error: {redact(str(exc), options.apply.redis_url)}"])
        # [] when approved: the plan was shown above the question
        out = [] if approved else [result.rendered if result.rendered is not None else as_text(result.plan)]
        if options.fmt != "json":
            out.append("")
            applied = len(result.plan.pending)
            out.append(f"Applied {applied} change(s) in one transaction." if applied else "Nothing to apply.")
            if result.waited_seconds:
                out.append(f"Waited {result.waited_seconds:.2f}s for rows a scheduler was running.")
            out.append(result.woken)
            out.append(
                "Verified: the database now matches the files."
                if result.verified
                else f"WARNING: {result.remaining} change(s) still pending after apply"
            )
        return Outcome(
            0 if result.verified else 1,
            out=out,
            err=_warning_lines(warnings, options.fmt),
            plan=result.plan,
        )
    except Exception as exc:  # the database edge: one clear line, never a traceback
        if not reads.is_database_error(exc):
            raise
        return Outcome(1, err=[f"error: database: {describe_db_error(exc)}"])


def _detecting(
    reader: reads.Reader | None, engine: Any, settings: PlanSettings, choice: orchestrator_versions.VersionChoice
) -> Callable[[], PlanSettings]:
    """`settings` settled for the database's generation, detected through `reader` (else `engine`) when called."""

    def settle() -> PlanSettings:
        if reader is not None:
            with reader.transaction():
                return orchestrator_versions.settle(reader, settings, choice)
        with engine.connect() as conn:
            return orchestrator_versions.settle(conn, settings, choice)

    return settle


def _given(
    fetched: read_ahead.ReadResult, settings: PlanSettings, choice: orchestrator_versions.VersionChoice
) -> Callable[[], PlanSettings]:
    """`settings` settled for the generation the read ahead detected (or its error raised), when called."""
    return lambda: orchestrator_versions.settled_for(fetched.detected(), settings, choice)


def _settled(
    options: ReconcileOptions, desired: Sequence[DesiredSchedule], settle: Callable[[], PlanSettings]
) -> PlanSettings | Outcome:
    """`settle()`: settings for the database's orchestrator-core generation (read-only, before anything is
    prepared), or the refusal: an undecidable generation, a --func it would not run, user_inputs 4.x cannot
    pass on."""
    try:
        settings = settle()
    except orchestrator_versions.OrchestratorVersionError as exc:
        return Outcome(1, err=[f"error: {exc}"])
    if settings.generation < 5:  # a 4.x database gets no row its scheduler task cannot run
        refused = [inputs_on_4x(d) for d in desired if not default_user_inputs(d.user_inputs)]
        if refused:
            return Outcome(1, err=[f"error: {line}" for line in refused])
    return settings


def changes_needing_approval(plan: Plan) -> list[Change]:
    """The changes a person confirms on a terminal: what removes or overwrites something that exists.

    Deletes, adoptions (an API-created job rewritten from YAML) and corrections of drift (a change made
    outside the reconciler, undone). Creates and in-place updates of our own rows go through unasked.
    """
    return [c for c in plan.pending if c.action in (Action.DELETE, Action.ADOPT) or c.drift]


def ask_on_terminal(plan_text: str, risky: list[Change]) -> bool:
    """Terraform's convention: show the plan, ask, and only `yes` proceeds (end of input is a no)."""
    keys = ", ".join(c.key for c in risky[:10]) + (", …" if len(risky) > 10 else "")
    typer.echo(plan_text)
    typer.echo("")
    typer.echo(f"Do you want to apply this plan? It deletes or overwrites {len(risky)} schedule(s): {keys}.")
    typer.echo("  Only 'yes' will be accepted to approve (--auto-approve skips this question).")
    typer.echo("")
    try:
        answer = input("  Enter a value: ")
    except EOFError:
        return False
    typer.echo("")
    return answer.strip() == "yes"


def _check_reviewed(
    engine: Any,
    desired: list[DesiredSchedule],
    settings: PlanSettings,
    options: ReconcileOptions,
    expected: str | None,
    now: datetime,
) -> str | Outcome:
    """--expect-digest: plan first and compare with the reviewed digest; the fingerprint of that plan
    then binds the apply (re-planned under the lock), so nothing can slip in between check and write.

    Returns the fingerprint to apply under, or the refusal.
    """
    from reconciler import apply as applier

    try:
        applier.prepare(engine, options.apply.lock_timeout)  # an empty embedded database: plan what apply will see
    except applier.ApplyError as exc:
        return Outcome(exc.exit_code, err=[f"error: {exc}"])
    plan = applier.dry_run(engine, desired, settings, now)
    if expected and plan.fingerprint != expected:
        return Outcome(3, err=["error: stale plan: the database changed since the plan was made"])
    digest = review_digest(plan)
    reviewed = options.expect_digest or ""
    if digest != reviewed:
        target = redact_url(options.db_url)
        shown = render_plan(plan, options.fmt, color=options.color, verbose=options.verbose, target=target)
        return Outcome(
            3,
            out=[shown],
            err=[
                f"error: the plan is not the reviewed one (digest {digest[:16]}, reviewed "
                f"{reviewed[:16]}): the database drifted or other changes landed since the review; "
                "nothing applied"
            ],
            plan=plan,
        )
    return plan.fingerprint
