"""What an apply is asked to do: its settings and the provenance it records.

Apart from `apply` so that the options of `reconcile` can be built, and a dry run can run, without
importing the apply code (and SQLAlchemy with it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler import guard


@dataclass(frozen=True)
class Provenance:
    """Where the applied schedules came from (git), recorded in the ledger."""

    commit: str | None = None
    author: str | None = None


@dataclass(frozen=True)
class ApplySettings:
    guard_seconds: float = guard.DEFAULT_BOUND  # the hold rule's bound (reconciler/guard.py)
    lock_timeout: float = 30.0
    redis_url: str | None = None
    expected_fingerprint: str | None = None
    provenance: Provenance = field(default_factory=Provenance)
