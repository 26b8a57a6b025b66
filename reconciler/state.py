"""What the database holds, as plain values: workflows, job rows (decoded), the ledger. No I/O here.

The edges (`store`, `jobstate`) read the rows and decode each `job_state` with the allow-list unpickler
before the planner sees it, so planning never unpickles and never has to ask for more rows. A row can
be read as its digest only: then the edge has already checked it against an `ExpectedRow` (what our
ledger says we wrote for a spec that has not changed), the one check the planner's fast path makes too.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple


def row_hash(job_state_digest: str, next_run_time: float | None) -> str:
    """Digest of a whole row as written: the ledger keeps it so a no-op plan need not unpickle.

    Built from the job_state's digest, so a reader that only has the digest (computed by the database,
    the pickle never moved) gets the same value. The column is part of it because the column and the
    pickle must agree (else the scheduler spins).
    """
    return hashlib.sha256(f"{job_state_digest}|{next_run_time!r}".encode()).hexdigest()


@dataclass(frozen=True)
class Workflow:
    """A row of orchestrator-core's `workflows` table."""

    workflow_id: str
    name: str
    description: str
    is_task: bool
    deleted: bool


@dataclass(frozen=True)
class LiveJob:
    """One `apscheduler_jobs` row with the workflow ids linked to it, its job_state already decoded.

    Exactly one of three: `state` holds the decoded job_state; or `unreadable` says why it could not be
    decoded; or neither, when the row was read as its digest only because it matched its `ExpectedRow`.
    """

    id: str
    next_run_time: float | None
    workflow_ids: tuple[str, ...]
    state_digest: str  # sha256 hex of job_state
    state: dict[str, Any] | None = None
    unreadable: str | None = None

    @functools.cached_property
    def row_hash(self) -> str:
        return row_hash(self.state_digest, self.next_run_time)

    @classmethod
    def hashed(
        cls, id: str, next_run_time: float | None, workflow_ids: tuple[str, ...], state_digest: str, row_hash: str
    ) -> LiveJob:
        """A row read as its digest only, whose `row_hash` the database computed (the same function in SQL)."""
        # The fields and the cached property's value, filled as the generated __init__ would leave them (one
        # per job row of a no-op plan: a third of the __init__'s cost, which sets each field through a call).
        job = object.__new__(cls)
        job.__dict__.update(
            id=id,
            next_run_time=next_run_time,
            workflow_ids=workflow_ids,
            state_digest=state_digest,
            state=None,
            unreadable=None,
            row_hash=row_hash,  # where the cached property keeps its value
        )
        return job

    @property
    def digest_only(self) -> bool:
        """Read without its job_state (it matched what the ledger recorded)."""
        return self.state is None and self.unreadable is None


@dataclass(frozen=True)
class LedgerEntry:
    """One schedule the reconciler owns: the last thing it applied for that key."""

    namespace: str
    key: str
    schedule_id: str
    workflow_name: str
    spec_hash: str
    row_hash: str | None
    enabled: bool
    protect: bool
    source_path: str | None = None
    source_line: int | None = None
    applied_commit: str | None = None
    applied_author: str | None = None
    applied_at: datetime | None = None
    # The source that applied it: `<git remote or repository root>:<schedules directory>`, or `--source`.
    # None: recorded before sources were tracked (the first source to apply it adopts it).
    source: str | None = None


class ExpectedRow(NamedTuple):
    """A row as our ledger says we wrote it, for a spec that has not changed since, with its one link.

    A live row that `matches` it is known to be unchanged without decoding its job_state: the edge then
    reads only its digest, and the planner plans it as unchanged. Both use this one test. (A named tuple:
    a no-op plan makes one per schedule, at a fifth of a frozen dataclass's cost.)
    """

    row_hash: str
    workflow_ids: tuple[str, ...]

    def matches(self, row_hash: str, workflow_ids: tuple[str, ...]) -> bool:
        return row_hash == self.row_hash and workflow_ids == self.workflow_ids


@dataclass(frozen=True)
class LiveState:
    """Everything the planner reads from the database, as plain data."""

    jobs: tuple[LiveJob, ...]
    ledger: tuple[LedgerEntry, ...]
    workflows: tuple[Workflow, ...]
    ledger_exists: bool
