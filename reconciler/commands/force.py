"""`schedules force KEY`: start a schedule's workflow now, through the runner's starter.

KEY is a ledger key (this namespace first, then any namespace if unambiguous) or a job id. The row
is read with the allow-list unpickler (never imported, never deleted) and left exactly as it is: a
forced start does not move the schedule's next run, as orchestrator-core's own `scheduler force`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from reconciler import store
from reconciler.exit_codes import CommandResult
from reconciler.jobstate import ORCHESTRATOR_FUNC
from reconciler.runner.starters import StarterConfigError, StarterOptions, StartError, StartRequest, make_starter
from reconciler.suggest import did_you_mean


class ForceError(Exception):
    """The start did not happen; the message is the one line the user sees."""


@dataclass(frozen=True)
class Target:
    """What KEY resolved to."""

    key: str | None
    schedule_id: str


def resolve_target(live: store.LiveState, name: str, namespace: str) -> Target:
    """A ledger key (own namespace first) or a job id → the schedule to start."""
    own = [e for e in live.ledger if e.key == name and e.namespace == namespace]
    anywhere = [e for e in live.ledger if e.key == name]
    if own or len(anywhere) == 1:
        entry = (own or anywhere)[0]
        if not entry.enabled:
            raise ForceError(f"{name} is disabled (enabled: false): it has no job to start")
        return Target(entry.key, entry.schedule_id)
    if len(anywhere) > 1:
        spaces = ", ".join(sorted(e.namespace for e in anywhere))
        raise ForceError(f"key {name} exists in several namespaces ({spaces}); pass --namespace")
    by_id = {e.schedule_id: e for e in live.ledger}
    if any(job.id == name for job in live.jobs):
        owner = by_id.get(name)
        return Target(owner.key if owner else None, name)
    near = did_you_mean(name, (e.key for e in live.ledger))
    raise ForceError(f"unknown schedule {name!r}{near}: no ledger key and no job id matches (show-schedule lists them)")


def build_request(live: store.LiveState, target: Target, funcs: tuple[str, ...]) -> StartRequest:
    """The start request for the target's row, exactly what the runner would send."""
    job = next((j for j in live.jobs if j.id == target.schedule_id), None)
    label = target.key or target.schedule_id
    if job is None:
        raise ForceError(f"{label}: its job row {target.schedule_id} is missing from apscheduler_jobs")
    if job.state is None:
        raise ForceError(f"{label}: the job row is unreadable ({job.unreadable})")
    state = job.state
    kwargs = state.get("kwargs")
    if state["func"] not in funcs:
        raise ForceError(f"{label}: not an orchestrator-core scheduled task (func {state['func']}); not started")
    if not isinstance(kwargs, dict) or not isinstance(kwargs.get("workflow_name"), str):
        raise ForceError(f"{label}: the job has no workflow_name; not started")
    inputs = kwargs.get("user_inputs")
    return StartRequest(
        workflow_name=kwargs["workflow_name"],
        user_inputs=list(inputs) if isinstance(inputs, list | tuple) else [{}],
        schedule_id=target.schedule_id,
        scheduled_time=None,
        key=target.key,
    )


def run_force(
    db_url: str,
    name: str,
    starter_options: StarterOptions,
    *,
    namespace: str = "default",
    funcs: tuple[str, ...] = (ORCHESTRATOR_FUNC,),
) -> CommandResult:
    """The whole command: exit code, stdout lines, stderr lines (one clear line on failure)."""
    engine = store.connect(db_url, read_only=True)
    try:
        with engine.connect() as conn, conn.begin():
            live = store.read_live_state(conn)
        request = build_request(live, resolve_target(live, name, namespace), funcs)
    except ForceError as exc:
        return CommandResult(1, err=[f"error: {exc}"])
    except SQLAlchemyError as exc:
        return CommandResult(1, err=[f"error: database: {store.describe_db_error(exc)}"])
    finally:
        engine.dispose()
    label = request.key or request.schedule_id
    try:
        # After the lookup: an unknown key is the first thing to hear about, whatever the starter.
        starter = make_starter(starter_options)
    except StarterConfigError as exc:
        return CommandResult(1, err=[f"error: {store.redact(str(exc), starter_options.token)}"])
    try:
        result = starter.start(request)
    except StartError as exc:
        return CommandResult(1, err=[f"error: starting {request.workflow_name} for {label} failed: {exc}"])
    process = f", process {result.process_id}" if result.process_id else ""
    return CommandResult(0, [f"Started {request.workflow_name} for {label} (schedule {request.schedule_id}){process}."])
