"""Whole-command benchmarks: `schedules ...` as the separate processes a user runs, against baselines in the same run.

    python -m bench.whole                       # bundled schedules, start-up, 10,000 and 50,000 on PostgreSQL
    python -m bench.whole --n 10000 --repeat 5  # one size, more runs
    python -m bench.whole --small-only          # seconds: bundled schedules and start-up only

`python -m bench` (bench/run.py) times phases inside one process; this times what a user waits for, start-up
included. Every comparison is measured side by side in this one run, the two commands alternating (A B A B ...),
and the median of the runs is shown, because on a shared machine absolute times drift while ratios hold:

- the bundled schedules.d (5 schedules) in a git repository: warm `reconcile --dry-run` (the SQLite database
  already applied, one untimed run of each first) ÷ `validate`;
- `schedules --help` ÷ `python -c pass`;
- N schedules across N/10 files (bench/run.py's tree) committed to a git repository, PostgreSQL:
  whole `reconcile` into a fresh database (peak RSS from the process's own rusage), no-op
  `reconcile --dry-run` ÷ `validate`, and at 10,000 orchestrator-core's own path (APScheduler `add_job` per
  schedule into SQLAlchemyJobStore, in this process, no start-up charged) ÷ the whole `reconcile`;
- with two sizes, large ÷ small of each whole command, the sizes alternating too (their runs a minute apart);
- beside each whole `reconcile` and dry run, the same with `RECONCILER_FORK=0` (no helper process: what the
  read ahead and the file and row helpers are worth).

It prints the ratio table (now, target, met?) and the seconds behind it, and writes bench/results-whole.json.
Not a test: nothing here runs under pytest (speed is measured here, never asserted in a timed test).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "schedules.d"
SCHEDULES = [sys.executable, "-m", "reconciler"]  # the `schedules` console script runs the same main()
NO_HELPERS = {"RECONCILER_FORK": "0"}  # no read ahead, no file or row helper: the command on one core


@dataclass(frozen=True)
class Run:
    """One finished process: wall seconds, CPU seconds (user + system), peak RSS (MB), exit code."""

    seconds: float
    cpu: float
    rss_mb: float
    code: int


def run_process(
    argv: Sequence[str], cwd: Path, expect: int | Sequence[int] = 0, extra_env: Mapping[str, str] | None = None
) -> Run:
    """Run one command to completion, its output to files (no pipe to drain), rusage of that child alone."""
    # Without PYTHONDONTWRITEBYTECODE (set on some CI machines, this one included): an installed package has
    # its bytecode cached, so a user's command does not compile its modules again on every start.
    dropped = ("DATABASE_URI", "CACHE_URI", "RECONCILER_NAMESPACE", "PYTHONDONTWRITEBYTECODE", "RECONCILER_FORK")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["NO_COLOR"] = "1"
    env.update(extra_env or {})
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code not in ((expect,) if isinstance(expect, int) else expect):
            err.seek(0)
            out.seek(0)
            detail = (out.read()[-2000:] + err.read()[-2000:]).decode(errors="replace")
            sys.exit(f"bench: {' '.join(argv)} exited {code}, expected {expect}:\n{detail}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code)


def alternate(commands: dict[str, Callable[[], Run]], repeat: int, warm: bool = True) -> dict[str, list[Run]]:
    """Each command `repeat` times, interleaved, after one untimed run of each when `warm`."""
    if warm:
        for command in commands.values():
            command()
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            runs[name].append(command())
    return runs


def median(runs: list[Run]) -> float:
    return statistics.median(r.seconds for r in runs)


def median_cpu(runs: list[Run]) -> float:
    return statistics.median(r.cpu for r in runs)


def medians(runs: dict[str, list[Run]]) -> dict[str, float]:
    """name → median wall seconds, and name_cpu → median CPU seconds: on a loaded machine wall ratios drift,
    CPU ratios much less (they leave out the waiting, which a quiet machine has little of)."""
    found = {name: median(r) for name, r in runs.items()}
    return found | {f"{name}_cpu": median_cpu(r) for name, r in runs.items()}


def git_repo(path: Path) -> None:
    """Make `path` a git repository with everything in it committed (as a schedules repository is)."""

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("-c", "user.name=Bench", "-c", "user.email=bench@example.invalid", "commit", "-q", "-m", "schedules")


def small(work: Path, repeat: int) -> dict[str, float]:
    """The bundled schedules: warm dry run ÷ validate, SQLite, inside a git repository."""
    repo = work / "bundled"
    shutil.copytree(BUNDLED, repo / "schedules.d")
    git_repo(repo)
    db = f"sqlite:///{work / 'bundled.db'}"
    run_process([*SCHEDULES, "reconcile", "schedules.d", "--db", db], repo)  # the database the dry run reads
    runs = alternate(
        {
            "validate": lambda: run_process([*SCHEDULES, "validate", "schedules.d"], repo),
            "dry_run": lambda: run_process(
                [*SCHEDULES, "reconcile", "schedules.d", "--db", db, "--dry-run", "--detailed-exitcode"], repo
            ),
        },
        repeat,
    )
    return medians(runs)


def startup(work: Path, repeat: int) -> dict[str, float]:
    """`schedules --help` ÷ a bare interpreter start."""
    runs = alternate(
        {
            "python": lambda: run_process([sys.executable, "-c", "pass"], work),
            "help": lambda: run_process([*SCHEDULES, "--help"], work),
        },
        repeat,
    )
    return medians(runs)


def at_scale(work: Path, sizes: Sequence[int], repeat: int) -> dict[str, dict[str, float]]:
    """For each N of `sizes`, N schedules in N/10 files on PostgreSQL: whole apply, no-op dry run and validate;
    at 10,000 orchestrator-core's add_job path beside them. By N (as a string, for the JSON).

    The sizes alternate as the commands do (10,000 then 50,000, then 10,000 again): a ratio across sizes then
    compares runs made a minute apart, not phases made minutes apart on a machine whose speed drifts (an
    earlier layout, one size after the other, once measured `validate` of 50,000 ÷ 10,000 at 5.4×, and at
    2.5× in the next run)."""
    from bench.run import add_job_baseline, database, write_tree

    repos: dict[int, Path] = {}
    for n in sizes:
        repos[n] = work / f"scale{n}"
        write_tree(repos[n] / "schedules.d", n)
        git_repo(repos[n])

    def apply_argv(n: int) -> list[str]:
        return [*SCHEDULES, "reconcile", "schedules.d", "--guard-seconds", "0", "--max-deletes", str(n)]

    def fresh_apply(n: int, env: Mapping[str, str] | None = None) -> Run:
        with database("postgres", work) as url:
            return run_process([*apply_argv(n), "--db", url], repos[n], extra_env=env)

    applies: dict[str, list[Run]] = {f"{n}:{kind}": [] for n in sizes for kind in ("apply", "apply_alone")}
    add_job: list[float] = []
    for _ in range(repeat):  # each into a fresh database; orchestrator-core's path right after, alternating
        for n in sizes:
            applies[f"{n}:apply"].append(fresh_apply(n))
            # the same apply with every helper process off: what they are worth
            applies[f"{n}:apply_alone"].append(fresh_apply(n, NO_HELPERS))
        if 10_000 in sizes:
            with database("postgres", work) as url:
                add_job.append(add_job_baseline(url, repos[10_000] / "schedules.d", datetime.now(UTC)))
    results: dict[str, dict[str, float]] = {str(n): {} for n in sizes}
    for n in sizes:
        ran, alone = applies[f"{n}:apply"], applies[f"{n}:apply_alone"]
        results[str(n)] = {
            "apply": median(ran),
            "apply_cpu": median_cpu(ran),
            "apply_rss_mb": statistics.median(r.rss_mb for r in ran),
            "apply_alone": median(alone),
            "apply_alone_cpu": median_cpu(alone),
        }
    with contextlib.ExitStack() as databases:
        commands: dict[str, Callable[[], Run]] = {}
        for n in sizes:
            url = databases.enter_context(database("postgres", work))
            run_process([*apply_argv(n), "--db", url], repos[n])
            dry_argv = [*SCHEDULES, "reconcile", "schedules.d", "--db", url, "--dry-run", "--detailed-exitcode"]
            commands |= {
                f"{n}:validate": lambda n=n: run_process([*SCHEDULES, "validate", "schedules.d"], repos[n]),
                f"{n}:dry_run": lambda n=n, argv=dry_argv: run_process(argv, repos[n]),
                f"{n}:dry_run_alone": lambda n=n, argv=dry_argv: run_process(argv, repos[n], extra_env=NO_HELPERS),
            }
        for name, value in medians(alternate(commands, repeat, warm=False)).items():
            n_text, _, key = name.partition(":")
            results[n_text][key] = value
    if add_job:
        results["10000"]["add_job"] = statistics.median(add_job)
    return results


def ratio_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, bool]]:
    """(what, now, CPU ratio, target, met) for every target the results can answer; met is judged on wall time."""
    rows: list[tuple[str, str, str, str, bool]] = []

    def ratio(what: str, top: dict[str, float], bottom: dict[str, float], keys: tuple[str, str], target: str) -> None:
        a, b = keys
        wall = top[a] / bottom[b]
        cpu = f"{top[a + '_cpu'] / bottom[b + '_cpu']:.2f}×" if a + "_cpu" in top and b + "_cpu" in bottom else "—"
        limit = float(target.split()[1].rstrip("×"))
        met = wall >= limit if target.startswith("≥") else wall <= limit
        digits = 3 if top[a] < 1 else 2
        rows.append((f"{what} ({top[a]:.{digits}f} s ÷ {bottom[b]:.{digits}f} s)", f"{wall:.2f}×", cpu, target, met))

    if "small" in results:
        s = results["small"]
        ratio("bundled 5: warm `reconcile --dry-run` ÷ `validate`", s, s, ("dry_run", "validate"), "≤ 1.3×")
    if "startup" in results:
        s = results["startup"]
        ratio("`schedules --help` ÷ `python -c pass`", s, s, ("help", "python"), "≤ 3×")
    scale = {int(n): r for n, r in results.get("scale", {}).items()}
    if 10_000 in scale:
        s = scale[10_000]
        if "add_job" in s:
            ratio("10,000: `add_job` path (in process) ÷ whole `reconcile`", s, s, ("add_job", "apply"), "≥ 5×")
        ratio("10,000: whole no-op `reconcile --dry-run` ÷ `validate`", s, s, ("dry_run", "validate"), "≤ 1.3×")
        rss = s["apply_rss_mb"]
        rows.append(("10,000: peak RSS of the whole `reconcile`", f"{rss:.0f} MB", "—", "< 200 MB", rss < 200))
    if 10_000 in scale and 50_000 in scale:
        small_n, big = scale[10_000], scale[50_000]
        for key, name in (("apply", "reconcile"), ("dry_run", "reconcile --dry-run"), ("validate", "validate")):
            ratio(f"50,000 ÷ 10,000: whole `{name}`", big, small_n, (key, key), "≤ 5.2×")
    return rows


def print_report(results: dict[str, Any]) -> None:
    print(f"whole commands, median of {results['repeat']} alternating runs each (seconds as measured in this run)")
    print("(met? is judged on wall time; the CPU ratio, user + system of each process, drifts less with load)")
    print()
    print("| what | now | CPU ratio | target | met? |")
    print("|---|---|---|---|---|")
    for what, now, cpu, target, met in ratio_rows(results):
        print(f"| {what} | {now} | {cpu} | {target} | {'yes' if met else '**no**'} |")
    print()
    for n, r in sorted(results.get("scale", {}).items(), key=lambda item: int(item[0])):
        parts = ", ".join(f"{k} {v:.2f}" for k, v in r.items())
        print(f"N={int(n):,}: {parts}")
    print()
    print("what the helper processes are worth (RECONCILER_FORK=0 runs the command on one core), wall:")
    for n, r in sorted(results.get("scale", {}).items(), key=lambda item: int(item[0])):
        for key, name in (("apply", "reconcile"), ("dry_run", "reconcile --dry-run")):
            if f"{key}_alone" in r:
                print(f"  N={int(n):,} `{name}`: {r[key]:.2f} s with them, {r[key + '_alone']:.2f} s without")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="schedule counts (default 10000 50000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command; the median is shown")
    parser.add_argument("--small-only", action="store_true", help="only the bundled schedules and start-up")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results-whole.json")
    args = parser.parse_args()
    results: dict[str, Any] = {"repeat": args.repeat}
    compileall.compile_dir(REPO / "reconciler", quiet=1)  # the bytecode an installed package has
    with tempfile.TemporaryDirectory(prefix="bench-whole-") as tmp:
        work = Path(tmp)
        print("running: start-up ...", file=sys.stderr, flush=True)
        # Start-up and the bundled schedules take a fraction of a second: many runs, for a steadier median.
        results["startup"] = startup(work, max(args.repeat, 21))
        print("running: bundled schedules ...", file=sys.stderr, flush=True)
        results["small"] = small(work, max(args.repeat, 15))
        if not args.small_only:
            sizes = args.n or [10_000, 50_000]
            print(f"running: N={', '.join(f'{n:,}' for n in sizes)} on PostgreSQL ...", file=sys.stderr, flush=True)
            results["scale"] = at_scale(work, sizes, args.repeat)
    print_report(results)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
