"""Find legacy schedule decorators in Python source with `ast`, and turn them into schedule specs.

Two decorators registered schedules before GitOps (orchestrator-core reference §2.9):

* APScheduler's ``@<any scheduler>.scheduled_job(trigger, ..., **trigger_args)``;
* orchestrator-core's deprecated ``@scheduler(name, time_unit, period=1, at=None, *, id=None)`` from
  ``orchestrator.schedules.scheduling`` (4.x) or ``orchestrator.core.schedules.scheduling`` (5.x).

User code is only parsed, never imported or run (DESIGN.md §4, security): an import would start the
user's scheduler and touch their database. The price is that only what is written literally can be
migrated. Everything else — a value read from the environment, a body that does more than start one
workflow — is reported with its position and a reason, never guessed: a wrong guess would silently
schedule something the old code did not.
"""

from __future__ import annotations

import ast
import contextlib
import operator
import os
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler import legacy_semantics, triggers
from reconciler.legacy_semantics import Era
from reconciler.problems import Severity

# Where orchestrator-core's deprecated decorator can be imported from (4.x and 5.x layout).
CORE_DECORATORS = frozenset(
    {"orchestrator.schedules.scheduling.scheduler", "orchestrator.core.schedules.scheduling.scheduler"}
)
# orchestrator-core's scheduler starts workflows as this user (services/processes.py SYSTEM_USER).
SYSTEM_USER = "SYSTEM"
TODO = "TODO"
HOST_ZONE_NOTE = "the old job used the scheduler host's local zone; check this"
BODY_ADVICE = "wrap the body in a task workflow and schedule that workflow"
VALUE_ADVICE = "write the value it had into the YAML by hand"

_TRIGGER_CLASSES: dict[str, type[Any]] = {
    "interval": IntervalTrigger,
    "cron": CronTrigger,
    "date": DateTrigger,
    "calendarinterval": CalendarIntervalTrigger,
}
# The classes by name, for `trigger=CronTrigger(...)` instances: alias, positional and keyword-only
# parameters (APScheduler 3.11 signatures).
_TRIGGER_INSTANCES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "IntervalTrigger": (
        "interval",
        ("weeks", "days", "hours", "minutes", "seconds", "start_date", "end_date", "timezone", "jitter"),
        (),
    ),
    "CronTrigger": (
        "cron",
        (
            "year",
            "month",
            "day",
            "week",
            "day_of_week",
            "hour",
            "minute",
            "second",
            "start_date",
            "end_date",
            "timezone",
            "jitter",
        ),
        (),
    ),
    "DateTrigger": ("date", ("run_date", "timezone"), ()),
    "CalendarIntervalTrigger": (
        "calendarinterval",
        (),
        (
            "years",
            "months",
            "weeks",
            "days",
            "hour",
            "minute",
            "second",
            "start_date",
            "end_date",
            "timezone",
            "jitter",
        ),
    ),
}
_CRONTAB_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # APScheduler's order: 0 = Monday

# BaseScheduler.scheduled_job's parameters, in order; anything else is a trigger argument.
_SCHEDULED_JOB_PARAMS = (
    "trigger",
    "args",
    "kwargs",
    "id",
    "name",
    "misfire_grace_time",
    "coalesce",
    "max_instances",
    "next_run_time",
    "jobstore",
    "executor",
)
_CORE_PARAMS = ("name", "time_unit", "period", "at")
_CORE_KEYWORD_ONLY = ("id", "scheduler")
_START_PROCESS_PARAMS = ("workflow_key", "user_inputs", "user", "user_model", "broadcast_func")
_LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "msg", "log"})
_ENV_NAMES = frozenset({"os.environ", "os.getenv", "os.environb", "os.getenvb"})
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv"})
_KEY_MAX = 100
# Constant arithmetic accepted in literals; no `**`, which could build huge numbers from tiny source.
_ARITHMETIC_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
}
_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv)


@dataclass(frozen=True)
class Origin:
    """Where a legacy schedule was declared: the decorator's line and the decorated function."""

    path: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.function}"


@dataclass
class LegacySchedule:
    """One decorator, translated as far as it literally can be.

    `schedule` holds the schedule-file fields except ``key`` (assigned later, unique across the whole
    output); a value that could not be read is :data:`TODO`. `problems` say why it cannot be migrated
    (empty: it can). `notes` are comment lines for the YAML, `field_comments` notes for one field;
    `warnings` (also in `notes`) go into the report as well.
    """

    origin: Origin
    module: str
    key_hint: str
    job_id: str | None
    schedule: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    field_comments: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Whether the decorator's scheduler stored its job in apscheduler_jobs (APScheduler did; the
    # `schedule` package behind orchestrator-core's decorator before 4.4 kept jobs in memory), and under
    # which id, when that id is known from the source.
    stores_jobs: bool = True
    persisted_job_id: str | None = None
    era: Era | None = None  # which meaning of orchestrator-core's decorator was migrated (None: APScheduler's own)

    def warn(self, text: str) -> None:
        """Something migrated as the old code behaved, but probably not as its author meant: report it."""
        self.warnings.append(text)
        self.notes.append(text)

    @property
    def migrated(self) -> bool:
        """True when nothing stands in the way of writing this schedule as an active entry."""
        return not self.problems


@dataclass(frozen=True)
class Finding:
    """One line of the scan report, ``path:line: message``; `blocking` ones fail ``--strict``."""

    path: str
    line: int
    message: str
    blocking: bool

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class ScanResult:
    """Everything found below the sources: schedules in source order, and the report."""

    schedules: list[LegacySchedule] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    unreadable: int = 0


@dataclass(frozen=True)
class SourceFile:
    """A Python file to scan and the dotted module name it has (for relative imports and file names)."""

    path: Path
    module: str


def source_files(source: Path) -> list[SourceFile]:
    """The ``*.py`` files of `source` (a file, a package or a source root), sorted, with module names.

    A directory with ``__init__.py`` is a package and its name is part of the module names; any other
    directory is a source root. Hidden directories, caches and virtualenvs are skipped.
    """
    if source.is_file():
        name = source.parent.name if source.name == "__init__.py" else source.stem
        return [SourceFile(source, name or source.stem)]
    prefix = [source.resolve().name] if (source / "__init__.py").is_file() else []
    found: list[SourceFile] = []
    for directory, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            path = Path(directory) / filename
            parts = [*prefix, *path.relative_to(source).with_suffix("").parts]
            if parts and parts[-1] == "__init__":
                parts = parts[:-1]
            found.append(SourceFile(path, ".".join(parts) or source.resolve().name))
    return sorted(found, key=lambda f: f.path.as_posix())


def scan(
    sources: Sequence[Path],
    *,
    now: datetime,
    display: Callable[[Path], str] | None = None,
    era: Era | None = None,
) -> ScanResult:
    """Read every Python file below `sources` and translate each schedule decorator found.

    `now` decides whether a ``date`` trigger lies in the past (naive means UTC); `display` maps a file
    path to the text shown in reports and comments (default: the path as given). `era`: which meaning
    orchestrator-core's ``@scheduler(...)`` had (None: unknown, so a call whose meaning differs between
    the two is reported, not migrated).
    """
    shown: Callable[[Path], str] = display if display is not None else Path.as_posix
    now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    result = ScanResult()
    modules: list[_Module] = []
    seen: set[Path] = set()
    for source in sources:
        for src in source_files(source):
            real = src.path.resolve()
            if real in seen:  # two --from arguments may overlap
                continue
            seen.add(real)
            result.files += 1
            path_text = shown(src.path)
            try:
                tree = ast.parse(src.path.read_bytes(), filename=path_text)
            except SyntaxError as exc:
                result.unreadable += 1
                result.findings.append(
                    Finding(path_text, exc.lineno or 1, f"cannot read: {exc.msg}; nothing in it was migrated", True)
                )
                continue
            except (OSError, ValueError) as exc:
                result.unreadable += 1
                result.findings.append(Finding(path_text, 1, f"cannot read: {exc}; nothing in it was migrated", True))
                continue
            modules.append(_Module(tree, src, path_text, now, era))
    for module in modules:
        result.schedules.extend(module.schedules())
    _check_registration(modules, result)
    _check_duplicate_ids(result)
    for schedule in result.schedules:
        origin = schedule.origin
        for text in schedule.warnings:
            result.findings.append(Finding(origin.path, origin.line, f"warning: {origin.function}: {text}", False))
        for problem in schedule.problems:
            result.findings.append(
                Finding(origin.path, origin.line, f"cannot migrate {origin.function}: {problem}", True)
            )
    result.findings.sort(key=lambda f: (f.path, f.line, not f.blocking, f.message))
    return result


def slugify(text: str) -> str:
    """A key for `text` (a job id or function name): ``^[a-z0-9][a-z0-9._-]{0,99}$``, never empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9.]+", "-", ascii_text)  # '_' and spaces are not allowed in keys
    slug = re.sub(r"([.-])[.-]+", r"\1", slug).strip(".-")
    return slug[:_KEY_MAX].rstrip(".-") or "schedule"


def unique_key(base: str, taken: set[str]) -> str:
    """`base`, or `base-2`, `base-3`, ... — the first not in `taken` (which is not modified)."""
    if base not in taken:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: _KEY_MAX - len(suffix)].rstrip(".-") + suffix
        if candidate not in taken:
            return candidate
        n += 1


# ---------------------------------------------------------------------------------------------------
# One module


class _NotLiteral(Exception):
    """A value that is only known when the code runs."""


class _Module:
    """One parsed file: its imports (to resolve aliases) and its decorated functions."""

    def __init__(self, tree: ast.Module, src: SourceFile, path: str, now: datetime, era: Era | None = None) -> None:
        self.tree = tree
        self.era = era
        self.module = src.module
        self.is_package = src.path.name == "__init__.py"
        self.path = path
        self.now = now
        self.source = ""
        # Only used to quote arguments as written; ast.unparse is the fallback.
        with contextlib.suppress(OSError, UnicodeDecodeError):
            self.source = src.path.read_text(encoding="utf-8")
        self.imports = self._imports()
        self.local_functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}

    # -- names ----------------------------------------------------------------------------------------

    def _imports(self) -> dict[str, str]:
        # Every import in the file, wherever it is: a schedule module rarely imports inside functions,
        # and a name bound twice to different things is beyond what a static scan can settle anyway.
        table: dict[str, str] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        table[alias.asname] = alias.name
                    else:
                        first = alias.name.split(".")[0]
                        table[first] = first
            elif isinstance(node, ast.ImportFrom):
                base = self._import_base(node)
                if base is None:
                    continue
                for alias in node.names:
                    if alias.name != "*":
                        table[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
        return table

    def _import_base(self, node: ast.ImportFrom) -> str | None:
        if not node.level:
            return node.module or ""
        package = self.module.split(".") if self.is_package else self.module.split(".")[:-1]
        if node.level - 1 > len(package):
            return None
        parts = package[: len(package) - (node.level - 1)]
        if node.module:
            parts.append(node.module)
        return ".".join(parts)

    def qualify(self, node: ast.expr) -> str | None:
        """The dotted name `node` refers to through this module's imports (None: not an import)."""
        if isinstance(node, ast.Name):
            return self.imports.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualify(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def text(self, node: ast.AST) -> str:
        """`node` as written in the file, on one line."""
        written = ast.get_source_segment(self.source, node) if self.source else None
        return " ".join((written or ast.unparse(node)).split())

    def _reads_environment(self, node: ast.AST) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name | ast.Attribute):
                name = self.qualify(sub)
                if name and any(name == env or name.startswith(env + ".") for env in _ENV_NAMES):
                    return True
        return False

    def not_literal(self, argument: str, node: ast.expr) -> str:
        """The reason text for an argument that is computed at run time."""
        written = f"`{argument}={self.text(node)}`" if argument else f"`{self.text(node)}`"
        what = "reads the environment" if self._reads_environment(node) else "is not a literal"
        return f"{written} {what}; {VALUE_ADVICE}"

    # -- literals -------------------------------------------------------------------------------------

    def literal(self, node: ast.expr) -> Any:
        """The value of `node` when it is written literally; raises _NotLiteral otherwise.

        Beyond Python literals, ``datetime(2024, 1, 1)`` / ``date(...)`` without tzinfo are accepted and
        become the ISO text APScheduler parses to the same (naive, then localised) value.
        """
        if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str | int | float)):
            return node.value
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub | ast.UAdd)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)
            and not isinstance(node.operand.value, bool)
        ):
            return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, _ARITHMETIC):
            # `hours=24 * 7`, `seconds=60 * 60`: constant arithmetic is as literal as its result.
            left, right = self.literal(node.left), self.literal(node.right)
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right)):
                raise _NotLiteral
            try:
                return _ARITHMETIC_OPS[type(node.op)](left, right)
            except ArithmeticError as exc:
                raise _NotLiteral from exc
        if isinstance(node, ast.List | ast.Tuple):
            return [self.literal(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            result: dict[str, Any] = {}
            for k, v in zip(node.keys, node.values, strict=True):
                if not (isinstance(k, ast.Constant) and isinstance(k.value, str)):
                    raise _NotLiteral
                result[k.value] = self.literal(v)
            return result
        if isinstance(node, ast.Call):
            return self._datetime_literal(node)
        raise _NotLiteral

    def _datetime_literal(self, node: ast.Call) -> str:
        name = self.qualify(node.func)
        if name not in ("datetime.datetime", "datetime.date") or any(a.arg is None for a in node.keywords):
            raise _NotLiteral
        args = [self.literal(a) for a in node.args]
        kwargs = {k.arg: self.literal(k.value) for k in node.keywords if k.arg}
        if "tzinfo" in kwargs or "fold" in kwargs or not all(type(v) is int for v in [*args, *kwargs.values()]):
            raise _NotLiteral
        try:
            if name == "datetime.date":
                return date(*args, **kwargs).isoformat()
            return datetime(*args, **kwargs).isoformat(sep=" ")
        except (TypeError, ValueError) as exc:
            raise _NotLiteral from exc

    def zone(self, node: ast.expr) -> str:
        """A time zone argument as an IANA name: a string, ``ZoneInfo("X")``, ``pytz.timezone("X")``, UTC."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        name = self.qualify(node.func if isinstance(node, ast.Call) else node) or ""
        if isinstance(node, ast.Call):
            if name == "dateutil.tz.tzutc" and not node.args and not node.keywords:
                return "UTC"
            takes_name = name in ("zoneinfo.ZoneInfo", "backports.zoneinfo.ZoneInfo", "pytz.timezone")
            if (
                (takes_name or name == "dateutil.tz.gettz")
                and len(node.args) == 1
                and not node.keywords
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                return node.args[0].value
        elif name in ("pytz.utc", "pytz.UTC", "datetime.timezone.utc", "datetime.UTC", "dateutil.tz.UTC"):
            return "UTC"
        raise _NotLiteral

    # -- the decorated functions ----------------------------------------------------------------------

    def schedules(self) -> Iterator[LegacySchedule]:
        """Every schedule decorator in the file, in source order."""
        for func, outer in _functions(self.tree):
            for deco in func.decorator_list:
                if not isinstance(deco, ast.Call):
                    continue
                if isinstance(deco.func, ast.Attribute) and deco.func.attr == "scheduled_job":
                    yield self._translate(func, outer, deco, _ScheduledJob(self, deco))
                elif self.qualify(deco.func) in CORE_DECORATORS:
                    yield self._translate(func, outer, deco, _CoreDecorator(self, deco))

    def _translate(
        self, func: _FunctionNode, outer: str | None, deco: ast.Call, reader: _DecoratorReader
    ) -> LegacySchedule:
        found = LegacySchedule(
            origin=Origin(self.path, deco.lineno, func.name),
            module=self.module,
            key_hint=func.name,
            job_id=None,
            schedule={"workflow_name": TODO},
        )
        if outer is not None:
            found.problems.append(
                f"it is defined inside `{outer}`, so it was only scheduled when that code ran; "
                "schedule it by hand if it did"
            )
        reader.read(found)
        if found.job_id:
            found.key_hint = found.job_id
        if isinstance(reader, _CoreDecorator):
            # orchestrator-core's shim: add_job(..., id=id or func.__name__, replace_existing=True).
            found.persisted_job_id = (found.job_id or func.name) if found.stores_jobs else None
        else:
            found.persisted_job_id = found.job_id  # APScheduler made up a random id otherwise
        workflow, user_inputs, body_problems = _Body(self).read(func)
        found.schedule["workflow_name"] = workflow or TODO
        if user_inputs is not None:
            found.schedule["user_inputs"] = user_inputs
        found.problems.extend(body_problems)
        return found

    def registered_names(self) -> tuple[bool, set[str], bool]:
        """ALL_SCHEDULERS in this module: (has the list, what it lists, could be read completely)."""
        has_list, complete = False, True
        names: set[str] = set()

        def collect(value: ast.expr) -> None:
            nonlocal complete
            if not isinstance(value, ast.List | ast.Tuple):
                complete = False
                return
            for elt in value.elts:
                qualified = self.qualify(elt)
                if qualified is None and isinstance(elt, ast.Name):
                    qualified = f"{self.module}.{elt.id}" if self.module else elt.id
                if qualified is None:
                    complete = False
                else:
                    names.add(qualified)

        for node in self.tree.body:
            if isinstance(node, ast.Assign) and any(_is_all_schedulers(t) for t in node.targets):
                has_list = True
                collect(node.value)
            elif isinstance(node, ast.AnnAssign | ast.AugAssign) and _is_all_schedulers(node.target):
                has_list = True
                if node.value is not None:
                    collect(node.value)
            elif (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Attribute)
                and _is_all_schedulers(node.value.func.value)
                and node.value.func.attr in ("append", "extend")
                and len(node.value.args) == 1
            ):
                has_list = True
                arg = node.value.args[0]
                collect(ast.List(elts=[arg]) if node.value.func.attr == "append" else arg)
        return has_list, names, complete


_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
# A body of one of these around the start_process call: `start_process(...)`, `return ...`, `pid = ...`.
_SIMPLE_STATEMENTS = (ast.Expr, ast.Return, ast.Assign)


def _functions(tree: ast.Module) -> Iterator[tuple[_FunctionNode, str | None]]:
    """Every function with the function it is nested in (None at module and class level)."""

    def visit(node: ast.AST, outer: str | None) -> Iterator[tuple[_FunctionNode, str | None]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield child, outer
                yield from visit(child, child.name)
            else:
                yield from visit(child, outer)

    yield from visit(tree, None)


def _is_all_schedulers(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "ALL_SCHEDULERS"


def _bind(
    module: _Module,
    call: ast.Call,
    positional: Sequence[str],
    keyword_only: Sequence[str] = (),
    *,
    var_keyword: bool = False,
    callee: str,
) -> tuple[dict[str, ast.expr], dict[str, ast.expr], list[str]]:
    """Match a call's arguments to a signature: (named, extra keywords, problems)."""
    named: dict[str, ast.expr] = {}
    extra: dict[str, ast.expr] = {}
    problems: list[str] = []
    for index, arg in enumerate(call.args):
        if isinstance(arg, ast.Starred):
            problems.append(f"`{module.text(arg)}` passes arguments only known at run time; {VALUE_ADVICE}")
        elif index < len(positional):
            named[positional[index]] = arg
        else:
            problems.append(f"{callee} takes at most {len(positional)} positional arguments; fix the call")
    for kw in call.keywords:
        if kw.arg is None:
            problems.append(f"`**{module.text(kw.value)}` passes arguments only known at run time; {VALUE_ADVICE}")
        elif kw.arg in named or kw.arg in extra:
            problems.append(f"{callee} gets `{kw.arg}` twice; fix the call")
        elif kw.arg in positional or kw.arg in keyword_only:
            named[kw.arg] = kw.value
        elif var_keyword:
            extra[kw.arg] = kw.value
        else:
            problems.append(f"{callee} has no argument `{kw.arg}`, so the decorator failed; fix the call")
    return named, extra, problems


# ---------------------------------------------------------------------------------------------------
# The two decorators


class _DecoratorReader:
    """Reads one decorator call into a LegacySchedule (trigger, name, job options)."""

    def __init__(self, module: _Module, call: ast.Call) -> None:
        self.module = module
        self.call = call

    def read(self, found: LegacySchedule) -> None:
        raise NotImplementedError

    def value(self, found: LegacySchedule, argument: str, node: ast.expr) -> Any:
        """The literal value of an argument, or TODO with the reason recorded."""
        try:
            return self.module.literal(node)
        except _NotLiteral:
            found.problems.append(self.module.not_literal(argument, node))
            return TODO

    def set_zone(self, found: LegacySchedule, node: ast.expr | None) -> None:
        """``timezone``: as given, else UTC with a note that the old job followed the host's zone."""
        if node is None:
            found.schedule["timezone"] = "UTC"
            found.field_comments["timezone"] = HOST_ZONE_NOTE
            return
        try:
            found.schedule["timezone"] = self.module.zone(node)
        except _NotLiteral:
            found.problems.append(self.module.not_literal("timezone", node))
            found.schedule["timezone"] = TODO

    def name_weekdays(self, found: LegacySchedule, *, from_crontab: bool = False) -> None:
        """Write a numeric cron ``day_of_week`` as names, keeping APScheduler's meaning (0 = Monday).

        The schedule file reads crontab text with crontab numbering (0 = Sunday) and warns about
        numbers, so the names keep the migrated job exactly as it ran and make the day plain to see.
        """
        kwargs = found.schedule.get("trigger_kwargs", {})
        if found.schedule.get("trigger") != "cron" or "day_of_week" not in kwargs:
            return
        original = kwargs["day_of_week"]
        named = _weekday_names(original)
        if named is None:
            return
        kwargs["day_of_week"] = named
        text = f"day_of_week {original!r} counts from 0 = Monday in APScheduler: it ran on {named}"
        if from_crontab:
            # from_crontab keeps APScheduler's numbering: "1-5" is Tuesday to Saturday, a classic slip.
            found.warn(f"{text}, not on the days crontab would mean; check this")
        else:
            found.notes.append(text)

    def check_trigger(self, found: LegacySchedule) -> None:
        """Build the real APScheduler trigger, as the decorator did, and report what it rejects."""
        trigger = found.schedule.get("trigger")
        kwargs = found.schedule.get("trigger_kwargs", {})
        zone = found.schedule.get("timezone")
        unknown = TODO in (zone, *kwargs.values()) or (trigger == "date" and not kwargs.get("run_date"))
        if trigger not in _TRIGGER_CLASSES or not isinstance(zone, str) or unknown:
            return  # a part is unknown and already reported: building it would only repeat that
        try:
            built = _TRIGGER_CLASSES[trigger](**kwargs, timezone=zone)
        except Exception as exc:  # the trigger classes raise TypeError, ValueError, ZoneInfo errors, ...
            found.problems.append(
                f"APScheduler rejects this trigger ({type(exc).__name__}: {exc}), so the decorator failed "
                "when its module was imported and never scheduled anything; fix the arguments by hand"
            )
            return
        if isinstance(built, DateTrigger) and kwargs.get("run_date") and built.run_date <= self.module.now:
            found.problems.append(
                f"its run_date {kwargs.get('run_date')} is in the past, so the job has already run or was "
                "missed; there is nothing left to schedule (delete the decorator)"
            )
            return
        # What APScheduler accepted, the schedule file may still refuse (an end_date in the past, a zero
        # interval APScheduler silently made 1 s, ...): the same checks as `schedules validate`, so every
        # active entry written validates. Its warnings are left to `validate` to report.
        try:
            checked = triggers.trigger_problems(trigger, kwargs, zone, now=self.module.now)
        except Exception as exc:  # a defect in a check must cost one schedule, not the whole migration
            found.problems.append(f"it could not be checked ({type(exc).__name__}: {exc}); write it by hand")
            return
        for severity, _, message in checked:
            if severity is Severity.ERROR:
                found.problems.append(f"it cannot be written as a schedule: {message}; fix it by hand")


class _ScheduledJob(_DecoratorReader):
    """APScheduler's ``scheduled_job``: trigger alias or instance, trigger arguments, job options."""

    def read(self, found: LegacySchedule) -> None:
        named, trigger_args, problems = _bind(
            self.module, self.call, _SCHEDULED_JOB_PARAMS, var_keyword=True, callee="scheduled_job"
        )
        found.problems.extend(problems)
        self._identity(found, named)
        self._options(found, named)
        from_crontab = self._trigger(found, named.get("trigger"), trigger_args)
        self.name_weekdays(found, from_crontab=from_crontab)
        self.check_trigger(found)

    def _identity(self, found: LegacySchedule, named: dict[str, ast.expr]) -> None:
        for argument in ("id", "name"):
            node = named.get(argument)
            if node is None:
                continue
            value = self.value(found, argument, node)
            if value is None or value == TODO:
                continue
            if not isinstance(value, str) or not value:
                found.problems.append(f"`{argument}={self.module.text(node)}` is not a non-empty string; fix it")
            elif argument == "id":
                found.job_id = value
            else:
                found.schedule["name"] = value

    def _options(self, found: LegacySchedule, named: dict[str, ast.expr]) -> None:
        for argument in ("misfire_grace_time", "max_instances"):
            node = named.get(argument)
            if node is None:
                continue
            value = self.value(found, argument, node)
            if value == TODO:
                continue
            if value is None and argument == "misfire_grace_time":
                found.problems.append(
                    "`misfire_grace_time=None` (run however late) has no equivalent here; "
                    "choose a number of seconds and write it into the YAML by hand"
                )
            elif type(value) is not int or value < 1:
                found.problems.append(
                    f"`{argument}={self.module.text(node)}` is not a positive integer, so APScheduler rejected "
                    "the job; fix it by hand"
                )
            else:
                found.schedule[argument] = value
        if (node := named.get("coalesce")) is not None:
            value = self.value(found, "coalesce", node)
            if isinstance(value, bool):
                found.schedule["coalesce"] = value
            elif value != TODO:
                found.problems.append(f"`coalesce={self.module.text(node)}` is not true or false; fix it by hand")
        for argument in ("args", "kwargs"):
            node = named.get(argument)
            if node is None:
                continue
            try:
                value = self.module.literal(node)
            except _NotLiteral:
                value = TODO
            if value not in (None, [], {}):
                found.problems.append(
                    f"`{argument}={self.module.text(node)}` passes arguments to the function, which a "
                    f"workflow schedule cannot; {BODY_ADVICE}"
                )
        if (node := named.get("next_run_time")) is not None:
            if isinstance(node, ast.Constant) and node.value is None:
                # APScheduler adds such a job paused: it exists, but never runs until resumed.
                found.schedule["enabled"] = False
                found.notes.append("the decorator added this job paused (next_run_time=None)")
            else:
                found.problems.append(
                    f"`next_run_time={self.module.text(node)}` sets a one-off first run that a schedule file "
                    "cannot express; drop it or start the workflow by hand"
                )

    def _trigger(self, found: LegacySchedule, node: ast.expr | None, args: dict[str, ast.expr]) -> bool:
        """Read the trigger into `found`; True when it came from ``CronTrigger.from_crontab``."""
        if node is None:
            found.problems.append("scheduled_job got no trigger, so the decorator failed; fix the call")
            found.schedule["trigger"] = TODO
            return False
        if isinstance(node, ast.Call):
            instance = self._trigger_instance(found, node, args)
            if instance is not None:
                return instance
        try:
            trigger = self.module.literal(node)
        except _NotLiteral:
            found.problems.append(self.module.not_literal("trigger", node))
            trigger = TODO
        if trigger is None:
            # APScheduler's default: a date trigger with run_date=now, i.e. "once at every start".
            trigger = "date"
        if trigger != TODO and trigger not in _TRIGGER_CLASSES:
            found.problems.append(
                f"`trigger={self.module.text(node)}` is not one of {', '.join(_TRIGGER_CLASSES)}; "
                "write the trigger by hand"
            )
        found.schedule["trigger"] = trigger
        kwargs = {name: self.value(found, name, arg) for name, arg in args.items() if name != "timezone"}
        found.schedule["trigger_kwargs"] = kwargs
        self.set_zone(found, args.get("timezone"))
        if trigger == "date" and kwargs.get("run_date") is None:
            found.problems.append(
                "a date trigger without run_date ran once at every start of the scheduler, which a "
                "schedule file cannot express; start the workflow from your deployment instead"
            )
        return False

    def _trigger_instance(self, found: LegacySchedule, node: ast.Call, ignored: dict[str, ast.expr]) -> bool | None:
        """``trigger=CronTrigger(...)`` / ``CronTrigger.from_crontab(...)``: read it into `found`.

        Returns None when `node` is not a trigger class at all, else whether it was ``from_crontab``.
        """
        name = self.module.qualify(node.func) or ""
        parts = name.split(".")
        from_crontab = parts[-1] == "from_crontab"
        class_name = parts[-2] if from_crontab and len(parts) > 1 else parts[-1]
        if parts[0] != "apscheduler" or class_name not in _TRIGGER_INSTANCES:
            if class_name.endswith("Trigger"):
                found.problems.append(
                    f"`trigger={self.module.text(node)}` is not a trigger this tool can read; write the trigger by hand"
                )
                found.schedule["trigger"] = TODO
                return False
            return None
        trigger, positional, keyword_only = _TRIGGER_INSTANCES[class_name]
        if from_crontab:
            if class_name != "CronTrigger":
                return None
            named, _, problems = _bind(self.module, node, ("expr", "timezone"), callee="from_crontab")
            kwargs = self._crontab(found, named.get("expr"))
        else:
            named, _, problems = _bind(self.module, node, positional, keyword_only, callee=class_name)
            kwargs = {k: self.value(found, k, v) for k, v in named.items() if k != "timezone"}
        found.problems.extend(problems)
        found.schedule["trigger"] = trigger
        found.schedule["trigger_kwargs"] = kwargs
        self.set_zone(found, named.get("timezone"))
        if ignored:
            # APScheduler ignores trigger arguments next to a trigger instance; so does the migration.
            listed = ", ".join(f"{k}=" for k in ignored)
            found.warn(f"{listed} had no effect: APScheduler ignores trigger arguments next to a trigger object")
        return from_crontab

    def _crontab(self, found: LegacySchedule, node: ast.expr | None) -> dict[str, Any]:
        # APScheduler's from_crontab keeps its own weekday numbering (0 = Monday), so the five fields are
        # written out as cron fields rather than as a `crontab:` string, which this project reads with
        # crontab numbering (0 = Sunday).
        if node is None:
            found.problems.append("from_crontab got no expression; fix the call")
            return {}
        value = self.value(found, "expr", node)
        if value == TODO:
            return {}
        fields = value.split() if isinstance(value, str) else []
        if len(fields) != len(_CRONTAB_FIELDS):
            found.problems.append(
                f"`{self.module.text(node)}` is not a 5-field crontab expression, so APScheduler rejected it; "
                "fix it by hand"
            )
            return {}
        return dict(zip(_CRONTAB_FIELDS, fields, strict=True))


class _CoreDecorator(_DecoratorReader):
    """orchestrator-core's deprecated ``scheduler(name, time_unit, period=1, at=None, *, id=None)``."""

    def read(self, found: LegacySchedule) -> None:
        named, _, problems = _bind(self.module, self.call, _CORE_PARAMS, _CORE_KEYWORD_ONLY, callee="scheduler")
        found.problems.extend(problems)
        values: dict[str, Any] = {"period": 1, "at": None, "id": None}
        for argument in ("name", "time_unit", "period", "at", "id"):
            if argument in named:
                values[argument] = self.value(found, argument, named[argument])
        for required in ("name", "time_unit"):
            if required not in named:
                found.problems.append(f"scheduler() got no `{required}`, so the decorator failed; fix the call")
        for argument in ("name", "time_unit", "at", "id"):
            value = values.get(argument)
            # Only `at` and `id` may be None; `time_unit` must be a string, and a name, when given, a
            # non-empty one (APScheduler raised TypeError for "", and time_unit.lower() failed on None).
            bad = (value is None and argument == "time_unit" and argument in named) or (
                value not in (None, TODO) and (not isinstance(value, str) or (argument == "name" and not value))
            )
            if bad:
                found.problems.append(
                    f"`{argument}={self.module.text(named[argument])}` is not a usable string, so the "
                    "decorator failed; fix it by hand"
                )
                values[argument] = TODO
        if isinstance(values.get("name"), str) and values["name"] != TODO:
            found.schedule["name"] = values["name"]
        if isinstance(values["id"], str) and values["id"] not in ("", TODO):
            found.job_id = values["id"]
        self._trigger(found, values.get("time_unit", TODO), values["period"], values["at"], self._era(named))
        self.set_zone(found, None)  # the decorator never set a zone
        self.check_trigger(found)

    def _era(self, named: dict[str, ast.expr]) -> Era | None:
        """The decorator's meaning when the code itself tells; else the one given or found for the tree."""
        if (self.module.qualify(self.call.func) or "").startswith("orchestrator.core."):
            return Era.APSCHEDULER_SHIM  # orchestrator.core.* is the 5.x layout
        if "id" in named or "scheduler" in named:
            return Era.APSCHEDULER_SHIM  # the decorator before 4.4 had no keyword-only parameters
        return self.module.era

    def _trigger(self, found: LegacySchedule, time_unit: Any, period: Any, at: Any, era: Era | None) -> None:
        found.schedule["trigger"] = TODO
        found.schedule["trigger_kwargs"] = {}
        if TODO in (time_unit, at, period) or time_unit is None:
            return
        readings = {
            Era.SCHEDULE_PACKAGE: legacy_semantics.schedule_package_reading(time_unit, period, at),
            Era.APSCHEDULER_SHIM: legacy_semantics.shim_reading(time_unit, period, at),
        }
        if era is None:
            old, new = readings[Era.SCHEDULE_PACKAGE], readings[Era.APSCHEDULER_SHIM]
            if not old.same_schedule(new):
                found.problems.append(
                    "its meaning depends on the orchestrator-core version: "
                    f"{Era.SCHEDULE_PACKAGE.label}: {old}; {Era.APSCHEDULER_SHIM.label}: {new}; "
                    "rerun with --orchestrator-version (e.g. 4.2 or 4.8)"
                )
                return
            era = Era.APSCHEDULER_SHIM
        found.era = era
        reading = readings[era]
        if era is Era.SCHEDULE_PACKAGE:
            found.stores_jobs = False  # the `schedule` package kept its jobs in memory
        if reading.trigger is None:
            found.problems.append(str(reading.problem))
            return
        found.schedule["trigger"] = reading.trigger
        found.schedule["trigger_kwargs"] = dict(reading.trigger_kwargs)
        for note in reading.notes:
            if note.startswith("at="):
                found.warn(note)
            else:
                found.notes.append(note)


# ---------------------------------------------------------------------------------------------------
# The body: which workflow does the function start?


class _Body:
    """Reads a decorated function's body; only ``start_process("literal")`` is migrated."""

    def __init__(self, module: _Module) -> None:
        self.module = module

    def read(self, func: _FunctionNode) -> tuple[str | None, list[Any] | None, list[str]]:
        """(workflow name, user_inputs, problems) of the body."""
        statements = self._essential(func.body)
        if isinstance(statements, str):
            return None, None, [statements]
        if not statements:
            return None, None, [f"its body does not start a workflow; {BODY_ADVICE}"]
        first = statements[0]
        if len(statements) > 1 or not isinstance(first, _SIMPLE_STATEMENTS):
            # Point at the construct that makes it more than a start_process call: a loop, a condition...
            offender = next((s for s in statements if not isinstance(s, _SIMPLE_STATEMENTS)), None)
            if offender is None:
                offender = statements[1]
            return None, None, [f"its body {_describe(offender)} (line {offender.lineno}); {BODY_ADVICE}"]
        call = first.value
        if not isinstance(call, ast.Call):
            return None, None, [f"its body does not start a workflow (line {first.lineno}); {BODY_ADVICE}"]
        return self._start_process(call)

    def _essential(self, body: list[ast.stmt]) -> list[ast.stmt] | str:
        """The statements that matter: without docstring and log calls; a database scope is unwrapped."""
        kept: list[ast.stmt] = []
        for index, stmt in enumerate(body):
            is_docstring = (
                index == 0
                and isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            )
            if is_docstring:
                continue
            if isinstance(stmt, ast.Pass) or _is_log_call(stmt):
                continue
            if isinstance(stmt, ast.With) and self._is_database_scope(stmt):
                # orchestrator-core's starter opens the same scope around start_process.
                inner = self._essential(stmt.body)
                if isinstance(inner, str):
                    return inner
                kept.extend(inner)
                continue
            kept.append(stmt)
        return kept

    def _is_database_scope(self, stmt: ast.With) -> bool:
        return all(
            isinstance(item.context_expr, ast.Call)
            and isinstance(item.context_expr.func, ast.Attribute | ast.Name)
            and _last_name(item.context_expr.func) == "database_scope"
            and item.optional_vars is None
            and not item.context_expr.args
            and not item.context_expr.keywords
            for item in stmt.items
        )

    def _start_process(self, call: ast.Call) -> tuple[str | None, list[Any] | None, list[str]]:
        line = call.lineno
        called = self.module.qualify(call.func)
        # The imported name decides, whatever the local alias (`start_process as sp`).
        short = called.rsplit(".", 1)[-1] if called else _last_name(call.func)
        if short != "start_process":
            return (
                None,
                None,
                [f"its body calls `{self.module.text(call.func)}` (line {line}), not start_process; {BODY_ADVICE}"],
            )
        if called is None and isinstance(call.func, ast.Name) and call.func.id in self.module.local_functions:
            return (
                None,
                None,
                [
                    f"its body calls the module's own start_process (line {line}), not orchestrator-core's; "
                    f"{BODY_ADVICE}"
                ],
            )
        if called is not None and called.split(".")[0] != "orchestrator":
            return (
                None,
                None,
                [
                    f"its body calls start_process from `{called.rsplit('.', 1)[0]}` (line {line}), not "
                    f"orchestrator-core's; {BODY_ADVICE}"
                ],
            )
        named, _, problems = _bind(self.module, call, _START_PROCESS_PARAMS, callee="start_process")
        problems = [f"{p} (line {line})" for p in problems]
        workflow: str | None = None
        user_inputs: list[Any] | None = None
        node = named.get("workflow_key")
        if node is None:
            problems.append(f"start_process gets no workflow name (line {line}); fix the call")
        else:
            try:
                value = self.module.literal(node)
            except _NotLiteral:
                value = None
                problems.append(self._dynamic("the workflow name", node))
            if isinstance(value, str) and value:
                workflow = value
            elif value is not None:
                problems.append(f"the workflow name `{self.module.text(node)}` is not a string (line {line})")
        if (node := named.get("user_inputs")) is not None:
            try:
                inputs = self.module.literal(node)
            except _NotLiteral:
                problems.append(self._dynamic("user_inputs", node))
            else:
                if isinstance(inputs, list) and all(isinstance(i, dict) for i in inputs):
                    user_inputs = inputs
                elif inputs is not None:
                    problems.append(f"user_inputs `{self.module.text(node)}` is not a list of mappings (line {line})")
        if (node := named.get("user")) is not None:
            try:
                user = self.module.literal(node)
            except _NotLiteral:
                user = TODO
            if user not in (None, SYSTEM_USER):
                problems.append(
                    f"`user={self.module.text(node)}` starts the workflow as another user than the scheduler's "
                    f"{SYSTEM_USER} (line {line}); {BODY_ADVICE}"
                )
        for argument in ("user_model", "broadcast_func"):
            node = named.get(argument)
            if node is not None and not (isinstance(node, ast.Constant) and node.value is None):
                problems.append(f"`{argument}=` is passed to start_process (line {line}); {BODY_ADVICE}")
        return workflow, user_inputs, problems

    def _dynamic(self, what: str, node: ast.expr) -> str:
        source = "reads the environment" if self.module._reads_environment(node) else "is computed at run time"
        return f"{what} `{self.module.text(node)}` {source} (line {node.lineno}); {BODY_ADVICE}"


def _weekday_names(value: Any) -> str | None:
    """A ``day_of_week`` of APScheduler numbers as weekday names; None when no part is a plain number."""
    text = str(value) if type(value) is int else value
    if not isinstance(text, str):
        return None
    parts: list[str] = []
    changed = False
    for part in text.split(","):
        match = re.fullmatch(r"\s*([0-6])(?:-([0-6]))?\s*", part)
        if match is None:
            parts.append(part.strip())  # names, '*', steps: kept as written
            continue
        first = int(match[1])
        last = int(match[2]) if match[2] is not None else None
        if last is not None and last < first:
            return None  # APScheduler rejects it; the trigger check reports that
        parts.append(_WEEKDAYS[first] + (f"-{_WEEKDAYS[last]}" if last is not None else ""))
        changed = True
    return ",".join(parts) if changed else None


def _describe(stmt: ast.stmt) -> str:
    """What a statement that stops the migration is, in words."""
    kinds: list[tuple[type[ast.stmt] | tuple[type[ast.stmt], ...], str]] = [
        ((ast.For, ast.AsyncFor), "has a `for` loop"),
        (ast.While, "has a `while` loop"),
        (ast.If, "has a condition (`if`)"),
        ((ast.Try, ast.TryStar), "has a `try` block"),
        ((ast.With, ast.AsyncWith), "has a `with` block"),
        (ast.Match, "has a `match` statement"),
        ((ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef), "defines a function or class"),
    ]
    for kind, text in kinds:
        if isinstance(stmt, kind):
            return text
    return "does more than call start_process once"


def _is_log_call(stmt: ast.stmt) -> bool:
    # `logger.info(...)`, `log.warning(...)`, `structlog.get_logger().info(...)`: logging only, no effect
    # on what is scheduled, so it may stand around the start_process call.
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return False
    func = stmt.value.func
    if not (isinstance(func, ast.Attribute) and func.attr in _LOG_METHODS):
        return False
    receiver = func.value.func if isinstance(func.value, ast.Call) else func.value
    name = _last_name(receiver) if isinstance(receiver, ast.Name | ast.Attribute) else None
    return name is not None and "log" in name.lower()


def _last_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


# ---------------------------------------------------------------------------------------------------
# Across modules


def _check_registration(modules: list[_Module], result: ScanResult) -> None:
    """Warn about decorated functions that an ALL_SCHEDULERS list should name but does not.

    Before orchestrator-core 4.3 only the functions in ALL_SCHEDULERS ran; a decorated function missing
    from it may never have been scheduled, so migrating it could start something new. A list speaks
    for its own module, for the package below it (a list in ``__init__.py``), and for the modules it
    takes functions from; decorators elsewhere are not judged by it.
    """
    listed: set[str] = set()
    scopes: set[str] = set()  # modules a list speaks for
    packages: set[str] = set()  # packages a list speaks for, with everything below them
    for module in modules:
        has_list, names, complete = module.registered_names()
        if not has_list:
            continue
        if not complete:
            return  # part of a list is computed: no way to tell what is missing
        listed |= names
        scopes.add(module.module)
        scopes.update(name.rsplit(".", 1)[0] for name in names if "." in name)
        if module.is_package:
            packages.add(module.module)

    def in_scope(module: str) -> bool:
        return any(_same_name(module, s) for s in scopes) or any(module.startswith(p + ".") for p in packages)

    for schedule in result.schedules:
        qualified = f"{schedule.module}.{schedule.origin.function}"
        if not in_scope(schedule.module) or any(_same_name(qualified, name) for name in listed):
            continue
        schedule.notes.append("not listed in ALL_SCHEDULERS: check that the old scheduler really ran it")
        result.findings.append(
            Finding(
                schedule.origin.path,
                schedule.origin.line,
                f"warning: {schedule.origin.function} is decorated but not listed in ALL_SCHEDULERS, so it "
                "may never have run; check before merging",
                False,
            )
        )


def _same_name(ours: str, listed: str) -> bool:
    # Module names depend on the directory given to --from; an import names the full package path.
    return ours == listed or listed.endswith("." + ours) or ours.endswith("." + listed)


def _check_duplicate_ids(result: ScanResult) -> None:
    """Two decorators with one job id were one job: APScheduler kept the last one it registered."""
    first: dict[str, LegacySchedule] = {}
    for schedule in result.schedules:
        if schedule.job_id is None:
            continue
        earlier = first.setdefault(schedule.job_id, schedule)
        if earlier is schedule:
            continue
        message = (
            f"warning: job id '{schedule.job_id}' is also used at {earlier.origin.path}:{earlier.origin.line}; "
            "APScheduler replaced one job with the other, but both are migrated (remove one)"
        )
        result.findings.append(Finding(schedule.origin.path, schedule.origin.line, message, False))
        schedule.notes.append(f"job id '{schedule.job_id}' is also used at {earlier.origin}; keep only one")
