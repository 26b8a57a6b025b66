"""What `schedules run --metrics HOST:PORT` counts: starts per schedule by outcome, and start lateness.

Served on `/metrics` together with `schedules health`'s gauges (read afresh on each scrape), so one
endpoint answers both "does the runner start on time" and "did each schedule run". Labels are bounded:
``key`` and ``workflow`` (one series per schedule), ``outcome`` one of four words.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

OUTCOMES = ("started", "failed", "missed", "skipped")
# Seconds from a run's scheduled time to the starter call: milliseconds when healthy, up to the grace when not.
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RunnerMetrics:
    """The runner's counters and histogram, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._starts = Counter(
            "schedules_runner_starts",
            "Scheduled starts by outcome: started, failed (the starter refused or broke), missed (later than "
            "misfire grace), skipped (the row changed or leadership was lost before the start).",
            ["key", "workflow", "outcome"],
            registry=self.registry,
        )
        self._lateness = Histogram(
            "schedules_runner_start_lateness_seconds",
            "Seconds from a run's scheduled time to the starter call.",
            ["workflow"],
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )

    def count(self, key: str | None, workflow: str, outcome: str, lateness: float | None = None) -> None:
        """One start attempt; `lateness` (seconds) is observed for attempts that reached the starter."""
        assert outcome in OUTCOMES, outcome
        self._starts.labels(key or "", workflow, outcome).inc()
        if lateness is not None:
            self._lateness.labels(workflow).observe(max(lateness, 0.0))
