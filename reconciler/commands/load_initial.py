"""`schedules load-initial-schedule`: legacy decorators and core's initial schedules → schedule files.

The command in three steps, pure in the middle:

1. `legacy.scan` reads the ``--from`` sources with `ast` (never imports them);
2. `build_outputs` turns the findings (and orchestrator-core's initial schedules) into file texts —
   keys made unique across everything written, one file per source module plus ``core.yaml``;
3. `run` compares those texts with ``--out`` and writes, refuses (a changed file without ``--force``),
   or only reports (``--check``).

Generated files are meant to be committed, so the output is deterministic: the same sources give the
same bytes. No CLI framework here: `run` returns an exit code and report lines for ``cli`` to print.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from reconciler import legacy, legacy_semantics, yaml_writer
from reconciler.exit_codes import CommandResult
from reconciler.initial import CORE_FILENAME, CORE_INITIAL_SCHEDULES, CORE_ORIGIN
from reconciler.yaml_writer import Entry

DEFAULT_OUT = Path("schedules.d")

EXIT_OK = 0
EXIT_FAILED = 1  # a file would change (--check), a changed file was not overwritten, --strict and a stub
EXIT_USAGE = 2  # a --from path does not exist (the same code a CLI parser uses for bad arguments)


class Level(StrEnum):
    """How a report line should be shown: info on stdout, warnings and errors on stderr."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class ReportLine:
    """One line of the command's output."""

    level: Level
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class OutputFile:
    """A schedule file to write: its name in ``--out``, its text, and what it holds."""

    name: str
    text: str
    schedules: int
    stubs: int


@dataclass
class Result(CommandResult):
    """What `run` did: the exit code and the report, in the order it should be printed.

    `lines` keeps each line's level; `add` also files it on stdout (info) or stderr (warnings, errors).
    """

    lines: list[ReportLine] = field(default_factory=list)
    files: list[OutputFile] = field(default_factory=list)

    def add(self, line: ReportLine) -> None:
        self.lines.append(line)
        (self.out if line.level is Level.INFO else self.err).append(line.text)

    def add_all(self, lines: Iterable[ReportLine]) -> None:
        for line in lines:
            self.add(line)


def shown_path(path: Path, base: Path) -> str:
    """`path` as the report shows it: relative to `base` when below it, else absolute."""
    absolute = Path(os.path.abspath(base / path))
    try:
        return absolute.relative_to(base).as_posix()
    except ValueError:
        return absolute.as_posix()


def run(
    sources: Sequence[Path] = (),
    out: Path = DEFAULT_OUT,
    *,
    include_core: bool = True,
    force: bool = False,
    check: bool = False,
    strict: bool = False,
    now: datetime | None = None,
    cwd: Path | None = None,
    orchestrator_version: str | None = None,
) -> Result:
    """Write YAML for core's initial schedules and the legacy decorators found in `sources` into `out`.

    `sources` are the ``--from`` files or directories; `include_core` is false for ``--no-core``.
    An existing file whose content differs is only replaced with `force`; otherwise nothing at all is
    written (never half a migration) and the exit code is 1. With `check` nothing is written and the
    exit code is 1 when any file would be created or changed. With `strict` the exit code is 1 when
    a decorator could not be migrated. `now` (default: the clock) decides whether a ``date`` trigger
    lies in the past; `cwd` (default: the working directory) is what paths are shown relative to.
    `orchestrator_version` (e.g. ``4.2``, ``4.8``, ``5.5``) says what ``@scheduler(...)`` meant; without
    it, the version pinned or installed in the sources' tree is used, else a call whose two meanings
    differ is reported at its line with both, and not migrated.
    """
    base = Path(os.path.abspath(cwd or Path.cwd()))

    def display(path: Path) -> str:
        return shown_path(path, base)

    result = Result(EXIT_OK)
    missing = [s for s in sources if not (base / s).exists()]
    if missing:
        for source in missing:
            result.add(ReportLine(Level.ERROR, f"{display(source)}: no such file or directory"))
        result.exit_code = EXIT_USAGE
        return result

    try:
        era, version_line = _era(orchestrator_version, [base / s for s in sources], display)
    except ValueError as exc:
        result.add(ReportLine(Level.ERROR, f"--orchestrator-version: {exc}"))
        result.exit_code = EXIT_USAGE
        return result
    if version_line:
        result.add(ReportLine(Level.INFO, version_line))
    scanned = legacy.scan([base / s for s in sources], now=now or datetime.now(UTC), display=display, era=era)
    out_dir = base / out
    result.files = build_outputs(
        scanned.schedules,
        include_core=include_core,
        schema_ref=yaml_writer.schema_reference(out_dir),
    )
    blocking = any(f.blocking for f in scanned.findings)
    for finding in scanned.findings:
        level = Level.ERROR if finding.blocking and strict else Level.WARNING
        result.add(ReportLine(level, str(finding)))

    changed = _compare(result.files, out_dir)
    failed = _apply(result, changed, out_dir, display, force=force, check=check)
    result.add(_summary(scanned, result.files, include_core))
    if failed or (strict and blocking):
        result.exit_code = EXIT_FAILED
    return result


# A pinned requirement (`orchestrator-core==4.2.0`, `~=4.2`), a lock file entry, or an installed dist-info.
_PIN = re.compile(r"orchestrator[-_]core\s*(?:\[[^\]]*\])?\s*(?:==|~=|===)\s*v?(\d+\.\d+(?:\.\d+)?)", re.IGNORECASE)
_LOCKED = re.compile(r'name\s*=\s*"orchestrator-core"\s*\n\s*version\s*=\s*"(\d+\.\d+(?:\.\d+)?)"')
_DIST_INFO = re.compile(r"^orchestrator_core-(\d+\.\d+(?:\.\d+)?)\.dist-info$")
_REQUIREMENT_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "poetry.lock", "uv.lock", "Pipfile.lock")


def _found_versions(folder: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    candidates = [folder / n for n in _REQUIREMENT_FILES] + sorted(folder.glob("requirements*.txt"))
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found += [(m.group(1), path) for m in (*_PIN.finditer(text), *_LOCKED.finditer(text))]
    for venv in (".venv", "venv"):
        for site in sorted(folder.glob(f"{venv}/lib/python*/site-packages")):
            for entry in sorted(site.iterdir()):
                match = _DIST_INFO.match(entry.name)
                if match:
                    found.append((match.group(1), entry))
    return found


def _era(
    given: str | None, sources: Sequence[Path], display: Callable[[Path], str]
) -> tuple[legacy_semantics.Era | None, str | None]:
    """The meaning of ``@scheduler(...)``: from `given`, else from the orchestrator-core the sources pin
    or have installed (their folders and the folders above them); None when that is not one version."""
    if given is not None:
        return legacy_semantics.era_of_version(given), None
    found: dict[str, Path] = {}
    for source in sources:
        folder = source if source.is_dir() else source.parent
        for above in [folder.resolve(), *folder.resolve().parents]:
            for version, where in _found_versions(above):
                found.setdefault(version, where)
            if (above / ".git").exists():
                break  # the repository's root: what lies above it belongs to something else
    eras = {legacy_semantics.era_of_version(v) for v in found}
    if len(eras) != 1:
        return None, None
    version, where = next(iter(found.items()))
    era = eras.pop()
    return era, f"orchestrator-core {version} ({display(where)}): @scheduler(...) read as {era.label}"


def build_outputs(
    schedules: Sequence[legacy.LegacySchedule],
    *,
    include_core: bool,
    schema_ref: str,
) -> list[OutputFile]:
    """The files to write, in order: ``core.yaml`` first, then one per source module (scan order).

    Keys are assigned here, across all files, so they are unique in the whole output: core's first,
    then each decorator's in source order; a collision gets ``-2``, ``-3``, ... (stubs reserve theirs
    too, so finishing a stub by hand never collides).
    """
    taken: set[str] = set()
    names: set[str] = set()
    files: list[OutputFile] = []
    if include_core:
        entries = []
        for initial in CORE_INITIAL_SCHEDULES:
            taken.add(initial.key)
            entries.append(
                Entry(
                    initial.as_schedule("UTC"),
                    comments=[f"from orchestrator-core INITIAL_SCHEDULES: {initial.name}"],
                    field_comments={"timezone": legacy.HOST_ZONE_NOTE},
                )
            )
        header = [
            "orchestrator-core's initial schedules, as `python main.py scheduler load-initial-schedule` "
            f"registers them ({CORE_ORIGIN}).",
            "Written by `schedules load-initial-schedule`; from now on this file is what is scheduled.",
        ]
        text = yaml_writer.render_file(entries, schema_ref=schema_ref, header=header)
        names.add(CORE_FILENAME)
        files.append(OutputFile(CORE_FILENAME, text, len(entries), 0))

    by_module: dict[tuple[str, str], list[legacy.LegacySchedule]] = {}
    for schedule in schedules:  # dicts keep insertion order: modules stay in scan order
        by_module.setdefault((schedule.origin.path, schedule.module), []).append(schedule)
    for (path, module), found in by_module.items():
        entries = [_entry(s, taken) for s in found]
        header = [f"Migrated from {path} by `schedules load-initial-schedule`.", *_advice(found)]
        name = _unique_filename(_module_filename(module), names)
        names.add(name)
        text = yaml_writer.render_file(entries, schema_ref=schema_ref, header=header)
        stubs = sum(not s.migrated for s in found)
        files.append(OutputFile(name, text, len(found) - stubs, stubs))
    return files


def _entry(schedule: legacy.LegacySchedule, taken: set[str]) -> Entry:
    key = legacy.unique_key(legacy.slugify(schedule.key_hint), taken)
    taken.add(key)
    comments = [f"from {schedule.origin}"]
    comments += [f"TODO cannot migrate: {p}" for p in schedule.problems]
    comments += schedule.notes
    fields: dict[str, Any] = {"key": key, **schedule.schedule}
    if schedule.migrated and schedule.persisted_job_id:
        # Its scheduler stored the job under this id: the reconcile takes that row over, so one job remains.
        fields["replaces"] = {
            "job_id": schedule.persisted_job_id,
            "decorator": f"{schedule.origin.path}:{schedule.origin.line}",
        }
    return Entry(
        fields,
        comments=comments,
        field_comments={k: v for k, v in schedule.field_comments.items() if fields.get(k) is not None},
        commented_out=not schedule.migrated,
    )


def _lines(schedules: Sequence[legacy.LegacySchedule]) -> str:
    return ", ".join(f"line {s.origin.line} ({s.origin.function})" for s in schedules)


def _advice(found: Sequence[legacy.LegacySchedule]) -> list[str]:
    """What to do with each decorator of one file, true for that file: delete only what was migrated."""
    migrated = [s for s in found if s.migrated]
    stubs = [s for s in found if not s.migrated]
    path = found[0].origin.path
    advice: list[str] = []
    if migrated:
        advice.append(
            f"Once this is applied, delete the decorator{'s' if len(migrated) > 1 else ''} migrated here "
            f"from {path}: {_lines(migrated)}; while a decorator stays, its scheduler registers its job again."
        )
        taken_over = [s for s in migrated if s.persisted_job_id]
        if taken_over:
            advice.append(
                "The apply also removes the job such a decorator stored (see `replaces:`), when it is there, in "
                "the same transaction, keeping its next run: one job remains."
            )
        anonymous = [s for s in migrated if not s.persisted_job_id and s.stores_jobs]
        if anonymous:
            advice.append(
                f"{_lines(anonymous)} had no `id=`: a job it stored has a random id; `schedules show-schedule` "
                "lists it as `decorator`, remove it by hand."
            )
    if stubs:
        advice.append(
            f"Keep the decorator{'s' if len(stubs) > 1 else ''} at {path} {_lines(stubs)} until "
            f"{'its' if len(stubs) == 1 else 'each'} TODO below is done: deleting it now stops that schedule."
        )
    return advice


def _module_filename(module: str) -> str:
    # The loader skips files starting with '_' or '.', so those never start a generated name.
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", module).lstrip("._-")
    return f"{name or 'schedules'}.yaml"


def _unique_filename(name: str, taken: set[str]) -> str:
    stem = name.removesuffix(".yaml")
    candidate, n = name, 2
    while candidate.lower() in {t.lower() for t in taken}:  # case-insensitive file systems
        candidate = f"{stem}-{n}.yaml"
        n += 1
    return candidate


class _Change(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    SAME = "unchanged"


def _compare(files: Sequence[OutputFile], out_dir: Path) -> list[tuple[OutputFile, _Change]]:
    compared: list[tuple[OutputFile, _Change]] = []
    for output in files:
        target = out_dir / output.name
        if not target.exists():
            compared.append((output, _Change.CREATE))
            continue
        try:
            same = target.read_bytes() == output.text.encode("utf-8")
        except OSError:
            same = False  # unreadable (a directory, no permission): writing it will report the reason
        compared.append((output, _Change.SAME if same else _Change.UPDATE))
    return compared


def _apply(
    result: Result,
    changes: list[tuple[OutputFile, _Change]],
    out_dir: Path,
    display: Callable[[Path], str],
    *,
    force: bool,
    check: bool,
) -> bool:
    """Write (or, with `check`, only report) the files; True when the command must exit 1."""
    pending = [(f, c) for f, c in changes if c is not _Change.SAME]
    if check:
        for output, change in changes:
            verb = "unchanged" if change is _Change.SAME else f"would {change.value}"
            level = Level.INFO if change is _Change.SAME else Level.ERROR
            result.add(ReportLine(level, f"{verb} {display(out_dir / output.name)}"))
        return bool(pending)
    conflicts = [f for f, c in pending if c is _Change.UPDATE and not force]
    if conflicts:
        for output in conflicts:
            result.add(
                ReportLine(
                    Level.ERROR,
                    f"{display(out_dir / output.name)} exists and differs from what would be written; "
                    "not overwritten (use --force)",
                )
            )
        result.add(ReportLine(Level.ERROR, "nothing was written"))
        return True
    failed = False
    for output, change in changes:
        target = out_dir / output.name
        shown = display(target)
        if change is _Change.SAME:
            result.add(ReportLine(Level.INFO, f"unchanged {shown}"))
            continue
        try:
            _write(target, output.text)
        except OSError as exc:
            result.add(ReportLine(Level.ERROR, f"{shown}: cannot write: {exc.strerror or exc}"))
            failed = True
            continue
        verb = "created" if change is _Change.CREATE else "overwrote"
        result.add(ReportLine(Level.INFO, f"{verb} {shown} ({_counts(output)})"))
    return failed


def write_outputs(
    result: Result,
    files: Sequence[OutputFile],
    out_dir: Path,
    display: Callable[[Path], str],
    *,
    force: bool,
    check: bool,
) -> bool:
    """Write `files` into `out_dir` as `run` does (refuse a changed file without `force`; only report
    with `check`), adding the report lines to `result`; True when the command must exit 1.

    Public so that `schedules import` treats existing files exactly like this command does.
    """
    return _apply(result, _compare(files, out_dir), out_dir, display, force=force, check=check)


def _write(target: Path, text: str) -> None:
    # Write a sibling and rename it over the target, so a crash never leaves half a file behind (the
    # temporary name starts with '.', which the loader skips).
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_bytes(text.encode("utf-8"))
    os.replace(temporary, target)


def _counts(output: OutputFile) -> str:
    text = f"{output.schedules} schedule{'s' if output.schedules != 1 else ''}"
    if output.stubs:
        text += f", {output.stubs} TODO stub{'s' if output.stubs != 1 else ''}"
    return text


def _summary(scanned: legacy.ScanResult, files: Sequence[OutputFile], include_core: bool) -> ReportLine:
    found = len(scanned.schedules)
    stubs = sum(not s.migrated for s in scanned.schedules)
    parts = [
        f"{found} decorator schedule{'s' if found != 1 else ''} in {scanned.files} Python file(s)",
        f"{found - stubs} migrated",
    ]
    if stubs:
        parts.append(f"{stubs} not migrated (TODO stubs written)")
    if scanned.unreadable:
        parts.append(f"{scanned.unreadable} file(s) unreadable")
    if include_core:
        parts.append(f"{len(CORE_INITIAL_SCHEDULES)} core schedules")
    if not files:
        parts.append("nothing to write")
    return ReportLine(Level.INFO, ", ".join(parts))
