"""The `schedules` command line: options in, one call, exit code out.

Mountable in an orchestrator-core project's `main.py`::

    from reconciler.cli import app as schedules_app
    core_app.add_typer(schedules_app, name="schedules")

Heavy modules (SQLAlchemy, APScheduler) are imported inside the commands, so `--help` stays fast.
"""

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from reconciler.exit_codes import CommandResult, HandledTyper, fail, for_exception
from reconciler.heap import end_process, tune_gc

# Every command goes through reconciler.exit_codes (one line + exit code per error), mounted or not.
app = HandledTyper(
    name="schedules",
    help="GitOps for orchestrator-core schedules: YAML in schedules.d/ → validated, planned, applied.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Format(StrEnum):
    """reconcile's formats: the plan for a terminal, a machine, a pull request comment, GitHub annotations."""

    text = "text"
    json = "json"
    markdown = "markdown"
    github = "github"


class ValidateFormat(StrEnum):
    """validate's formats: problems as text, JSON, or GitHub annotations on the files."""

    text = "text"
    json = "json"
    github = "github"


class StatusFormat(StrEnum):
    text = "text"
    json = "json"


class TableFormat(StrEnum):
    """show-schedule's formats."""

    text = "text"
    json = "json"
    markdown = "markdown"


def _show_version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        shown = version("reconciler")
    except PackageNotFoundError:  # run from a source tree that was never installed
        shown = "unknown (not installed)"
    typer.echo(f"schedules (reconciler) {shown}")
    raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_show_version, help="Show the version and exit."),
    ] = False,
) -> None:
    """GitOps for orchestrator-core schedules: YAML in schedules.d/ → validated, planned, applied."""


DirectoryArg = Annotated[
    Path, typer.Argument(help="The schedules directory (every *.yaml / *.yml below it).", show_default=True)
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL; default: $DATABASE_URI, else the embedded SQLite file schedules.db at the root of the "
        "schedules directory's git repository (outside git: beside the directory), whatever the current directory.",
        show_default=False,
    ),
]
FormatOption = Annotated[Format, typer.Option("--format", help="Output format.")]
NamespaceOption = Annotated[
    str,
    typer.Option(
        "--namespace",
        envvar="RECONCILER_NAMESPACE",
        help="Owner namespace: new ids are uuid5(namespace, key); two repos must use different ones.",
    ),
]
SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source",
        envvar="RECONCILER_SOURCE",
        help="Who applies (recorded per schedule in the ledger); default: <git remote or repository root>:<dir>, "
        "outside git the directory's absolute path.",
        show_default=False,
    ),
]
FollowOutsideOption = Annotated[
    bool,
    typer.Option(
        "--follow-symlinks-outside",
        help="Read symlinks whose target is outside the schedules directory (an error otherwise).",
    ),
]
FuncOption = Annotated[
    str | None,
    typer.Option(
        "--func",
        help="The job function reference written into job_state (default: the one the detected orchestrator-core "
        "generation runs; another generation's is refused without --force-func).",
    ),
]
ForceFuncOption = Annotated[
    bool,
    typer.Option("--force-func", help="Write --func even though the detected orchestrator-core would not run it."),
]
OrchestratorVersionOption = Annotated[
    str | None,
    typer.Option(
        "--orchestrator-version",
        envvar="ORCHESTRATOR_VERSION",
        help="The orchestrator-core version of the database (e.g. 4.8 or 5.5), when detection from the database "
        "(alembic_version, linker table, engine_settings, its own job rows) cannot decide.",
        show_default=False,
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        envvar="RECONCILER_TIMEOUT",
        min=0.0,
        help="Give up when the database has not answered within this many seconds: roll back, one line, exit 1 "
        "(each connection attempt: 10 s). 0: no limit.",
    ),
]
DEFAULT_TIMEOUT = 300.0  # deadline.DEFAULT_TIMEOUT, repeated here so --help imports nothing


@app.command()
def validate(
    directory: DirectoryArg = Path("schedules.d"),
    db: DbOption = None,
    fmt: Annotated[ValidateFormat, typer.Option("--format", help="Output format.")] = ValidateFormat.text,
    follow_symlinks_outside: FollowOutsideOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    orchestrator_version: OrchestratorVersionOption = None,
) -> CommandResult:
    """Check schedule files: syntax, schema, triggers, time zones, DST.

    No database needed; --db adds the workflow checks, and those of the database's orchestrator-core version.
    """
    from reconciler.commands.validate import run_validate
    from reconciler.deadline import bounded

    with bounded(timeout if db else 0):
        return run_validate(
            directory,
            db_url=db,
            fmt=fmt.value,
            follow_symlinks_outside=follow_symlinks_outside,
            orchestrator_version=orchestrator_version,
        )


@app.command()
def reconcile(
    directory: DirectoryArg = Path("schedules.d"),
    db: DbOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; write nothing.")] = False,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="With --dry-run: exit 2 when there are changes.")
    ] = False,
    fmt: FormatOption = Format.text,
    plan_out: Annotated[Path | None, typer.Option("--plan-out", help="Save the plan (with --dry-run).")] = None,
    plan_in: Annotated[
        Path | None,
        typer.Option("--plan", help="Apply exactly this saved plan; exit 3 if the database changed."),
    ] = None,
    namespace: NamespaceOption = "default",
    func: FuncOption = None,
    force_func: ForceFuncOption = False,
    orchestrator_version: OrchestratorVersionOption = None,
    max_deletes: Annotated[int, typer.Option("--max-deletes", help="Refuse plans deleting more than this.")] = 10,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Allow an empty directory to delete every owned schedule.")
    ] = False,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", help="Seconds to wait for another apply.")] = 30.0,
    guard_seconds: Annotated[
        float,
        typer.Option(
            "--guard-seconds",
            min=0.0,
            help="Upper bound of the hold rule: a row due this long ago that no scheduler moved is overdue and "
            "written; rows a scheduler may be running (from 0.1 s before they are due until it moved them) wait.",
        ),
    ] = 10.0,
    redis: Annotated[
        str | None,
        typer.Option(
            "--redis",
            envvar="CACHE_URI",
            help="Redis URL of orchestrator-core, to wake its scheduler.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also list unchanged schedules.")] = False,
    allow_dirty: Annotated[
        bool,
        typer.Option("--allow-dirty", help="Apply even with uncommitted schedule files (recorded as <sha>-dirty)."),
    ] = False,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="With --dry-run: a git revision (e.g. origin/main); mark each change as made by this branch "
            "or elsewhere (drift, other branches).",
            show_default=False,
        ),
    ] = None,
    expect_digest: Annotated[
        str | None,
        typer.Option(
            "--expect-digest",
            help="Apply only if the plan's review digest equals this one (from the reviewed PR); else exit 3.",
            show_default=False,
        ),
    ] = None,
    follow_symlinks_outside: FollowOutsideOption = False,
    auto_approve: Annotated[
        bool,
        typer.Option(
            "--auto-approve",
            help="Apply without asking. On an interactive terminal, a plan that deletes or overwrites anything "
            "is shown and applied only after you type 'yes'; without a terminal (CI) nothing is asked.",
        ),
    ] = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    source: SourceOption = None,
    adopt_from: Annotated[
        str | None,
        typer.Option(
            "--adopt-from",
            help="Take over the schedules another source owns in this namespace (the plan shows each as adopt).",
            show_default=False,
        ),
    ] = None,
) -> CommandResult:
    """Plan (--dry-run) or apply schedules.d/ to the database, in one transaction."""
    from reconciler import database_url
    from reconciler.apply_settings import ApplySettings
    from reconciler.commands.reconcile import ReconcileOptions, ask_on_terminal, run
    from reconciler.orchestrator_versions import VersionChoice
    from reconciler.plan import PlanSettings
    from reconciler.terminal import colour_wanted

    if plan_out is not None and not dry_run:
        fail("--plan-out goes with --dry-run (apply the saved plan with --plan)")
    if plan_in is not None and dry_run:
        fail("--plan applies a saved plan; drop --dry-run")
    if base is not None and not dry_run:
        fail("--base goes with --dry-run")
    if expect_digest is not None and dry_run:
        fail("--expect-digest guards an apply; drop --dry-run")
    options = ReconcileOptions(
        directory=directory,
        db_url=database_url.resolve_db_url(db, directory),
        dry_run=dry_run,
        detailed_exitcode=detailed_exitcode,
        fmt=fmt.value,
        plan_out=plan_out,
        plan_in=plan_in,
        settings=PlanSettings(
            namespace=namespace,
            max_deletes=max_deletes,
            allow_empty=allow_empty,
            source=source,
            adopt_from=adopt_from,
        ),
        orchestrator=VersionChoice(orchestrator_version, func, force_func),
        apply=ApplySettings(guard_seconds=guard_seconds, lock_timeout=lock_timeout, redis_url=redis),
        color=colour_wanted(sys.stdout),
        verbose=verbose,
        allow_dirty=allow_dirty,
        base=base,
        expect_digest=expect_digest,
        follow_symlinks_outside=follow_symlinks_outside,
        approve=None if auto_approve or not (sys.stdin.isatty() and sys.stdout.isatty()) else ask_on_terminal,
    )
    from reconciler.deadline import bounded

    with bounded(timeout):
        return run(options)


@app.command()
def status(
    directory: DirectoryArg = Path("schedules.d"),
    db: DbOption = None,
    namespace: NamespaceOption = "default",
    func: FuncOption = None,
    force_func: ForceFuncOption = False,
    orchestrator_version: OrchestratorVersionOption = None,
    fmt: Annotated[StatusFormat, typer.Option("--format", help="Output format.")] = StatusFormat.text,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> CommandResult:
    """Last applied commit vs HEAD, and whether the database drifted. Read-only."""
    from reconciler import database_url
    from reconciler.commands.status import run_status
    from reconciler.deadline import bounded
    from reconciler.orchestrator_versions import VersionChoice
    from reconciler.plan import PlanSettings

    shown = fmt.value

    choice = VersionChoice(orchestrator_version, func, force_func)
    with bounded(timeout):
        return run_status(
            directory, database_url.resolve_db_url(db, directory), PlanSettings(namespace=namespace), shown, choice
        )


@app.command("health")
def health(
    directory: Annotated[
        Path,
        typer.Argument(help="The schedules directory: triggers of managed `date` schedules that fired (if it exists)."),
    ] = Path("schedules.d"),
    db: DbOption = None,
    since: Annotated[str, typer.Option("--since", help="The window judged, back from now: 90s, 15m, 24h, 7d.")] = "24h",
    until: Annotated[
        str | None,
        typer.Option("--until", help="End the window here instead of now (ISO 8601, e.g. 2026-06-10T00:00Z)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text, json, markdown or prometheus.")] = "text",
    latency: Annotated[
        float, typer.Option("--latency", help="Seconds after misfire grace a scheduled start may still appear.")
    ] = 10.0,
    serve: Annotated[
        str | None, typer.Option("--serve", help="Serve /metrics on HOST:PORT (e.g. 127.0.0.1:9108) until stopped.")
    ] = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> CommandResult | int:
    """Expected vs started runs per schedule: missed, failed, overdue; engine paused; scheduler liveness.

    Read-only.
    """
    from datetime import timedelta

    from reconciler import database_url
    from reconciler.commands.health import HealthOptions, parse_duration, parse_instant, run_health, serve_health
    from reconciler.health.core import Tolerance

    options = HealthOptions(
        db_url=database_url.resolve_db_url(db, directory),
        since=parse_duration(since),
        directory=directory,
        fmt=fmt,
        tolerance=Tolerance(latency=timedelta(seconds=max(latency, 0.0))),
        until=parse_instant(until) if until is not None else None,
    )
    if serve is not None:
        return serve_health(options, serve)  # a server: not bounded by --timeout
    from reconciler.deadline import bounded

    with bounded(timeout):
        return run_health(options)


@app.command("load-initial-schedule")
def load_initial_schedule(
    sources: Annotated[
        list[Path] | None,
        typer.Option("--from", help="Python files or packages with legacy decorators (read with ast, never run)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the YAML files.")] = Path("schedules.d"),
    no_core: Annotated[bool, typer.Option("--no-core", help="Leave out core's initial schedules.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files that differ.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if the files would change.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if anything could not be migrated.")] = False,
    orchestrator_version: Annotated[
        str | None,
        typer.Option(
            "--orchestrator-version",
            help="The orchestrator-core version the decorators ran on (e.g. 4.2, 4.8, 5.5): up to 4.3 "
            "@scheduler(...) meant the `schedule` package, from 4.4 APScheduler. Default: what the sources pin.",
            show_default=False,
        ),
    ] = None,
) -> CommandResult:
    """Write YAML for core's initial schedules and for legacy @scheduler decorators found in --from."""
    from reconciler.commands.load_initial import run

    return run(
        sources or (),
        out,
        include_core=not no_core,
        force=force,
        check=check,
        strict=strict,
        orchestrator_version=orchestrator_version,
    )


@app.command("import")
def import_schedules(
    out: Annotated[Path, typer.Option("--out", help="The schedules directory to write into.")] = Path("schedules.d"),
    db: DbOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the file if it differs.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if the file would change.")] = False,
    func: Annotated[
        str | None,
        typer.Option("--func", help="The job function that marks API-created jobs (default: orchestrator-core's)."),
    ] = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> CommandResult:
    """Write imported.yaml for jobs created through orchestrator-core's API/UI; reconcile then adopts them."""
    from reconciler import database_url
    from reconciler.commands.import_jobs import run
    from reconciler.deadline import bounded
    from reconciler.jobstate import ORCHESTRATOR_FUNC

    with bounded(timeout):
        return run(out, database_url.resolve_db_url(db, out), force=force, check=check, func=func or ORCHESTRATOR_FUNC)


STARTER_HELP = (
    "How workflows are started: auto (default) = orchestrator-core in this process when it is importable "
    "and configured (run as `python main.py schedules run`), else its REST API when --orchestrator-url is set, "
    "else an error; 'orchestrator'; 'rest'; or 'command:ARGV', a local command that reads "
    '{"workflow_name", "user_inputs", "schedule_id", "scheduled_time", "key"} as JSON on stdin (exit 0 = started).'
)
StarterOption = Annotated[str, typer.Option("--starter", envvar="RECONCILER_STARTER", help=STARTER_HELP)]
OrchestratorUrlOption = Annotated[
    str | None,
    typer.Option(
        "--orchestrator-url",
        envvar="ORCHESTRATOR_URL",
        help="orchestrator-core's base URL for the REST starter (POST {url}/api/processes/{workflow_name}).",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="ORCHESTRATOR_TOKEN",
        help="Bearer token for the REST starter (prefer the env var; it is never printed).",
        show_default=False,
    ),
]
StartTimeoutOption = Annotated[
    float, typer.Option("--start-timeout", help="Seconds a REST call or start command may take.")
]
RunnableFuncOption = Annotated[
    str | None,
    typer.Option(
        "--func",
        help="Also start jobs whose func is this reference (as written by `reconcile --func`); "
        "orchestrator-core's scheduler task always is.",
        show_default=False,
    ),
]


@app.command("run")
def run_command(
    db: DbOption = None,
    starter: StarterOption = "auto",
    orchestrator_url: OrchestratorUrlOption = None,
    token: TokenOption = None,
    func: RunnableFuncOption = None,
    lease_seconds: Annotated[
        float,
        typer.Option("--lease-seconds", help="SQLite: a standby takes over this long after the leader died."),
    ] = 10.0,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", help="Seconds between change checks and standby lock attempts.")
    ] = 0.5,
    workers: Annotated[int, typer.Option("--workers", help="Starts that may run at the same time.")] = 4,
    max_wait: Annotated[
        float, typer.Option("--max-wait", help="Re-read the table at least this often, even without a change signal.")
    ] = 10.0,
    start_timeout: StartTimeoutOption = 60.0,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            help="auto: one readable line per event on a terminal, JSON lines otherwise; or json, or console.",
        ),
    ] = "auto",
    metrics: Annotated[
        str | None,
        typer.Option("--metrics", help="Serve /metrics on HOST:PORT: start counters, lateness, health gauges."),
    ] = None,
) -> int:
    """Run the schedules: an APScheduler runner on the same tables, one active per database.

    A second runner waits as standby and takes over when the leader dies. Changes made by `reconcile`
    are picked up within a second (PostgreSQL LISTEN/NOTIFY, SQLite polling). SIGTERM/SIGINT stop it
    gracefully: no new starts, starts under way finish, exit 0. Logs are structured, one line per start.
    """
    from reconciler import database_url
    from reconciler.runner.runner import RunnerOptions, run_runner, runnable
    from reconciler.runner.starters import StarterConfigError, StarterOptions, make_starter
    from reconciler.terminal import human_logs_wanted

    if log_format not in ("auto", "json", "console"):
        fail("--log-format is auto, json or console")
    if log_format == "auto":
        log_format = "console" if human_logs_wanted(sys.stderr) else "json"
    try:
        chosen = make_starter(StarterOptions(starter, orchestrator_url, token, start_timeout))
    except StarterConfigError as exc:
        fail(database_url.redact(str(exc), token))
    options = RunnerOptions(
        db_url=database_url.resolve_db_url(db),
        runnable_funcs=runnable([func] if func else None),
        lease_seconds=lease_seconds,
        poll_interval=poll_interval,
        workers=workers,
        max_wait=max_wait,
        metrics_listen=metrics,
    )
    return run_runner(options, chosen, log_format=log_format)


@app.command("show-schedule")
def show_schedule(
    directory: Annotated[
        Path,
        typer.Argument(help="The schedules directory, to tell drift from pending changes (used when it exists)."),
    ] = Path("schedules.d"),
    db: DbOption = None,
    namespace: NamespaceOption = "default",
    func: FuncOption = None,
    force_func: ForceFuncOption = False,
    orchestrator_version: OrchestratorVersionOption = None,
    fmt: Annotated[TableFormat, typer.Option("--format", help="Output format.")] = TableFormat.text,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Every column (name, workflow, source, drift, applied), any width.")
    ] = False,
) -> CommandResult:
    """Table of all jobs: key, trigger in words, next run (in the schedule's zone, UTC beside it).

    Below 120 columns the table keeps those three; -v or a wider terminal adds name, workflow, source
    (gitops / api / decorator / unreadable), drift and the applied commit. Read-only.
    """
    from reconciler import database_url
    from reconciler.commands.show_schedule import run_show_schedule
    from reconciler.deadline import bounded
    from reconciler.orchestrator_versions import VersionChoice

    with bounded(timeout):
        return run_show_schedule(
            database_url.resolve_db_url(db, directory),
            directory=directory,
            fmt=fmt.value,
            namespace=namespace,
            verbose=verbose,
            orchestrator=VersionChoice(orchestrator_version, func, force_func),
        )


@app.command("force")
def force_command(
    key: Annotated[str, typer.Argument(help="A schedule key (from the ledger) or a job id.")],
    db: DbOption = None,
    starter: StarterOption = "auto",
    orchestrator_url: OrchestratorUrlOption = None,
    token: TokenOption = None,
    namespace: NamespaceOption = "default",
    func: RunnableFuncOption = None,
    start_timeout: StartTimeoutOption = 60.0,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> CommandResult:
    """Start that schedule's workflow now, through the same starter as `run`."""
    from reconciler import database_url
    from reconciler.commands.force import run_force
    from reconciler.deadline import bounded
    from reconciler.runner.runner import runnable
    from reconciler.runner.starters import StarterOptions

    with bounded(timeout):
        return run_force(
            database_url.resolve_db_url(db),
            key,
            StarterOptions(starter, orchestrator_url, token, start_timeout),
            namespace=namespace,
            funcs=runnable([func] if func else None),
        )


@app.command("schema")
def schema_command(
    write: Annotated[
        Path | None,
        typer.Option(
            "--write",
            help="Write schedules.schema.json into this directory (e.g. `schema` at the repository root, where the "
            "modeline of generated files points), instead of printing it.",
            show_default=False,
        ),
    ] = None,
) -> CommandResult:
    """The JSON Schema of a schedule file, as this version validates it (for editors: yaml-language-server)."""
    from reconciler.schema import schema_text
    from reconciler.yaml_writer import SCHEMA_FILENAME

    text = schema_text()
    if write is None:
        return CommandResult(0, [text.rstrip("\n")])
    write.mkdir(parents=True, exist_ok=True)
    target = write / SCHEMA_FILENAME
    target.write_text(text)
    return CommandResult(0, [f"wrote {target}"])


def main() -> NoReturn:
    """Console-script entry point: a clear one-line error instead of a traceback."""
    tune_gc()
    try:
        _main()
    except SystemExit as stop:
        end_process(stop)
    end_process(SystemExit(0))


def _main() -> None:
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise SystemExit(130) from None
    except Exception as exc:  # outside any command (the app's own set-up): the same map
        if os.environ.get("RECONCILER_DEBUG"):
            raise
        code, line = for_exception(exc)
        typer.echo(line, err=True)
        raise SystemExit(code) from None
