"""How a scheduled workflow is started: one small interface, three ways.

- ``orchestrator``: orchestrator-core's own ``start_process`` in this process — what its
  ``scheduler run`` does. Needs orchestrator-core importable *and* configured (its database
  initialised and the project's workflows registered), i.e. ``python main.py schedules run``.
- ``rest``: orchestrator-core's REST API, ``POST {url}/api/processes/{workflow_name}`` with the
  user inputs as the JSON body and an optional bearer token.
- ``command:ARGV``: a local command; it gets ``{"workflow_name", "user_inputs", "schedule_id",
  "scheduled_time", "key"}`` as JSON on stdin and succeeds when it exits 0.

``auto`` (the default) picks orchestrator-core in-process when it is configured here, else the REST
API when a URL is given, else refuses with a clear message (a command must be asked for explicitly).
Tokens never appear in messages: every error text passes through ``store.redact``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from reconciler.store import redact

DEFAULT_TIMEOUT = 60.0


class StartError(Exception):
    """A start that did not happen; the message is one line, without secrets."""


class StarterConfigError(ValueError):
    """The starter options cannot work (unknown kind, missing URL, orchestrator-core not configured)."""


@dataclass(frozen=True)
class StartRequest:
    """One start: what orchestrator-core's scheduler task receives, plus where it came from."""

    workflow_name: str
    user_inputs: list[dict[str, Any]]
    schedule_id: str
    scheduled_time: datetime | None  # None for `schedules force`
    key: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON document a command starter reads on stdin."""
        return {
            "workflow_name": self.workflow_name,
            "user_inputs": self.user_inputs,
            "schedule_id": self.schedule_id,
            "scheduled_time": self.scheduled_time.isoformat() if self.scheduled_time else None,
            "key": self.key,
        }


@dataclass(frozen=True)
class StartResult:
    """A successful start: the process id when the starter reports one."""

    process_id: str | None = None


class Starter(Protocol):
    """Starts one workflow; raises StartError when it did not start."""

    kind: str

    def start(self, request: StartRequest) -> StartResult: ...


@dataclass
class CommandStarter:
    """Runs a local command per start, the request as JSON on stdin; exit 0 means started."""

    argv: list[str]
    timeout: float = DEFAULT_TIMEOUT
    kind: str = field(default="command", init=False)

    def start(self, request: StartRequest) -> StartResult:
        """Run the command and wait for it (bounded by `timeout`)."""
        payload = json.dumps(request.as_json())
        try:
            done = subprocess.run(
                self.argv,
                input=payload,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StartError(f"command did not finish within {self.timeout:g}s") from None
        except OSError as exc:
            raise StartError(f"command could not be run: {exc}") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            tail = f": {redact(lines[-1])[:300]}" if lines else ""
            raise StartError(f"command exited with {done.returncode}{tail}")
        out = [line for line in done.stdout.strip().splitlines() if line.strip()]
        return StartResult(out[-1].strip()[:200] if out else None)


@dataclass
class RestStarter:
    """orchestrator-core's REST API: POST /api/processes/{workflow_name}, user inputs as the body."""

    base_url: str
    token: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    kind: str = field(default="rest", init=False)

    def endpoint(self, workflow_name: str) -> str:
        """The URL a start is POSTed to."""
        return f"{self.base_url.rstrip('/')}/api/processes/{urllib.parse.quote(workflow_name, safe='')}"

    def start(self, request: StartRequest) -> StartResult:
        """POST the start; 2xx with {"id": ...} is a started process."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body = json.dumps(request.user_inputs).encode()
        http = urllib.request.Request(self.endpoint(request.workflow_name), data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(http, timeout=self.timeout) as response:
                text = response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc.read().decode(errors="replace"))
            raise StartError(self._clean(f"orchestrator-core answered {exc.code} {exc.reason}{detail}")) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StartError(self._clean(f"orchestrator-core not reachable at {self.base_url}: {reason}")) from None
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            answer = {}
        process_id = answer.get("id") if isinstance(answer, dict) else None
        return StartResult(str(process_id) if process_id else None)

    def _clean(self, message: str) -> str:
        return redact(message, self.token)


def _error_detail(body: str) -> str:
    # FastAPI errors are {"detail": ...}; keep one short line of it.
    try:
        parsed = json.loads(body)
        detail = parsed.get("detail", parsed) if isinstance(parsed, dict) else parsed
        text = detail if isinstance(detail, str) else json.dumps(detail)
    except ValueError:
        text = body
    text = " ".join(text.split())[:300]
    return f": {text}" if text else ""


@dataclass
class OrchestratorStarter:
    """orchestrator-core's start_process in this process, as its own scheduler task does."""

    kind: str = field(default="orchestrator", init=False)

    def start(self, request: StartRequest) -> StartResult:
        """Start the process inside a database scope; form and predicate refusals are start errors."""
        db = _orchestrator_module("db").db
        start_process = _orchestrator_module("services.processes").start_process

        try:
            with db.database_scope():
                process_id = start_process(request.workflow_name, request.user_inputs)
        except Exception as exc:  # FormValidationError, StartPredicateError, HTTPException(404), DB errors
            message = str(getattr(exc, "detail", "") or exc) or type(exc).__name__
            raise StartError(redact(f"{type(exc).__name__}: {' '.join(message.split())[:300]}")) from None
        return StartResult(str(process_id))


def _orchestrator_module(name: str) -> Any:
    """orchestrator-core's module `name`: below `orchestrator.core` in 5.x, below `orchestrator` in 4.x."""
    import importlib
    import importlib.util

    try:
        package = "orchestrator.core" if importlib.util.find_spec("orchestrator.core") else "orchestrator"
    except ModuleNotFoundError:  # no orchestrator package at all
        package = "orchestrator.core"
    return importlib.import_module(f"{package}.{name}")


def orchestrator_configured() -> bool:
    """orchestrator-core is loaded in this process with its database initialised (an orchestrator main.py).

    Only looks at modules already imported: importing orchestrator-core just to find out would read
    its settings and open connections in a process that never asked for it.
    """
    module = sys.modules.get("orchestrator.core.db") or sys.modules.get("orchestrator.db")
    if module is None:
        return False
    wrapper = getattr(module, "db", None)
    wrapped = getattr(wrapper, "wrapped_database", None) if wrapper is not None else None
    return wrapped is not None


def _ensure_orchestrator() -> None:
    # Explicit --starter orchestrator outside an orchestrator main.py: configure its database from its
    # own settings (DATABASE_URI ...), as its app would. Workflows still have to be registered.
    try:
        app_settings = _orchestrator_module("settings").app_settings
        init_database = _orchestrator_module("db").init_database
    except Exception as exc:
        raise StarterConfigError(f"--starter orchestrator: orchestrator-core cannot be imported here: {exc}") from None
    if not orchestrator_configured():
        try:
            init_database(app_settings)
        except Exception as exc:
            raise StarterConfigError(
                redact(f"--starter orchestrator: orchestrator-core's database could not be set up: {exc}")
            ) from None


@dataclass(frozen=True)
class StarterOptions:
    """The starter the command line asked for."""

    spec: str = "auto"
    orchestrator_url: str | None = None
    token: str | None = None
    timeout: float = DEFAULT_TIMEOUT


def make_starter(options: StarterOptions) -> Starter:
    """The starter for these options (see the module docstring for the `auto` order)."""
    spec = options.spec.strip()
    if spec.startswith("command:"):
        try:
            argv = shlex.split(spec[len("command:") :])
        except ValueError as exc:
            raise StarterConfigError(f"--starter command: cannot split the command line: {exc}") from None
        if not argv:
            raise StarterConfigError("--starter command: needs a command, e.g. 'command:./start.sh'")
        return CommandStarter(argv, timeout=options.timeout)
    if spec in ("rest", "api"):
        if not options.orchestrator_url:
            raise StarterConfigError("--starter rest needs --orchestrator-url (or $ORCHESTRATOR_URL)")
        return RestStarter(options.orchestrator_url, options.token, options.timeout)
    if spec == "orchestrator":
        _ensure_orchestrator()
        return OrchestratorStarter()
    if spec == "auto":
        if orchestrator_configured():
            return OrchestratorStarter()
        if options.orchestrator_url:
            return RestStarter(options.orchestrator_url, options.token, options.timeout)
        raise StarterConfigError(
            "no way to start workflows here: orchestrator-core is not configured in this process "
            "(run `python main.py schedules run`), and neither --orchestrator-url nor --starter command:... was given"
        )
    raise StarterConfigError(f"--starter {spec!r}: expected auto, orchestrator, rest or command:ARGV")


def describe_starter(starter: Starter) -> str:
    """The starter for logs, without secrets."""
    if isinstance(starter, RestStarter):
        return f"rest {redact(starter.base_url)}"
    if isinstance(starter, CommandStarter):
        return "command " + redact(shlex.join(starter.argv))
    return starter.kind
