"""The pure core imports no database edge: planning and rendering load no SQLAlchemy (DESIGN.md §6)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CORE = [
    "reconciler.plan",
    "reconciler.render",
    "reconciler.state",
    "reconciler.planfile",
    "reconciler.health.core",
    "reconciler.health.render",
]

# One fresh interpreter imports the core modules one after another and notes, after each, the edges
# loaded so far. Imports only add modules, so a module that brought an edge is the first one after
# which it appears, and when none appears no module of the core loads one on its own either.
PROBE = """
import importlib, json, sys
EDGES = ('sqlalchemy', 'psycopg', 'alembic', 'redis')
OURS = ('reconciler.store', 'reconciler.apply', 'reconciler.migrate')
loaded = {}
for module in MODULES:
    importlib.import_module(module)
    loaded[module] = sorted(m for m in sys.modules if m.split('.')[0] in EDGES or m in OURS)
print(json.dumps(loaded))
"""


@pytest.fixture(scope="module")
def edges_after_each() -> dict[str, list[str]]:
    """For each core module, in CORE's order: the edges loaded once it and those before it are imported."""
    probe = PROBE.replace("MODULES", repr(CORE))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    found: dict[str, list[str]] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize("module", CORE)
def test_the_core_loads_no_sqlalchemy(module: str, edges_after_each: dict[str, list[str]]) -> None:
    assert edges_after_each[module] == [], f"{module} (or a core module before it) loads {edges_after_each[module]}"


def test_the_probe_sees_sqlalchemy_when_it_is_loaded() -> None:
    """The check above can fail: importing the store edge does load SQLAlchemy."""
    probe = PROBE.replace("MODULES", repr(["reconciler.plan", "reconciler.store"]))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    assert loaded["reconciler.plan"] == []
    assert "sqlalchemy" in loaded["reconciler.store"] and "reconciler.store" in loaded["reconciler.store"]
