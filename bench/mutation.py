"""Mutation run over the pure core's decisions: plan, the hold rule (guard), crontab, live-state digests.

    python -m bench.mutation            # fresh run (about 20-30 min on 2 cores), then the score
    python -m bench.mutation --report   # only the score and survivors of the last run

Slow by nature, so never part of CI. mutmut (the `mutation` extra) copies the code into mutants/, runs
the unit tests it names in pyproject.toml's [tool.mutmut] once for coverage, then every mutant against
the tests that reach it. The score is killed ÷ (killed + survived); timeouts count as killed, mutants
no test reaches count as survived. Survivors are written with their diffs to mutants/survivors.txt,
to be sorted by hand into equivalent mutants and missing tests (`--diffs`, or `mutmut show NAME`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = str(Path(sys.executable).with_name("mutmut"))
KILLED = {"killed", "timeout"}
SURVIVED = {"survived", "no tests"}


def _mutmut(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([MUTMUT, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):  # mutmut exits 1 when mutants survived
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"mutmut {' '.join(args)} failed with exit {done.returncode}")
    return done.stdout


def run(children: int, examples: int) -> None:
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    env = {**os.environ, "RECONCILER_PROPERTY_EXAMPLES": str(examples)}
    print(f"mutmut run --max-children {children} (property tests at {examples} examples) ...", file=sys.stderr)
    _mutmut("run", "--max-children", str(children), env=env)


def report(diffs: bool) -> int:
    statuses: dict[str, str] = {}
    for line in _mutmut("results", "--all", "true").splitlines():
        match = re.match(r"\s*(\S+): (.+)$", line)
        if match:
            statuses[match[1]] = match[2].strip()
    if not statuses:
        print("no mutation results: run `python -m bench.mutation` first", file=sys.stderr)
        return 1
    by_module: dict[str, Counter[str]] = {}
    for name, status in statuses.items():
        by_module.setdefault(name.split(".x")[0], Counter())[status] += 1
    print(f"{'module':28} {'mutants':>8} {'killed':>7} {'survived':>9} {'score':>6}")
    total_killed = total_survived = 0
    for module, counts in sorted(by_module.items()):
        killed = sum(counts[s] for s in KILLED)
        survived = sum(counts[s] for s in SURVIVED)
        total_killed += killed
        total_survived += survived
        score = killed / (killed + survived) if killed + survived else 1.0
        print(f"{module:28} {sum(counts.values()):8} {killed:7} {survived:9} {score:6.1%}")
    overall = total_killed / (total_killed + total_survived)
    print(f"{'all':28} {len(statuses):8} {total_killed:7} {total_survived:9} {overall:6.1%}")
    survivors = sorted(n for n, s in statuses.items() if s in SURVIVED)
    with open(ROOT / "mutants" / "survivors.txt", "w", encoding="utf-8") as out:
        for name in survivors:  # `mutmut show` starts mutmut once per mutant: only when asked
            out.write(f"## {name} ({statuses[name]})\n{_mutmut('show', name) if diffs else ''}\n")
    pending = sum(1 for s in statuses.values() if s not in KILLED | SURVIVED)
    print(f"{len(survivors)} survivors listed in mutants/survivors.txt; {pending} mutants not run (or skipped)")
    print(json.dumps({"killed": total_killed, "survived": total_survived, "score": round(overall, 4)}))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", action="store_true", help="only report the last run")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--diffs", action="store_true", help="write each survivor's diff (slow: one mutmut per mutant)")
    parser.add_argument("--examples", type=int, default=40, help="hypothesis examples per property test run")
    args = parser.parse_args()
    if not args.report:
        run(args.max_children, args.examples)
    raise SystemExit(report(args.diffs))


if __name__ == "__main__":
    main()
