"""`schedules run`: an APScheduler 3 runner on orchestrator-core's `apscheduler_jobs` table.

Shape of a runner process:

- main thread: the leadership loop. As standby it polls the leader lock; as leader it waits for
  change signals (PostgreSQL NOTIFY, SQLite `PRAGMA data_version`) and wakes the scheduler, so a
  reconcile is picked up within a second. SIGTERM / SIGINT end the loop.
- "APScheduler" thread: `RunnerScheduler`, a BackgroundScheduler whose `_process_jobs` can neither
  die (an exception there would leave a RUNNING scheduler that never runs anything again) nor run
  once the runner is stopping or no longer the leader.
- start threads: `StarterExecutor`, which starts each due run through a starter (orchestrator-core,
  its REST API, or a command) after the job store has committed that job's next run time.

A scheduler exists only while this process holds the lock, and each term of leadership builds a new
one that reads the table afresh: a standby never runs anything, and a new leader sees the latest rows.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from sqlalchemy.engine import Engine

from reconciler import store
from reconciler.jobstate import ORCHESTRATOR_4_FUNC, ORCHESTRATOR_FUNC
from reconciler.runner.job_store import RunnerJobStore, StartGate, StoredJob
from reconciler.runner.leader import Leader, LeadershipLost, make_leader
from reconciler.runner.starters import Starter, StartError, StartRequest, describe_starter
from reconciler.terminal import colour_wanted

if TYPE_CHECKING:
    from reconciler.runner.metrics import RunnerMetrics

log = structlog.get_logger("reconciler.runner")

IDLE_RECHECK = 0.5  # seconds between passes while the scheduler may not process (stopping, lost lock)


@dataclass(frozen=True)
class RunnerOptions:
    """Everything `schedules run` can be told."""

    db_url: str
    runnable_funcs: tuple[str, ...] = (ORCHESTRATOR_FUNC, ORCHESTRATOR_4_FUNC)
    lease_seconds: float = 10.0  # SQLite: how long a dead leader keeps the lease
    poll_interval: float = 0.5  # change poll (SQLite), NOTIFY wait (PostgreSQL), standby lock poll
    max_wait: float = 10.0  # re-read the table at least this often, signal or not
    workers: int = 4  # starts that may run at the same time
    gate_timeout: float = 10.0
    metrics_listen: str | None = None  # HOST:PORT for /metrics (runner counters + health gauges)


def configure_logging(fmt: str = "json") -> None:
    """structlog to stderr (JSON lines or console); APScheduler's stdlib logs rendered the same way.

    Left alone when structlog is already configured (the command runs inside an orchestrator main.py).
    """
    if structlog.is_configured():
        return
    # JSON for machines: ISO 8601; console for people: the one human format (no microseconds, zone named).
    timestamper = structlog.processors.TimeStamper(fmt="iso" if fmt == "json" else "%Y-%m-%d %H:%M:%S UTC", utc=True)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=colour_wanted(sys.stderr))
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, timestamper],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # our own lines say what ran
    logging.getLogger("alembic").setLevel(logging.WARNING)  # "Context impl SQLiteImpl." is noise here


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class StarterExecutor(BaseExecutor):  # type: ignore[misc]
    """Starts due runs through a starter, each one after its job's next run time is committed."""

    def __init__(
        self,
        starter: Starter,
        gate: StartGate,
        may_start: Callable[[], bool],
        workers: int = 4,
        metrics: RunnerMetrics | None = None,
    ) -> None:
        super().__init__()
        self._metrics = metrics
        self._starter = starter
        self._gate = gate
        self._may_start = may_start
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, workers), thread_name_prefix="start")

    def _do_submit_job(self, job: StoredJob, run_times: list[datetime]) -> None:
        ticket = self._gate.expect(job.id)
        future = self._pool.submit(self._run, job, list(run_times), ticket)

        def done(finished: concurrent.futures.Future[list[Any]]) -> None:
            exc = finished.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, finished.result())

        future.add_done_callback(done)

    def shutdown(self, wait: bool = True) -> None:
        """Wait for the starts under way (a graceful stop lets them finish)."""
        self._pool.shutdown(wait)

    def _run(self, job: StoredJob, run_times: list[datetime], ticket: Any) -> list[Any]:
        kwargs = job.kwargs
        user_inputs = kwargs.get("user_inputs")
        context = {
            "key": job.ledger_key,
            "workflow": kwargs["workflow_name"],
            "schedule_id": job.id,
        }
        if job.ledger_namespace and job.ledger_namespace != "default":
            context["namespace"] = job.ledger_namespace
        proceed, reason = self._gate.wait(ticket)
        if not proceed:
            log.warning("start skipped", reason=reason, scheduled_time=_iso(run_times[-1]), **context)
            self._count(job, "skipped")
            return []
        events: list[Any] = []
        for run_time in run_times:
            if not self._may_start():
                log.warning("start skipped", reason="no longer the leader", scheduled_time=_iso(run_time), **context)
                self._count(job, "skipped")
                break
            actual = datetime.now(UTC)
            late = (actual - run_time).total_seconds()
            timing = {
                "scheduled_time": _iso(run_time),
                "actual_time": actual.isoformat(),
                "lateness_ms": round(late * 1000, 1),
            }
            grace = job.misfire_grace_time
            if grace is not None and late > grace:
                log.warning("run missed", misfire_grace_time=grace, **context, **timing)
                self._count(job, "missed")
                events.append(JobExecutionEvent(EVENT_JOB_MISSED, job.id, job._jobstore_alias, run_time))
                continue
            request = StartRequest(
                workflow_name=kwargs["workflow_name"],
                user_inputs=list(user_inputs) if isinstance(user_inputs, list | tuple) else [{}],
                schedule_id=job.id,
                scheduled_time=run_time,
                key=job.ledger_key,
            )
            try:
                result = self._starter.start(request)
            except StartError as exc:
                log.error("start failed", error=str(exc), starter=self._starter.kind, **context, **timing)
                self._count(job, "failed", late)
                events.append(JobExecutionEvent(EVENT_JOB_ERROR, job.id, job._jobstore_alias, run_time, exception=exc))
                continue
            except Exception as exc:  # a starter bug must not take the start thread's caller down
                log.exception("start failed", error=type(exc).__name__, starter=self._starter.kind, **context, **timing)
                self._count(job, "failed", late)
                events.append(JobExecutionEvent(EVENT_JOB_ERROR, job.id, job._jobstore_alias, run_time, exception=exc))
                continue
            duration = (datetime.now(UTC) - actual).total_seconds()
            self._count(job, "started", late)
            log.info(
                "workflow started",
                starter=self._starter.kind,
                process_id=result.process_id,
                duration_ms=round(duration * 1000, 1),
                **context,
                **timing,
            )
            events.append(
                JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time, retval=result.process_id)
            )
        return events

    def _count(self, job: StoredJob, outcome: str, lateness: float | None = None) -> None:
        if self._metrics is not None:
            self._metrics.count(job.ledger_key or job.id, job.kwargs["workflow_name"], outcome, lateness)


class RunnerScheduler(BackgroundScheduler):  # type: ignore[misc]
    """A BackgroundScheduler whose job processing never kills its thread and stops on demand."""

    def __init__(self, *, may_process: Callable[[], bool], max_wait: float, **options: Any) -> None:
        self._may_process = may_process
        self._max_wait = max_wait
        self._closing = False
        super().__init__(**options)

    def close(self) -> None:
        """No pass starts after this returns; one under way has finished (it holds the same lock)."""
        with self._jobstores_lock:
            self._closing = True

    def _process_jobs(self) -> float:
        # The lock is re-entrant; holding it around the check makes close() a real barrier.
        with self._jobstores_lock:
            if self._closing or self.state == STATE_STOPPED or not self._may_process():
                return IDLE_RECHECK
            try:
                wait: float | None = super()._process_jobs()
            except Exception:
                # Uncaught, this would end the thread while the scheduler still reports RUNNING.
                log.exception("job processing failed; retrying in 1 s")
                return 1.0
        # Re-read now and then even without a change signal (a writer that does not NOTIFY).
        return self._max_wait if wait is None else min(wait, self._max_wait)


class Runner:
    """The leadership loop around a scheduler; `run()` returns the exit code."""

    def __init__(
        self,
        options: RunnerOptions,
        starter: Starter,
        engine: Engine,
        leader: Leader,
        metrics: RunnerMetrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.options = options
        self.starter = starter
        self.engine = engine
        self.leader = leader
        self.stop_requested = threading.Event()
        self.store_factory: Callable[..., RunnerJobStore] = RunnerJobStore  # tests substitute a racing store

    def request_stop(self) -> None:
        """Graceful stop: no new starts; starts under way finish; then run() returns 0."""
        self.stop_requested.set()

    def _may_process(self) -> bool:
        return not self.stop_requested.is_set() and self.leader.valid()

    def run(self) -> int:
        """Standby until the lock is ours, lead until stopped or the lock is lost, repeat."""
        log.info(
            "runner starting",
            database=store.redact_url(self.options.db_url),
            starter=describe_starter(self.starter),
            holder=self.leader.holder,
        )
        waiting_logged = False
        last_error = ""
        while not self.stop_requested.is_set():
            try:
                acquired = self.leader.try_acquire()
                last_error = ""
            except Exception as exc:
                error = store.describe_db_error(exc)
                if error != last_error:  # once per distinct failure, not once per poll
                    log.warning("leader lock not available; retrying", error=error)
                last_error, acquired = error, False
            if not acquired:
                if not waiting_logged:
                    log.info("standby: another runner holds the lock; waiting for it")
                    waiting_logged = True
                self.stop_requested.wait(self.options.poll_interval)
                continue
            waiting_logged = False
            reason = self._lead()
            if reason is not None:
                log.warning("leadership lost; back to standby", reason=reason)
                self.stop_requested.wait(self.options.poll_interval)
        self.leader.release()
        log.info("runner stopped")
        return 0

    def _lead(self) -> str | None:
        """One term as leader; returns why it ended early, or None when a stop was requested."""
        gate = StartGate(self.options.gate_timeout)
        job_store = self.store_factory(
            self.engine, gate=gate, fence=self.leader.fence, runnable_funcs=self.options.runnable_funcs
        )
        executor = StarterExecutor(self.starter, gate, self.leader.valid, self.options.workers, self.metrics)
        scheduler = RunnerScheduler(
            may_process=self._may_process,
            max_wait=self.options.max_wait,
            timezone=UTC,
            jobstore_retry_interval=2,
        )
        scheduler.add_jobstore(job_store, "default")
        scheduler.add_executor(executor, "default")
        try:
            scheduler.start()
            log.info("leader: starting workflows from now on", **job_store.census())
        except Exception as exc:
            log.error("scheduler could not start", error=store.describe_db_error(exc))
            _shutdown(scheduler)
            return f"scheduler could not start: {store.describe_db_error(exc)}"
        reason: str | None = None
        try:
            while not self.stop_requested.is_set():
                if self.leader.watch(self.options.poll_interval):
                    scheduler.wakeup()
        except LeadershipLost as exc:
            reason = str(exc)
        except Exception as exc:
            reason = f"change watch failed: {store.describe_db_error(exc)}"
        finally:
            log.info("scheduler stopping; starts under way finish first")
            _shutdown(scheduler)
        return reason


def _shutdown(scheduler: RunnerScheduler) -> None:
    scheduler.close()
    if scheduler.state != STATE_STOPPED:
        scheduler.shutdown(wait=True)


def _log_aside(level: str, event: str, **fields: Any) -> threading.Thread:
    """Log `event` from another thread.

    A signal handler runs inside whatever the main thread was doing, perhaps writing a log line under the
    logger's lock; logging from the handler itself then waits for that lock forever (a SIGTERM right after
    `runner starting` hung the runner). Another thread waits only until the main thread's line is written.
    """
    thread = threading.Thread(target=getattr(log, level), args=(event,), kwargs=fields, daemon=True)
    thread.start()
    return thread


def _install_signals(runner: Runner) -> None:
    def graceful(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if runner.stop_requested.is_set():
            # A second signal: the operator does not want to wait for starts under way. The line is
            # written unless the main thread was inside a log write when the signal came.
            _log_aside("warning", "second signal: exiting now", signal=name).join(1.0)
            os._exit(1)
        runner.request_stop()
        _log_aside("info", "stop requested", signal=name)

    signal.signal(signal.SIGTERM, graceful)
    signal.signal(signal.SIGINT, graceful)


def _serve_metrics(options: RunnerOptions) -> RunnerMetrics:
    """/metrics on --metrics HOST:PORT: this runner's counters, and `health`'s gauges read per scrape."""
    from reconciler.commands.health import HealthOptions, collect, parse_listen
    from reconciler.health.metrics import serve
    from reconciler.runner.metrics import RunnerMetrics

    metrics = RunnerMetrics()
    host, port = parse_listen(options.metrics_listen or "")
    serve(host, port, lambda: collect(HealthOptions(db_url=options.db_url))[0], registry=metrics.registry)
    log.info("serving /metrics", address=f"http://{host}:{port}/metrics")
    return metrics


def run_runner(
    options: RunnerOptions, starter: Starter, *, install_signals: bool = True, log_format: str = "json"
) -> int:
    """Prepare the database (tables, migrations), then run until SIGTERM/SIGINT; the exit code."""
    from reconciler.apply import ApplyError, prepare

    configure_logging(log_format)
    engine = store.connect(options.db_url)
    try:
        try:
            prepare(engine)  # under the apply lock: two runners starting at once never race on CREATE TABLE
            leader = make_leader(options.db_url, engine, lease_seconds=options.lease_seconds)
        except ApplyError as exc:
            log.error("cannot run", error=str(exc))
            return 1
        except Exception as exc:
            log.error("cannot run", error=store.describe_db_error(exc))
            return 1
        metrics = _serve_metrics(options) if options.metrics_listen else None
        runner = Runner(options, starter, engine, leader, metrics)
        if install_signals:
            _install_signals(runner)
        return runner.run()
    finally:
        engine.dispose()


def runnable(funcs: Collection[str] | None) -> tuple[str, ...]:
    """The job funcs the runner starts: orchestrator-core's scheduler task (4.x and 5.x), plus any given."""
    return tuple(dict.fromkeys([ORCHESTRATOR_FUNC, ORCHESTRATOR_4_FUNC, *(funcs or ())]))
