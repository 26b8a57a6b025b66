"""Which orchestrator-core generation a database holds, and what that generation writes and reads.

Two generations read the schedule tables differently (each fact seen on databases migrated by the release):

| | 4.7, 4.8 | 5.0 – 5.5 |
|---|---|---|
| job func | `orchestrator.schedules.service:run_start_workflow_scheduler_task` | `orchestrator.core.schedules…` |
| job kwargs | `{"workflow_name"}`: its function takes no `user_inputs` | `{"workflow_name", "user_inputs"}` |
| `alembic_version` head | `9736496e3eba` (4.7.2), `d69e10434a04` (4.8.2) | `fbc16e410bc6` and later |
| linker `uq_workflow_schedule` | the PRIMARY KEY | UNIQUE, plus index `ix_workflows_apscheduler_jobs_workflow_id` |
| `engine_settings.running_processes` | present | dropped (fbc16e410bc6) |

Each generation's job store deletes a row whose func it cannot import, so a row of the other generation is
lost on its first read: writing the right one is not cosmetic. Detection reads only (catalog queries and one
count), walks every marker (a project with its own data migrations may hold only its own revision ids in
`alembic_version`), and refuses when they disagree or none is present; `--orchestrator-version` (env
`ORCHESTRATOR_VERSION`) decides instead. The embedded SQLite default (tables the reconciler created, no
`alembic_version`) counts as 5.x. Below 4.7 there is no linker table: schedules lived in code.

Detection runs plain SQL through `reads.Reader` (a dry run never imports SQLAlchemy); the pure core may use the
generation values defined here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from reconciler.exit_codes import CommandError
from reconciler.jobstate import ORCHESTRATOR_4_FUNC, ORCHESTRATOR_FUNC

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from reconciler.plan import PlanSettings
    from reconciler.reads import Reader

ENV_VARIABLE = "ORCHESTRATOR_VERSION"
OVERRIDE_HINT = "pass --orchestrator-version (e.g. 4.8 or 5.5; env ORCHESTRATOR_VERSION)"
TOO_OLD = "orchestrator-core < 4.7 keeps schedules in code; upgrade, or use `load-initial-schedule` to prepare the YAML"

#: orchestrator-core's own revision ids that name a generation when they are a head of `alembic_version`.
#: 961eddbd4c13 (4.7.0/4.7.1, the linker table), 9736496e3eba (4.7.2), d69e10434a04 (4.8.x), aa1b92d0d07d (the
#: last one before 5.0 drops running_processes); 5.x: fbc16e410bc6 onwards.
ALEMBIC_HEADS: dict[str, int] = {
    "961eddbd4c13": 4,
    "9736496e3eba": 4,
    "d69e10434a04": 4,
    "aa1b92d0d07d": 4,
    "fbc16e410bc6": 5,
    "262744958e0c": 5,
    "be3163f7c49d": 5,
    "cab8b6a0ac92": 5,
    "f4a7c9e21b08": 5,
    "ca79fd834ba0": 5,
    "544fd845554d": 5,
}
LINKER_TABLE = "workflows_apscheduler_jobs"
LINKER_5X_INDEX = "ix_workflows_apscheduler_jobs_workflow_id"


@dataclass(frozen=True)
class Generation:
    """One orchestrator-core generation and how it was found (`how` is shown in plans and show-schedule)."""

    major: int  # 4 or 5
    how: str  # "alembic 9736496e3eba", "--orchestrator-version 4.8", "embedded default", ...

    @property
    def func(self) -> str:
        """The func its API writes and its job store imports."""
        return ORCHESTRATOR_4_FUNC if self.major == 4 else ORCHESTRATOR_FUNC

    @property
    def takes_user_inputs(self) -> bool:
        """5.x runs `run_start_workflow_scheduler_task(workflow_name, user_inputs)`; 4.x takes workflow_name only."""
        return self.major >= 5

    @property
    def label(self) -> str:
        return f"orchestrator-core {self.major}.x ({self.how})"


EMBEDDED = Generation(5, "embedded default")


class OrchestratorVersionError(CommandError):
    """Detection could not decide, or the override / --func does not fit: one line, exit 1, nothing written."""


def generation_of_func(func: str) -> int | None:
    """The generation whose scheduler task `func` is, or None for any other function."""
    return {ORCHESTRATOR_4_FUNC: 4, ORCHESTRATOR_FUNC: 5}.get(func)


def parse_version(text: str) -> Generation:
    """`--orchestrator-version 4.8` (or 4.8.2, 5, 5.5) → its generation; below 4.7 and unknown majors refused."""
    found = re.fullmatch(r"\s*v?(\d+)(?:\.(\d+))?(?:\.\d+)?\s*", text)
    if found is None:
        raise OrchestratorVersionError(f"--orchestrator-version {text!r} is not a version such as 4.8 or 5.5")
    major, minor = int(found.group(1)), int(found.group(2) or 0)
    if major < 4 or (major == 4 and found.group(2) is not None and minor < 7):
        raise OrchestratorVersionError(TOO_OLD)
    if major > 5:
        raise OrchestratorVersionError(
            f"--orchestrator-version {text.strip()}: this reconciler knows orchestrator-core 4.7 to 5.x; "
            "upgrade the reconciler"
        )
    return Generation(major, f"--orchestrator-version {text.strip()}")


@dataclass(frozen=True)
class Marker:
    """One fact of the database that names a generation."""

    what: str  # "alembic 9736496e3eba", "linker table", "engine_settings", "orchestrator-written jobs"
    major: int


def decide(markers: Sequence[Marker], *, embedded: bool) -> Generation:
    """The generation the markers agree on (pure). None at all: the embedded default, else refused."""
    majors = {m.major for m in markers}
    if len(majors) == 1:
        return Generation(markers[0].major, markers[0].what)
    if len(majors) > 1:
        said = ", ".join(f"{m.what} says {m.major}.x" for m in markers)
        raise OrchestratorVersionError(
            f"cannot tell which orchestrator-core this database belongs to: {said}; {OVERRIDE_HINT}"
        )
    if embedded:
        return EMBEDDED
    raise OrchestratorVersionError(
        "cannot tell which orchestrator-core this database belongs to: no known alembic revision, linker table "
        f"shape, engine_settings column or orchestrator-written job; {OVERRIDE_HINT}"
    )


def detect(source: Connection | Reader, override: str | None = None) -> Generation:
    """The generation of the database behind `source` (read-only); `override` (a version) decides instead."""
    if override:
        return parse_version(override)
    from reconciler import reads

    reader = source if isinstance(source, reads.Reader) else reads.Reader.of(source)
    tables = reads.table_names(reader)
    if LINKER_TABLE not in tables:
        if "workflows" in tables or "alembic_version" in tables:
            raise OrchestratorVersionError(TOO_OLD)
        return EMBEDDED  # nothing yet: the embedded default creates 5.x tables
    markers = read_markers(reader, tables)
    embedded = "alembic_version" not in tables and "engine_settings" not in tables
    return decide(markers, embedded=embedded)


def read_markers(reader: Reader, tables: set[str]) -> list[Marker]:
    """Every marker present, in the order they are trusted (the first one names the generation found)."""
    markers: list[Marker] = []
    if "alembic_version" in tables:
        heads = sorted(str(r[0]) for r in reader.rows("SELECT version_num FROM alembic_version"))
        for head in heads:
            if head in ALEMBIC_HEADS:
                markers.append(Marker(f"alembic {head}", ALEMBIC_HEADS[head]))
    if reader.postgres:  # orchestrator-core runs on PostgreSQL; a SQLite file is the embedded default
        indexes = {r[0] for r in reader.rows("SELECT indexname FROM pg_indexes WHERE tablename = ?", [LINKER_TABLE])}
        primary = reader.rows(
            "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(?) AND contype = 'p'", [LINKER_TABLE]
        )
        if LINKER_5X_INDEX in indexes:
            markers.append(Marker("linker table", 5))
        elif [r[0] for r in primary] == ["uq_workflow_schedule"]:
            markers.append(Marker("linker table", 4))
        if "engine_settings" in tables:
            columns = reader.rows(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = 'engine_settings' AND column_name = 'running_processes'"
            )
            markers.append(Marker("engine_settings", 4 if columns else 5))
    markers.extend(_written_funcs(reader, tables))
    return markers


def _written_funcs(reader: Reader, tables: set[str]) -> list[Marker]:
    """The func of job rows orchestrator-core wrote itself (not in any ledger), found in the pickles' bytes.

    A pickle holds the func reference as its UTF-8 text, and neither reference contains the other, so a byte
    search counts each generation's rows without unpickling anything.
    """
    if "apscheduler_jobs" not in tables:
        return []
    find = "position(? in job_state) > 0" if reader.postgres else "instr(job_state, ?) > 0"
    not_ours = " AND id NOT IN (SELECT schedule_id FROM reconciler_ledger)" if "reconciler_ledger" in tables else ""
    query = (
        f"SELECT (SELECT count(*) FROM apscheduler_jobs WHERE {find}{not_ours}),"
        f" (SELECT count(*) FROM apscheduler_jobs WHERE {find}{not_ours})"
    )
    ((four, five),) = reader.rows(query, [ORCHESTRATOR_4_FUNC.encode(), ORCHESTRATOR_FUNC.encode()])
    found = []
    if four:
        found.append(Marker("orchestrator-written jobs", 4))
    if five:
        found.append(Marker("orchestrator-written jobs", 5))
    return found


def checked_func(func: str | None, generation: Generation, *, force: bool = False) -> str:
    """The func to write: the generation's own, or `--func` if it fits (or `--force-func` insists)."""
    if func is None or func == generation.func:
        return generation.func
    other = generation_of_func(func)
    if other is not None and not force:
        raise OrchestratorVersionError(
            f"--func {func} is what orchestrator-core {other}.x runs, but this database is {generation.label}, "
            f"whose job store deletes rows it cannot import; drop --func (it writes {generation.func}), "
            "or pass --force-func"
        )
    return func


@dataclass(frozen=True)
class VersionChoice:
    """What the command line says about the target: --orchestrator-version, --func, --force-func."""

    version: str | None = None  # None: detect (the CLI fills it from ORCHESTRATOR_VERSION too)
    func: str | None = None  # None: the generation's own
    force_func: bool = False


def settle(conn: Connection | Reader, settings: PlanSettings, choice: VersionChoice) -> PlanSettings:
    """`settings` for the database behind `conn`: its generation, the func it runs, and how it was found.

    A library caller's non-default `settings.func` counts as --func.
    """
    return settled_for(detect(conn, choice.version), settings, choice)


def settled_for(generation: Generation, settings: PlanSettings, choice: VersionChoice) -> PlanSettings:
    """`settle` once the generation is known (pure): a --func that does not fit it raises here."""
    from reconciler.plan import PlanSettings

    given = choice.func or (settings.func if settings.func != PlanSettings.func else None)
    func = checked_func(given, generation, force=choice.force_func)
    return replace(settings, generation=generation.major, func=func, orchestrator=generation.label)
