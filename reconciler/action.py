"""The body of the composite GitHub Action (`action.yml`): `python -m reconciler.action`.

The action passes its inputs as environment variables (`INPUT_COMMAND`, `INPUT_DIRECTORY`, ...), never
by interpolating them into a shell script, so no input can inject commands. This module runs the
command in-process and speaks GitHub's file protocol: annotations on stdout, Markdown appended to
`$GITHUB_STEP_SUMMARY`, outputs appended to `$GITHUB_OUTPUT`.

Outputs: `has-changes` (true/false), `plan-json` (path of the plan JSON; with `plan` a saved plan that
`schedules reconcile --plan` accepts), `plan-markdown` (path of the Markdown sized for a PR comment),
`plan-digest` (the review digest that `--expect-digest` checks at apply time).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

from reconciler import render, workflow_commands
from reconciler.apply import ApplySettings
from reconciler.commands.reconcile import Outcome, ReconcileOptions, origin_mark, run
from reconciler.plan import Plan, PlanSettings
from reconciler.planfile import plan_json

COMMANDS = ("validate", "plan", "apply")
# GitHub rejects a step summary over 1 MiB; render_markdown counts characters and a few are multi-byte.
SUMMARY_BUDGET = 700_000


class ActionError(Exception):
    """A misconfigured input: reported as one ::error:: line, exit 1."""


def _input(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(f"INPUT_{name.upper().replace('-', '_')}", default).strip() or default


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = _input(env, name, "false").lower()
    if value not in ("true", "false"):
        raise ActionError(f"input {name} must be true or false, not {value!r}")
    return value == "true"


def set_output(env: Mapping[str, str], name: str, value: str) -> None:
    """Append one output to $GITHUB_OUTPUT (heredoc form, so no value can forge another output)."""
    path = env.get("GITHUB_OUTPUT")
    if not path:
        print(f"{name}={value}")
        return
    delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def add_summary(env: Mapping[str, str], markdown: str) -> None:
    """Append Markdown to the job summary ($GITHUB_STEP_SUMMARY); printed when run outside Actions."""
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(markdown.rstrip("\n") + "\n\n")


def _workdir(env: Mapping[str, str]) -> Path:
    base = env.get("RUNNER_TEMP") or tempfile.gettempdir()
    path = Path(base) / f"reconciler-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _print(lines: list[str], *, err: bool = False) -> None:
    for line in lines:
        print(line, file=sys.stderr if err else sys.stdout)


def _error_annotations(lines: list[str]) -> None:
    # Errors as annotations too: they then show on the run's summary page, not only in the log.
    for line in lines:
        for part in line.splitlines():
            if part.startswith("error: "):
                print(workflow_commands.command("error", part[len("error: ") :]))


def run_validate(env: Mapping[str, str], directory: Path) -> int:
    """`command: validate`: every problem as a `::error file=,line=,col=::` annotation."""
    from reconciler.commands.validate import run_validate as validate

    db = _input(env, "database-uri") or None
    result = validate(directory, db_url=db, fmt="github")
    code, out, err = result.exit_code, result.out, result.err
    _print(out)
    _print(err, err=True)
    _error_annotations(err)
    errors = sum(line.count("::error ") for line in out)
    if code == 0:
        add_summary(env, f"### Schedules validation\n\n:white_check_mark: `{directory}` is valid.")
    else:
        add_summary(
            env,
            f"### Schedules validation\n\n:x: `{directory}`: {errors} error(s); see the annotations on the files.",
        )
    return code


def _options(env: Mapping[str, str], directory: Path, *, dry_run: bool, plan_out: Path | None) -> ReconcileOptions:
    db = _input(env, "database-uri")
    if not db:
        # Never fall back to the embedded SQLite default here: a plan against an empty throwaway
        # database would look like a perfectly good plan, and an apply would "succeed" into nothing.
        raise ActionError("input database-uri is empty: set it (e.g. from the SCHEDULES_DATABASE_URI secret)")
    try:
        max_deletes = int(_input(env, "max-deletes", "10"))
    except ValueError as exc:
        raise ActionError("input max-deletes must be a whole number") from exc
    return ReconcileOptions(
        directory=directory,
        db_url=db,
        dry_run=dry_run,
        fmt="text",
        plan_out=plan_out,
        settings=PlanSettings(
            namespace=_input(env, "namespace", "default"),
            max_deletes=max_deletes,
            allow_empty=_flag(env, "allow-empty"),
        ),
        apply=ApplySettings(redis_url=_input(env, "redis-uri") or None),
        base=(_input(env, "base") or None) if dry_run else None,
        expect_digest=None if dry_run else (_input(env, "expect-digest") or None),
    )


def _markdowns(plan: Plan, origins: Mapping[str, str]) -> tuple[str, str]:
    """(comment-sized Markdown, summary-sized Markdown) of a plan."""
    mark = origin_mark(origins)
    return render.render_markdown(plan, mark=mark), render.render_markdown(plan, budget=SUMMARY_BUDGET, mark=mark)


def run_plan(env: Mapping[str, str], directory: Path) -> int:
    """`command: plan`: a dry run; Markdown to the summary and a file, the saved plan JSON, the digest."""
    work = _workdir(env)
    saved = work / "plan.json"
    outcome = _run_reported(env, _options(env, directory, dry_run=True, plan_out=saved), ":x: no plan")
    if outcome.plan is None:
        return outcome.exit_code or 1
    comment, summary = _markdowns(outcome.plan, outcome.origins)
    markdown = work / "plan.md"
    markdown.write_text(comment, encoding="utf-8")
    add_summary(env, summary)
    set_output(env, "has-changes", "true" if outcome.plan.has_changes else "false")
    set_output(env, "plan-json", str(saved) if saved.exists() else "")
    set_output(env, "plan-markdown", str(markdown))
    set_output(env, "plan-digest", outcome.digest or "")
    return outcome.exit_code


def _run_reported(env: Mapping[str, str], options: ReconcileOptions, failure: str) -> Outcome:
    """Run reconcile and print what it said (errors also as annotations); when it made no plan, say
    so in the job summary under `failure` and set has-changes to false."""
    outcome = run(options)
    _print(outcome.out)
    _print(outcome.err, err=True)
    _error_annotations(outcome.err)
    if outcome.plan is None:
        set_output(env, "has-changes", "false")
        title = "plan" if options.dry_run else "apply"
        add_summary(env, f"### Schedules {title}\n\n{failure}: " + "; ".join(outcome.err)[:2000])
    return outcome


def run_apply(env: Mapping[str, str], directory: Path) -> int:
    """`command: apply`: apply (refused with exit 3 if `expect-digest` does not match the plan)."""
    outcome = _run_reported(env, _options(env, directory, dry_run=False, plan_out=None), ":x: nothing applied")
    if outcome.plan is None:
        return outcome.exit_code or 1
    work = _workdir(env)
    path = work / "plan.json"
    path.write_text(json.dumps(plan_json(outcome.plan), indent=2, default=str, ensure_ascii=False), encoding="utf-8")
    _, summary = _markdowns(outcome.plan, {})
    verdict = (
        ":white_check_mark: applied"
        if outcome.exit_code == 0
        else f":x: not applied (exit {outcome.exit_code}): " + "; ".join(outcome.err)[:2000]
    )
    add_summary(env, f"### Schedules apply\n\n{verdict}\n\n{summary}")
    set_output(env, "has-changes", "true" if outcome.exit_code == 0 and outcome.plan.has_changes else "false")
    set_output(env, "plan-json", str(path))
    set_output(env, "plan-markdown", "")
    set_output(env, "plan-digest", outcome.digest or "")
    return outcome.exit_code


def main(env: Mapping[str, str] | None = None) -> int:
    """Run the action's command from its INPUT_* environment; returns the exit code."""
    environ = os.environ if env is None else env
    command = _input(environ, "command")
    directory = Path(_input(environ, "directory", "schedules.d"))
    try:
        if command == "validate":
            return run_validate(environ, directory)
        if command == "plan":
            return run_plan(environ, directory)
        if command == "apply":
            return run_apply(environ, directory)
        raise ActionError(f"input command must be one of {', '.join(COMMANDS)}, not {command!r}")
    except ActionError as exc:
        print(workflow_commands.command("error", str(exc)))
        return 1


if __name__ == "__main__":
    sys.exit(main())
