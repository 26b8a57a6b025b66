""" "Did you mean …?" for every closed set a user types into: one rule, one wording.

Field names, trigger types and arguments, time zones, workflow names, schedule keys: a near miss is
answered with the closest names (difflib, as Python's own NameError suggestions). Pure.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str], *, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The names in `choices` nearest to `word`, best first (none when nothing is near)."""
    return difflib.get_close_matches(word, sorted(set(choices)), n=n, cutoff=cutoff)


def did_you_mean(word: str, choices: Iterable[str], *, n: int = 3) -> str:
    """` (did you mean 'x'?)` or ` (did you mean 'x', 'y'?)`, or "" when nothing is near."""
    near = closest(word, choices, n=n)
    return f" (did you mean {', '.join(repr(c) for c in near)}?)" if near else ""


def missing_workflow(key: str, workflow: str, existing: Iterable[str], soft_deleted: Iterable[str]) -> str:
    """The one message for a schedule whose workflow is not a usable `workflows` row."""
    if workflow in set(soft_deleted):
        return f"{key}: workflow '{workflow}' is soft-deleted"
    return f"{key}: workflow '{workflow}' does not exist{did_you_mean(workflow, existing)}"
