"""Mutation run over the pure core's decisions: plan, the hold rule (guard), crontab, the row digests
(state, jobstate).

    nice -n 15 python -m bench.mutation --max-children 1   # fresh run, then the score (14 min on one core)
    python -m bench.mutation --report                      # only the score of the last run
    python -m bench.mutation --rerun                       # what changed, then the survivors again (new tests)
    python -m bench.mutation --report --diffs              # and write each survivor's diff

Slow by nature, so never part of CI. mutmut (the `mutation` extra) copies the code into mutants/, runs
the unit tests it names in pyproject.toml's [tool.mutmut] once for coverage, then every mutant against
the tests that reach it. The score is killed ÷ (mutants − equivalent): timeouts count as killed, mutants
no test reaches count as survived. Mutants judged equivalent (no test can tell them apart: same
behaviour) are listed with a reason in bench/mutation-equivalent.txt, so the score is reproducible;
an entry that a test does kill, or whose mutant no longer exists, is reported as stale. Survivors go
to mutants/survivors.txt (with their diffs when `--diffs` is given).
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
EQUIVALENT_FILE = Path(__file__).resolve().with_name("mutation-equivalent.txt")
MUTMUT = str(Path(sys.executable).with_name("mutmut"))
KILLED = {"killed", "timeout"}
SURVIVED = {"survived", "no tests"}


def _mutmut(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([MUTMUT, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):  # mutmut exits 1 when mutants survived
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"mutmut {' '.join(args[:3])} failed with exit {done.returncode}")
    return done.stdout


def run(children: int, examples: int, names: list[str] | None = None) -> None:
    """A fresh run of every mutant; with `names`, an incremental run: the mutants of functions changed since
    the last run, or (names given) just those, against the current tests."""
    if names is None:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    env = {**os.environ, "RECONCILER_PROPERTY_EXAMPLES": str(examples)}
    what = "every mutant" if names is None else f"{len(names)} mutants again" if names else "what changed"
    print(f"mutmut run --max-children {children}: {what} (property tests at {examples} examples) ...", file=sys.stderr)
    _mutmut("run", "--max-children", str(children), *(names or []), env=env)


def read_equivalents(path: Path = EQUIVALENT_FILE) -> dict[str, str]:
    """mutant name → why it is equivalent, from `NAME  reason` lines (`#` starts a comment line)."""
    found: dict[str, str] = {}
    if not path.exists():
        return found
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, reason = line.strip().partition(" ")
        if not reason.strip():
            raise SystemExit(f"{path.name}:{number}: {name} has no reason; write `NAME  why it is equivalent`")
        found[name] = reason.strip()
    return found


def statuses() -> dict[str, str]:
    """mutant name → mutmut's status, for every mutant of the last run."""
    found: dict[str, str] = {}
    for line in _mutmut("results", "--all", "true").splitlines():
        match = re.match(r"\s*(\S+): (.+)$", line)
        if match:
            found[match[1]] = match[2].strip()
    return found


def survivors(status: dict[str, str], equivalent: dict[str, str]) -> list[str]:
    return sorted(n for n, s in status.items() if s in SURVIVED and n not in equivalent)


def report(diffs: bool) -> int:
    status = statuses()
    if not status:
        print("no mutation results: run `python -m bench.mutation` first", file=sys.stderr)
        return 1
    equivalent = read_equivalents()
    by_module: dict[str, Counter[str]] = {}
    for name, state in status.items():
        kind = "killed" if state in KILLED else "equivalent" if name in equivalent else state
        kind = "survived" if kind in SURVIVED else kind if kind in ("killed", "equivalent") else "not run"
        by_module.setdefault(name.split(".x")[0], Counter())[kind] += 1
    columns = ("killed", "survived", "equivalent", "not run")
    print(f"{'module':22} {'mutants':>8} " + " ".join(f"{c:>10}" for c in columns) + f" {'score':>7}")
    total: Counter[str] = Counter()
    for module, counts in [*sorted(by_module.items()), ("all", Counter())]:
        if module == "all":
            counts = total
        else:
            total.update(counts)
        judged = counts["killed"] + counts["survived"]
        score = counts["killed"] / judged if judged else 1.0
        cells = " ".join(f"{counts[c]:10}" for c in columns)
        print(f"{module:22} {sum(counts.values()):8} {cells} {score:7.1%}")
    left = survivors(status, equivalent)
    with open(ROOT / "mutants" / "survivors.txt", "w", encoding="utf-8") as out:
        shown = _diffs(left) if diffs else {}
        for name in left:
            out.write(f"## {name} ({status[name]})\n{shown.get(name, '')}\n")
    stale = sorted(n for n in equivalent if n not in status or status[n] in KILLED)
    for name in stale:
        why = "no longer exists" if name not in status else "is killed by a test"
        print(f"stale entry in {EQUIVALENT_FILE.name}: {name} {why}", file=sys.stderr)
    print(f"{len(left)} survivors (not judged equivalent) listed in mutants/survivors.txt")
    judged = total["killed"] + total["survived"]
    score = round(total["killed"] / judged, 4) if judged else 1.0
    print(json.dumps({**{c.replace(" ", "_"): total[c] for c in columns}, "score": score}))
    return 0


def _diffs(names: list[str]) -> dict[str, str]:
    """Each mutant's diff, in this process (`mutmut show` would start mutmut once per mutant)."""
    from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant

    os.chdir(ROOT)
    return {name: get_diff_for_mutant(name, path=find_mutant(name).path) for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", action="store_true", help="only report the last run")
    parser.add_argument("--rerun", action="store_true", help="run the last run's survivors again, then report")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--diffs", action="store_true", help="write each survivor's diff to mutants/survivors.txt")
    parser.add_argument("--examples", type=int, default=40, help="hypothesis examples per property test run")
    args = parser.parse_args()
    if args.rerun:
        # First what changed since (mutmut runs the mutants of changed functions and collects new tests),
        # then every survivor against all the tests that now reach it.
        run(args.max_children, args.examples, [])
        left = survivors(statuses(), read_equivalents())
        if left:
            run(args.max_children, args.examples, left)
    elif not args.report:
        run(args.max_children, args.examples)
    raise SystemExit(report(args.diffs))


if __name__ == "__main__":
    main()
