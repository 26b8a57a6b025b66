"""The spec digest keeps its recorded value: ledgers written before its parts were cached still match."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.plan import SPEC_HASH_VERSION, PlanSettings, spec_hash
from reconciler.spec import DesiredSchedule

plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def _as_recorded(desired: DesiredSchedule, name: str, settings: PlanSettings) -> str:
    # The digest as every ledger so far recorded it: the repr of one tuple.
    parts: tuple[Any, ...] = (
        SPEC_HASH_VERSION,
        desired.workflow_name,
        desired.trigger,
        desired.trigger_kwargs,
        desired.timezone,
        desired.user_inputs,
        desired.enabled,
        desired.misfire_grace_time,
        desired.coalesce,
        desired.max_instances,
        name,
        settings.func,
        settings.namespace,
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@given(
    workflow=st.text(max_size=8),
    kwargs=st.dictionaries(st.text(max_size=6), plain, max_size=4),
    inputs=st.lists(st.dictionaries(st.text(max_size=4), plain, max_size=2), max_size=2),
    enabled=st.booleans(),
    grace=st.integers(min_value=0, max_value=10**6),
    name=st.text(max_size=8),
    namespace=st.text(min_size=1, max_size=8),
)
def test_the_digest_is_the_recorded_one(
    workflow: str, kwargs: dict[str, Any], inputs: list[dict[str, Any]], enabled: bool, grace: int, name: str,
    namespace: str,
) -> None:  # fmt: skip
    desired = DesiredSchedule(
        key="k",
        workflow_name=workflow,
        trigger="cron",
        trigger_kwargs=kwargs,
        timezone="Europe/Amsterdam",
        user_inputs=inputs,
        enabled=enabled,
        misfire_grace_time=grace,
    )
    settings = PlanSettings(namespace=namespace)
    assert spec_hash(desired, name, settings) == _as_recorded(desired, name, settings)


def test_a_copy_with_another_trigger_has_another_digest() -> None:
    desired = DesiredSchedule("k", "task_x", "interval", {"minutes": 5}, "UTC")
    assert spec_hash(desired, "n", PlanSettings()) == spec_hash(desired, "n", PlanSettings())  # cached, same
    changed = replace(desired, trigger_kwargs={"minutes": 6})
    assert spec_hash(changed, "n", PlanSettings()) != spec_hash(desired, "n", PlanSettings())
    assert spec_hash(changed, "n", PlanSettings()) == _as_recorded(changed, "n", PlanSettings())
