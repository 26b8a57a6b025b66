"""Benchmarks of the reconciler against orchestrator-core's own write path (see bench/run.py)."""
