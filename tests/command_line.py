"""Running the `schedules` command line as a test: in this process (the inner loop) or as a whole process.

A whole `python -m reconciler` costs a second of a busy machine, nearly all of it interpreter start-up and
imports; most tests of the command line check what a command prints and exits with, which does not depend
on the process. `Schedules` runs the same entry point either way: `in_process` executes
`reconciler/__main__.py` (or a `main.py` script) with runpy, with the environment, working directory,
argv and standard streams a process would get, and returns what `subprocess.run` would have; a test takes
the `schedules` fixture and runs once in process and, in the full suite, once more as a whole process
(`slow`). What only a whole process shows (a real terminal, signals, start-up imports) stays in tests
that spawn one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pty
import runpy
import select
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from typer.testing import CliRunner  # click itself is vendored by Typer, not installed

Result = subprocess.CompletedProcess[str]


def _exit_code(exc: SystemExit) -> int:
    """What the interpreter makes of SystemExit: None is 0, an int itself, anything else printed and 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


@contextlib.contextmanager
def _as_a_process(argv: list[str], cwd: Path | None, env: Mapping[str, str] | None) -> Iterator[None]:
    """argv, working directory, the whole environment and a root logger as a new process has them, for the
    duration of the block (a script may configure logging: `logging.basicConfig` acts only on a bare root)."""
    saved_argv, saved_cwd, saved_env = sys.argv, os.getcwd(), dict(os.environ)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers[:] = []
    root.setLevel(logging.WARNING)
    sys.argv = argv
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    try:
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def _raised(stop: SystemExit) -> None:
    raise stop


def run_in_process(
    args: list[str],
    *,
    script: Path | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    terminal: bool = False,
) -> Result:
    """`python -m reconciler ARGS` (or `python SCRIPT ARGS`), run by this interpreter.

    `terminal`: stdin, stdout and stderr say they are a terminal (the width comes from $COLUMNS), as on a
    pty; the screen is stdout and stderr interleaved, returned as stdout.
    """
    argv = [str(script) if script else "schedules", *args]
    # tune_gc freezes the heap and raises the collector's thresholds, end_process leaves without tearing the
    # heap down: right for a short command, not for the test process it would outlive.
    with (
        _as_a_process(argv, cwd, env),
        CliRunner().isolation(input=input, color=terminal) as (out, err, screen),
        mock.patch("reconciler.cli.tune_gc"),
        mock.patch("reconciler.cli.end_process", side_effect=_raised),
    ):
        if terminal:
            for stream in (sys.stdin, sys.stdout, sys.stderr):
                stream.isatty = lambda: True  # type: ignore[method-assign]
        try:
            if script is None:
                runpy.run_module("reconciler", run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(str(script), run_name="__main__")
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        except BaseException:  # what the interpreter does with an exception nobody caught
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        if terminal:
            return Result(argv, code, screen.getvalue().decode(errors="replace"), "")
        return Result(argv, code, out.getvalue().decode(), err.getvalue().decode(errors="replace"))


def run_process(
    args: list[str],
    *,
    script: Path | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> Result:
    """`python -m reconciler ARGS` (or `python SCRIPT ARGS`) as a process of its own."""
    command = [sys.executable, str(script)] if script else [sys.executable, "-m", "reconciler"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=None if env is None else dict(env),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        timeout=timeout,
    )


def run_on_pty(
    args: list[str],
    answer: str | None,
    *,
    cwd: Path,
    env: Mapping[str, str],
    columns: int = 80,
    timeout: float = 60,
) -> Result:
    """`python -m reconciler ARGS` with stdin/stdout/stderr on a pty of `columns` × 24; types `answer`
    when asked. stdout is what the screen received."""
    import fcntl
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    os.set_blocking(leader, False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=cwd,
        env={k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")},  # the pty's own size
        close_fds=True,
    )
    os.close(follower)
    screen = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk and proc.poll() is not None:
                    break
                screen += chunk
            elif proc.poll() is not None:
                break
            if answer is not None and not answered and b"Enter a value:" in screen:
                os.write(leader, answer.encode() + b"\r")
                answered = True
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return Result(proc.args, code, screen.decode(errors="replace").replace("\r\n", "\n"), "")


@dataclass(frozen=True)
class Schedules:
    """The `schedules` command, run in this process or as a whole process (`whole_process`)."""

    whole_process: bool

    def __call__(
        self,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        script: Path | None = None,
    ) -> Result:
        """Run `schedules ARGS`; the environment is the whole environment, as `subprocess.run` takes it."""
        run = run_process if self.whole_process else run_in_process
        return run(list(args), script=script, cwd=cwd, env=env, input=input)

    def on_terminal(
        self, *args: str, answer: str | None, cwd: Path, env: Mapping[str, str], columns: int = 80
    ) -> Result:
        """Run `schedules ARGS` on a terminal `columns` wide, typing `answer` when asked; stdout is the screen."""
        if self.whole_process:
            return run_on_pty(list(args), answer, cwd=cwd, env=env, columns=columns)
        sized = {**env, "COLUMNS": str(columns), "LINES": "24"}
        typed = None if answer is None else answer + "\n"
        return run_in_process(list(args), cwd=cwd, env=sized, input=typed, terminal=True)


IN_PROCESS = Schedules(whole_process=False)
WHOLE_PROCESS = Schedules(whole_process=True)

BOTH_WAYS = [
    pytest.param(IN_PROCESS, id="in-process"),
    pytest.param(WHOLE_PROCESS, id="process", marks=pytest.mark.slow),
]
"""Parameters of the `schedules` fixture: each test once in process, and as a whole process in the full suite."""
