"""The `schedules` command line: options in, one call, exit code out.

Mountable in an orchestrator-core project's `main.py`::

    from reconciler.cli import app as schedules_app
    core_app.add_typer(schedules_app, name="schedules")

Heavy modules (SQLAlchemy, APScheduler) are imported inside the commands, so `--help` stays fast.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(
    name="schedules",
    help="GitOps for orchestrator-core schedules: YAML in schedules.d/ → validated, planned, applied.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Format(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    github = "github"


DirectoryArg = Annotated[
    Path, typer.Argument(help="The schedules directory (every *.yaml / *.yml below it).", show_default=True)
]
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL; default: $DATABASE_URI, else sqlite:///schedules.db.", show_default=False),
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
FuncOption = Annotated[
    str | None,
    typer.Option("--func", help="The job function reference written into job_state (default: orchestrator-core's)."),
]


def _finish(code: int, out: list[str], err: list[str]) -> NoReturn:
    for line in out:
        typer.echo(line)
    for line in err:
        typer.echo(line, err=True)
    raise typer.Exit(code)


@app.command()
def validate(
    directory: DirectoryArg = Path("schedules.d"),
    db: DbOption = None,
    fmt: FormatOption = Format.text,
) -> None:
    """Check schedule files: syntax, schema, triggers, time zones, DST.

    No database needed; --db adds the workflow checks.
    """
    from reconciler.validate import run_validate

    code, out, err = run_validate(directory, db_url=db, fmt=fmt.value)
    _finish(code, out, err)


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
    max_deletes: Annotated[int, typer.Option("--max-deletes", help="Refuse plans deleting more than this.")] = 10,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Allow an empty directory to delete every owned schedule.")
    ] = False,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", help="Seconds to wait for another apply.")] = 30.0,
    guard_seconds: Annotated[
        float, typer.Option("--guard-seconds", help="Never rewrite a job due within this many seconds.")
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
) -> None:
    """Plan (--dry-run) or apply schedules.d/ to the database, in one transaction."""
    from reconciler import store
    from reconciler.apply import ApplySettings
    from reconciler.jobstate import ORCHESTRATOR_FUNC
    from reconciler.plan import PlanSettings
    from reconciler.reconcile import ReconcileOptions, run

    if plan_out is not None and not dry_run:
        _finish(1, [], ["error: --plan-out goes with --dry-run (apply the saved plan with --plan)"])
    if plan_in is not None and dry_run:
        _finish(1, [], ["error: --plan applies a saved plan; drop --dry-run"])
    options = ReconcileOptions(
        directory=directory,
        db_url=store.resolve_db_url(db),
        dry_run=dry_run,
        detailed_exitcode=detailed_exitcode,
        fmt=fmt.value,
        plan_out=plan_out,
        plan_in=plan_in,
        settings=PlanSettings(
            namespace=namespace,
            func=func or ORCHESTRATOR_FUNC,
            max_deletes=max_deletes,
            allow_empty=allow_empty,
        ),
        apply=ApplySettings(guard_seconds=guard_seconds, lock_timeout=lock_timeout, redis_url=redis),
        color=sys.stdout.isatty() and "NO_COLOR" not in os.environ,
        verbose=verbose,
    )
    outcome = run(options)
    _finish(outcome.exit_code, outcome.out, outcome.err)


@app.command("load-initial-schedule")
def load_initial_schedule(
    sources: Annotated[
        list[Path] | None,
        typer.Option("--from", help="Python files or packages with legacy decorators (read with ast, never run)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the YAML files.")] = Path("schedules.d"),
    no_core: Annotated[bool, typer.Option("--no-core", help="Leave out orchestrator-core's initial schedules.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files that differ.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if the files would change.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if anything could not be migrated.")] = False,
) -> None:
    """Write YAML for core's initial schedules and for legacy @scheduler decorators found in --from."""
    from reconciler.load_initial import Level, run

    result = run(sources or (), out, include_core=not no_core, force=force, check=check, strict=strict)
    _finish(
        result.exit_code,
        [str(x) for x in result.lines if x.level is Level.INFO],
        [str(x) for x in result.lines if x.level is not Level.INFO],
    )


def main() -> None:
    """Console-script entry point: a clear one-line error instead of a traceback."""
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise SystemExit(130) from None
    except Exception as exc:
        if os.environ.get("RECONCILER_DEBUG"):
            raise
        from reconciler.store import redact

        typer.echo(
            f"error: {redact(str(exc) or type(exc).__name__)} (RECONCILER_DEBUG=1 shows the traceback)",
            err=True,
        )
        raise SystemExit(1) from None
