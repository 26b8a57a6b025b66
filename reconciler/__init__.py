"""reconciler: GitOps for orchestrator-core schedules."""

__version__ = "0.1.0"
