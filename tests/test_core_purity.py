"""The pure core imports no database edge: planning and rendering load no SQLAlchemy (DESIGN.md §6)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "reconciler.plan",
        "reconciler.render",
        "reconciler.state",
        "reconciler.planfile",
        "reconciler.health.core",
        "reconciler.health.render",
    ],
)
def test_the_core_loads_no_sqlalchemy(module: str) -> None:
    probe = (
        f"import sys, {module}\n"
        "edges = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'psycopg', 'alembic', 'redis'))\n"
        "ours = sorted(m for m in sys.modules if m in ('reconciler.store', 'reconciler.apply', 'reconciler.migrate'))\n"
        "print(edges + ours)\n"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert found == "[]", f"{module} loads {found}"


def test_the_probe_sees_sqlalchemy_when_it_is_loaded() -> None:
    """The check above can fail: importing the store edge does load SQLAlchemy."""
    probe = "import sys, reconciler.store\nprint('sqlalchemy' in sys.modules)\n"
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert found == "True"
