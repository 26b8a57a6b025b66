"""Results and exceptions → exit code + what the user reads: the one place every command goes through.

Like pre-commit's `error_handler` and pip's `status_codes`: each command returns a `CommandResult`, and
any exception escaping a command becomes one line on stderr and an exit code from `EXCEPTION_EXIT_CODES`.
`HandledTyper` applies this to every command it registers, so it holds when the app is mounted in an
orchestrator-core `main.py` (`core_app.add_typer(app, name="schedules")`) just as in our own entry point.
`RECONCILER_DEBUG=1` lets the exception through, with its traceback.

This module is imported for `--help`: it must not import SQLAlchemy or anything heavy. Foreign exception
types are named by dotted path and matched only when their module is already loaded (an exception of a
module nobody imported cannot be raised).
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer

from reconciler.diagnostics import diagnostics_to_stderr

DEBUG_VARIABLE = "RECONCILER_DEBUG"


class ExitCode(IntEnum):
    """Every exit code a `schedules` command uses (DESIGN.md §3)."""

    OK = 0
    ERROR = 1  # an error, a refusal, or a check that failed; nothing was changed unless the line says so
    CHANGES = 2  # changes pending (--detailed-exitcode, `status` drift); also the command line's own usage errors
    CONFLICT = 3  # another apply holds the lock, or the saved/reviewed plan no longer matches the database
    INTERRUPTED = 130  # SIGINT (Ctrl-C)
    TERMINATED = 143  # SIGTERM


EXIT_CODES_HELP = {
    "reconcile": "Exit codes: 0 applied or no changes; 1 error or refused; 2 changes pending (--dry-run "
    "--detailed-exitcode); 3 lock not taken, or the plan is not the saved/reviewed one; 130 / 143 interrupted by "
    "SIGINT / SIGTERM (the line says whether the commit happened).",
    "validate": "Exit codes: 0 valid; 1 errors found or cannot read.",
    "status": "Exit codes: 0 in sync; 2 HEAD has changes not yet applied, or the database drifted; 1 error.",
    "show-schedule": "Exit codes: 0 shown; 1 error.",
    "import": "Exit codes: 0 written or unchanged; 1 error, or (--check) the file would change.",
    "load-initial-schedule": "Exit codes: 0 written or unchanged; 1 error, (--check) a file would change, or "
    "(--strict) something could not be migrated; 2 a --from path does not exist.",
    "force": "Exit codes: 0 started; 1 not started.",
    "health": "Exit codes: 0 healthy; 2 problems found; 1 error.",
    "schema": "Exit codes: 0 printed or written; 1 cannot write.",
    "run": "Exit codes: 0 stopped by SIGTERM/SIGINT; 1 error.",
}
"""What each command's --help says about its exit codes (`HandledTyper` appends it)."""


@dataclass
class CommandResult:
    """What a command did: its exit code, then the lines for stdout and for stderr, in print order."""

    exit_code: int
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)


class CommandError(Exception):
    """A failure the user can fix; the message is the one line they read (with the fix in it).

    Subclasses set `exit_code`; raise them anywhere below a command.
    """

    exit_code: int = ExitCode.ERROR


@dataclass(frozen=True)
class ExceptionRule:
    """How one exception type reaches the user: exit code and one line (without the `error: ` prefix)."""

    exit_code: int
    message: Callable[[BaseException], str]
    prefix: str = "error: "  # "" for a line that is not an error (an interrupt says what happened)


def _redact(message: str) -> str:
    # The same rule as store.redact, here without importing SQLAlchemy.
    return re.sub(r"(\w+://[^:/@\s]*):[^@\s]*@", r"\1:***@", message)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return _redact(lines[0] if lines else type(exc).__name__)


def _database_error(exc: BaseException) -> str:
    from reconciler.database_url import describe_db_error

    return f"database: {describe_db_error(exc)}" if isinstance(exc, Exception) else _first_line(exc)


def _database_url(exc: BaseException) -> str:
    return f"database URL: {_first_line(exc)} (use sqlite:///PATH, or postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"


def _os_error(exc: BaseException) -> str:
    assert isinstance(exc, OSError)
    reason = exc.strerror or _first_line(exc)
    if exc.filename is None:
        return reason
    return f"{exc.filename}: {reason}"


def _missing_module(exc: BaseException) -> str:
    name = getattr(exc, "name", None) or ""
    if name.split(".")[0] == "psycopg":
        return "the PostgreSQL driver is not installed: pip install 'psycopg[binary]'"
    return f"{_first_line(exc)}: install it in the environment that runs `schedules`"


EXCEPTION_EXIT_CODES: dict[str, ExceptionRule] = {
    # Most specific first: the first entry the exception is an instance of decides.
    "sqlalchemy.exc.ArgumentError": ExceptionRule(ExitCode.ERROR, _database_url),
    "sqlalchemy.exc.NoSuchModuleError": ExceptionRule(ExitCode.ERROR, _database_url),
    "sqlalchemy.exc.SQLAlchemyError": ExceptionRule(ExitCode.ERROR, _database_error),
    # A dry run reads through the drivers themselves (reconciler/reads.py), without SQLAlchemy.
    "sqlite3.Error": ExceptionRule(ExitCode.ERROR, _database_error),
    "psycopg.Error": ExceptionRule(ExitCode.ERROR, _database_error),
    "builtins.ModuleNotFoundError": ExceptionRule(ExitCode.ERROR, _missing_module),
    "builtins.OSError": ExceptionRule(ExitCode.ERROR, _os_error),
    "reconciler.interrupts.Terminated": ExceptionRule(ExitCode.TERMINATED, _first_line, prefix=""),
    "reconciler.interrupts.Interrupted": ExceptionRule(ExitCode.INTERRUPTED, _first_line, prefix=""),
    "builtins.KeyboardInterrupt": ExceptionRule(ExitCode.INTERRUPTED, lambda _exc: "interrupted"),
}
"""Foreign exception types (by dotted path) → exit code and one line. `CommandError` carries its own."""


def _resolve(dotted: str) -> type[BaseException] | None:
    module_name, _, name = dotted.rpartition(".")
    module = sys.modules.get(module_name)
    found = getattr(module, name, None) if module is not None else None
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def for_exception(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one line (`error: …`) for an exception that escaped a command."""
    if isinstance(exc, CommandError):
        return int(exc.exit_code), f"error: {_first_line(exc)}"
    for dotted, rule in EXCEPTION_EXIT_CODES.items():
        kind = _resolve(dotted)
        if kind is not None and isinstance(exc, kind):
            return int(rule.exit_code), f"{rule.prefix}{rule.message(exc)}"
    return ExitCode.ERROR, f"error: {_first_line(exc)} ({DEBUG_VARIABLE}=1 shows the traceback)"


def finish(result: CommandResult) -> NoReturn:
    """Print a command's result (stdout lines, then stderr lines) and exit with its code."""
    # color=True: colour codes in a result are there because terminal.colour_wanted said so (FORCE_COLOR into a
    # pipe included); anything from a file or the database was made visible text long before.
    for line in result.out:
        typer.echo(line, color=True)
    for line in result.err:
        typer.echo(line, err=True, color=True)
    raise typer.Exit(result.exit_code)


def fail(message: str, exit_code: int = ExitCode.ERROR) -> NoReturn:
    """Stop the command with one line on stderr (a usage rule the options alone cannot express)."""
    finish(CommandResult(exit_code, err=[f"error: {message}"]))


# Exceptions that already are what the user should see: typer.Exit and the parser's own errors. Typer 0.12
# re-exports click's classes, newer Typer vendors click: its ClickException is found from BadParameter.
_CLICK_EXCEPTION = next(k for k in typer.BadParameter.__mro__ if k.__name__ == "ClickException")
_PASS_THROUGH: tuple[type[BaseException], ...] = (typer.Exit, typer.Abort, _CLICK_EXCEPTION, SystemExit, GeneratorExit)

P = ParamSpec("P")
F = TypeVar("F", bound=Callable[..., Any])


def handled(command: Callable[P, Any]) -> Callable[P, None]:
    """`command` with its result printed and every escaping exception turned into one line + exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        with diagnostics_to_stderr(verbose=bool(kwargs.get("verbose"))):
            _run(command, *args, **kwargs)

    return run


def _run(command: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
    try:
        result = command(*args, **kwargs)
    except _PASS_THROUGH:
        raise
    except BaseException as exc:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        code, line = for_exception(exc)
        typer.echo(line, err=True)
        raise typer.Exit(code) from None
    if isinstance(result, CommandResult):
        finish(result)
    if isinstance(result, int):
        raise typer.Exit(result)


class HandledTyper(typer.Typer):
    """A Typer app whose every command goes through `handled`, and whose --help states its exit codes."""

    def command(self, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
        register = super().command(name, **kwargs)

        def decorator(function: F) -> F:
            shown = name or function.__name__.replace("_", "-")
            exits = EXIT_CODES_HELP.get(shown)
            wrapped = handled(function)
            if exits:
                wrapped.__doc__ = f"{inspect.cleandoc(function.__doc__ or '')}\n\n{exits}"
            register(wrapped)
            return function

        return decorator
