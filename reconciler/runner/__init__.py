"""`schedules run`, our runner on orchestrator-core's tables: one wing, one module per part.

- `runner`: the process: leadership loop, the APScheduler scheduler and executor, signals, `run_runner`.
- `job_store`: the APScheduler job store on `apscheduler_jobs` (allow-list unpickling, the start gate).
- `leader`: one active runner per database (advisory lock / lease) and its change signals.
- `starters`: how a due run starts a workflow (orchestrator-core in process, its REST API, a command);
  `schedules force` uses them too.
- `metrics`: the runner's Prometheus counters and lateness histogram (`--metrics`).
"""
