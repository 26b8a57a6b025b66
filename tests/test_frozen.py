"""frozen.evolve is dataclasses.replace, frozen.build the generated __init__, for the planner's records; both refuse
what a __dict__ cannot reproduce."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.frozen import build, cached_value, evolve, maker
from reconciler.plan import Action, Change, FieldChange
from reconciler.spec import DesiredSchedule
from reconciler.state import LedgerEntry, LiveJob


@given(
    action=st.sampled_from(list(Action)),
    warnings=st.lists(st.text(max_size=5), max_size=3).map(tuple),
    drift=st.booleans(),
    links=st.lists(st.uuids().map(str), max_size=2).map(tuple),
)
def test_evolve_equals_replace_on_a_change(
    action: Action, warnings: tuple[str, ...], drift: bool, links: tuple[str, ...]
) -> None:
    base = Change(key="k", action=Action.NOOP, schedule_id="id", fields=(FieldChange("name", "a", "b"),))
    updates: dict[str, Any] = {"action": action, "warnings": warnings, "drift": drift, "links_add": links}
    evolved = evolve(base, **updates)
    assert evolved == replace(base, **updates)
    assert evolved is not base and base.action is Action.NOOP  # the original is untouched


def test_evolve_equals_replace_on_a_ledger_entry() -> None:
    entry = LedgerEntry("default", "k", "id", "task_x", "s" * 64, None, True, False)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    updates: dict[str, Any] = {"row_hash": "r" * 64, "applied_commit": "abc", "applied_at": at}
    assert evolve(entry, **updates) == replace(entry, **updates)


def test_an_unknown_field_is_refused_as_replace_refuses_it() -> None:
    change = Change(key="k", action=Action.NOOP, schedule_id="id")
    with pytest.raises(TypeError, match="no field actoin"):
        evolve(change, actoin=Action.CREATE)


def test_a_class_with_cached_properties_is_refused() -> None:
    # A copied __dict__ would carry row_hash computed from the old next_run_time.
    job = LiveJob("id", 1.0, (), "d" * 64)
    assert job.row_hash
    with pytest.raises(TypeError, match="caches properties"):
        evolve(job, next_run_time=2.0)


@dataclass(frozen=True)
class Counted:
    value: int
    calls: list[int] = field(default_factory=list, compare=False)

    @cached_value
    def doubled(self) -> int:
        self.calls.append(self.value)
        return self.value * 2


def test_a_cached_value_is_made_once_and_kept_on_the_record() -> None:
    record = Counted(21)
    assert record.doubled == 42 and record.doubled == 42
    assert record.calls == [21] and record.__dict__["doubled"] == 42
    assert isinstance(Counted.doubled, cached_value)  # on the class: the descriptor itself
    assert replace(record, value=5).doubled == 10  # a copy made by replace starts without it
    with pytest.raises(TypeError, match="caches properties"):  # evolve would carry it over, stale
        evolve(record, value=5)
    schedule = DesiredSchedule("k", "task_x", "interval", {"minutes": 5}, "UTC")
    assert schedule.row_parts_repr == "'task_x', 'interval', {'minutes': 5}, 'UTC', [{}], True, 1, True, 1"


def test_classes_with_post_init_or_slots_are_refused() -> None:
    @dataclass(frozen=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError("negative")

    @dataclass(frozen=True, slots=True)
    class Slotted:
        value: int

    with pytest.raises(TypeError, match="not a plain dataclass"):
        evolve(Checked(1), value=-1)
    with pytest.raises(TypeError, match="not a plain dataclass"):
        evolve(Slotted(1), value=2)


def test_only_dataclasses() -> None:
    class Plain:
        @functools.cached_property
        def x(self) -> int:
            return 1

    with pytest.raises(TypeError, match="not a plain dataclass"):
        evolve(Plain(), x=2)


@given(
    action=st.sampled_from(list(Action)),
    warnings=st.lists(st.text(max_size=5), max_size=3).map(tuple),
    owner=st.none() | st.text(max_size=5),
)
def test_build_equals_the_constructor_on_a_change(action: Action, warnings: tuple[str, ...], owner: str | None) -> None:
    fields: dict[str, Any] = {"key": "k", "action": action, "schedule_id": "id", "warnings": warnings, "owner": owner}
    built = build(Change, **fields)
    assert built == Change(**fields)
    assert built.__dict__ == Change(**fields).__dict__  # every default is there, nothing else
    assert built.fields == () and built.ledger_entry is None


def test_build_takes_fields_by_position_as_the_constructor_does() -> None:
    row = ("default", "k", "id", "task_x", "s" * 64, None, True, False, "a.yaml", 3)
    assert build(LedgerEntry, *row) == LedgerEntry(*row)
    assert build(LedgerEntry, *row[:8], source="repo:dir") == LedgerEntry(*row[:8], source="repo:dir")


def test_build_refuses_what_the_constructor_refuses() -> None:
    with pytest.raises(TypeError, match="needs action, schedule_id"):
        build(Change, key="k")
    with pytest.raises(TypeError, match="no field actoin"):
        build(Change, key="k", action=Action.NOOP, schedule_id="id", actoin=Action.CREATE)
    with pytest.raises(TypeError, match="takes 14 fields, 15 given"):
        build(LedgerEntry, *range(15))


@given(
    action=st.sampled_from(list(Action)),
    warnings=st.lists(st.text(max_size=5), max_size=3).map(tuple),
    owner=st.none() | st.text(max_size=5),
)
def test_a_maker_makes_what_the_constructor_makes(action: Action, warnings: tuple[str, ...], owner: str | None) -> None:
    make = maker(Change, action=action)
    made = make(key="k", schedule_id="id", warnings=warnings, owner=owner)
    expected = Change(key="k", action=action, schedule_id="id", warnings=warnings, owner=owner)
    assert made == expected and made.__dict__ == expected.__dict__
    assert make(key="other", schedule_id="id2").key == "other"  # each call its own record, the fixed ones kept
    assert made.key == "k" and made.action is action


def test_a_maker_refuses_what_the_constructor_refuses() -> None:
    with pytest.raises(TypeError, match="no field actoin"):
        maker(Change, actoin=Action.NOOP)
    make = maker(Change, action=Action.NOOP)
    with pytest.raises(TypeError, match="needs exactly its fields"):
        make(key="k")  # no schedule_id
    with pytest.raises(TypeError, match="needs exactly its fields"):
        make(key="k", schedule_id="id", actoin=Action.CREATE)
    with pytest.raises(TypeError, match="needs exactly its fields"):
        make(key="k", actoin=Action.CREATE)  # one missing, one unknown: as many names, still refused
    with pytest.raises(TypeError, match="default factory"):
        maker(Listed)


@dataclass(frozen=True)
class Listed:
    values: list[int] = field(default_factory=list)


def test_build_refuses_default_factories() -> None:
    @dataclass(frozen=True)
    class Listed:
        values: list[int] = field(default_factory=list)

    with pytest.raises(TypeError, match="default factory"):
        build(Listed)


@given(path=st.text(min_size=1, max_size=20), line=st.integers(1, 10_000), cached=st.booleans())
def test_a_schedule_found_elsewhere_is_the_schedule_replaced_there(path: str, line: int, cached: bool) -> None:
    from reconciler.spec import DesiredSchedule, SourceLocation

    here = DesiredSchedule("k", "task", "cron", {"minute": 5}, "UTC", source=SourceLocation("a.yaml", 1, 1))
    if cached:
        assert here.row_parts_repr  # computed before the copy: it must stay right
    there = SourceLocation(path, line, 3)
    moved = here.found_at(there)
    assert moved == replace(here, source=there) and moved.source is there
    assert moved.row_parts_repr == replace(here, source=there).row_parts_repr
    assert here.source == SourceLocation("a.yaml", 1, 1)  # the original is untouched
