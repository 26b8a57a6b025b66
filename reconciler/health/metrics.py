"""A `HealthReport` as Prometheus metrics (text exposition format, through prometheus_client) and `/metrics`.

Series per schedule carry exactly three labels — ``key``, ``workflow``, ``source`` — so the number of
series is the number of schedules times the number of metric names, whatever happens at run time: no
instant, pid, status or reason ever becomes a label. Counts are over the report's window, so they are
gauges (they go down when a missed fire leaves the window); alert with e.g.
``schedules_health_missed_runs > 0`` or ``schedules_health_scheduler_processing == 0``.

With ``--serve``, every scrape reads the database afresh (one read-only transaction); a failed read is
``schedules_health_up 0`` plus a counter of errors, never an HTTP error, so Prometheus alerts on it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from reconciler.health.core import HealthReport, Liveness

PREFIX = "schedules_health"
LABELS = ("key", "workflow", "source")

PER_SCHEDULE: tuple[tuple[str, str], ...] = (
    ("expected_runs", "Fires the schedule's trigger had in the window (pending ones excluded)."),
    ("started_runs", "Processes the scheduler started for those fires."),
    ("missed_runs", "Fires in the window with no process started within the tolerance."),
    ("failed_runs", "Started runs in the window whose process failed, was aborted or found inconsistent data."),
    ("coalesced_runs", "Fires APScheduler folded into one later run (coalesce)."),
    ("ambiguous_runs", "Starts attributed by nearest fire because another schedule of the workflow was due."),
    ("overdue", "1 when next_run_time lies further in the past than the tolerance: no scheduler processed it."),
    ("last_start_timestamp_seconds", "When the last attributed run started (UTC epoch seconds)."),
    ("next_run_timestamp_seconds", "The job's next_run_time column (UTC epoch seconds)."),
)


def _per_schedule(report: HealthReport, name: str) -> Iterator[tuple[list[str], float]]:
    for s in report.schedules:
        labels = [s.key, s.workflow or "", s.source]
        last = s.last_run
        value: float | None = {
            "expected_runs": float(s.expected),
            "started_runs": float(s.started) if s.started is not None else None,
            "missed_runs": float(len(s.missed)) if s.started is not None else None,
            "failed_runs": float(len(s.failures)) if s.started is not None else None,
            "coalesced_runs": float(s.coalesced) if s.started is not None else None,
            "ambiguous_runs": float(s.ambiguous) if s.started is not None else None,
            "overdue": 1.0 if s.overdue else 0.0,
            "last_start_timestamp_seconds": last.started_at.timestamp() if last else None,
            "next_run_timestamp_seconds": s.next_run.timestamp() if s.next_run else None,
        }[name]
        if value is not None:  # unknown is absent, not 0 (no processes table: nothing to count)
            yield labels, value


def report_families(report: HealthReport) -> Iterator[GaugeMetricFamily]:
    """The gauges of one report."""
    for name, doc in PER_SCHEDULE:
        family = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(LABELS))
        for labels, value in _per_schedule(report, name):
            family.add_metric(labels, value)
        yield family
    yield GaugeMetricFamily(f"{PREFIX}_window_seconds", "Length of the window judged.", value=_seconds(report))
    yield GaugeMetricFamily(
        f"{PREFIX}_scheduler_processing",
        "1 unless every active job is overdue (then no scheduler is processing this database).",
        value=0.0 if report.liveness is Liveness.STOPPED else 1.0,
    )
    if report.engine_paused is not None:
        yield GaugeMetricFamily(
            f"{PREFIX}_engine_paused", "1 when engine_settings.global_lock is set.", value=float(report.engine_paused)
        )
    yield GaugeMetricFamily(
        f"{PREFIX}_processes_table",
        "1 when the database has orchestrator-core's processes table (starts are checked).",
        value=float(report.processes_available),
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_problem_schedules", "Schedules with a problem.", value=float(len(report.problem_schedules))
    )


def _seconds(report: HealthReport) -> float:
    return (report.now - report.since).total_seconds()


class _ReportCollector(Collector):
    """Reads a fresh report on every collect (every scrape); a failed read is `up 0`, not an HTTP error."""

    def __init__(self, read: Callable[[], HealthReport]) -> None:
        self._read = read
        self._errors = 0
        self._lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with self._lock:  # one database read at a time, whatever the number of scrapers
            try:
                report = self._read()
            except Exception:
                self._errors += 1
                report = None
            up = GaugeMetricFamily(f"{PREFIX}_up", "1 when the last read of the database succeeded.")
            up.add_metric([], 0.0 if report is None else 1.0)
            yield up
            errors = CounterMetricFamily(f"{PREFIX}_read_errors", "Failed reads of the database since start.")
            errors.add_metric([], float(self._errors))
            yield errors
            if report is not None:
                yield from report_families(report)


def exposition(report: HealthReport) -> str:
    """The report in Prometheus' text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(lambda: report))
    return generate_latest(registry).decode()


def serve(
    host: str, port: int, read: Callable[[], HealthReport], *, registry: CollectorRegistry | None = None
) -> tuple[WSGIServer, threading.Thread]:
    """prometheus_client's HTTP server on (host, port), each scrape of /metrics a fresh report.

    With `registry` (e.g. `schedules run`'s counters), the report's gauges are served beside what it holds.
    """
    registry = registry or CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(read))
    return start_http_server(port, addr=host, registry=registry)
