"""Edges of the hold rule (reconciler/guard.py) that its own tests leave implicit."""

from __future__ import annotations

import pytest

from reconciler.guard import HoldRule


@pytest.mark.parametrize(("lead", "bound"), [(-0.1, 10.0), (0.1, -1.0)])
def test_a_negative_lead_or_bound_is_refused_in_one_line(lead: float, bound: float) -> None:
    with pytest.raises(ValueError) as caught:
        HoldRule(lead=lead, bound=bound)
    assert str(caught.value) == "the hold rule's lead and bound are seconds, not negative"


def test_zero_lead_and_bound_are_allowed() -> None:
    assert HoldRule(lead=0.0, bound=0.0).bound == 0.0
