"""heap.collector_paused: in a command process the block's objects leave the collector's view; a library
caller's collector resumes as it was (each case in a process of its own: both change the collector's state)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PAUSED = """
import gc, sys, weakref
from reconciler import heap
if sys.argv[1] == "command":
    heap.tune_gc()  # what cli.main does first
collections = []
gc.callbacks.append(lambda phase, info: collections.append(info) if phase == "start" else None)
class Node:
    pass
with heap.collector_paused():
    plan = [[] for _ in range(200_000)]  # alive until the command ends, as a plan's objects are
    cycle = Node(); cycle.me = cycle; left = weakref.ref(cycle); del cycle  # garbage only the collector frees
    during = len(collections)
after = [[] for _ in range(1_000)]  # the allocations that would start a collection
print(during, "collected" if len(collections) > during else "none", end=" ")
gc.collect()
print("alive" if left() is not None else "freed")
"""


@pytest.mark.parametrize(
    ("process", "expected"),
    [
        ("command", "0 none alive\n"),  # no collection scans the plan after the block; it lives until the exit
        ("library", "0 collected freed\n"),  # the collector resumes, and frees the block's garbage
    ],
)
def test_a_command_keeps_the_collector_off_what_a_plan_made(process: str, expected: str) -> None:
    done = subprocess.run([sys.executable, "-c", PAUSED, process], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected
