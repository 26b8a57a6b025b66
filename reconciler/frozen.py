"""`evolve` and `build`: frozen records copied or made at a fraction of the generated `__init__`'s cost.

The planner makes a `Change` per schedule and changed copies of it; the read edge makes a `LedgerEntry` per
ledger row. The generated `__init__` of a frozen dataclass sets each field through `object.__setattr__`
(~5 µs for `Change`'s 30 fields, for `LedgerEntry`'s 14); a record without `__post_init__` or cached
properties is fully described by its `__dict__`, so filling that is the same object, for ~1 µs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast, overload

Record = TypeVar("Record")
Value = TypeVar("Value")


@functools.cache
def _field_names(kind: type) -> frozenset[str]:
    """The fields `evolve` may set on `kind`; a class whose instances a `__dict__` copy cannot reproduce fails."""
    if not dataclasses.is_dataclass(kind) or hasattr(kind, "__slots__") or hasattr(kind, "__post_init__"):
        raise TypeError(f"evolve: {kind.__name__} is not a plain dataclass; use dataclasses.replace")
    if any(isinstance(v, functools.cached_property) for c in kind.__mro__ for v in vars(c).values()):
        raise TypeError(f"evolve: {kind.__name__} caches properties in its __dict__; use dataclasses.replace")
    return frozenset(f.name for f in dataclasses.fields(kind) if f.init)


@functools.cache
def _layout(kind: type) -> tuple[tuple[str, ...], frozenset[str], dict[str, Any]]:
    """(every field name in order, as a set, the defaults); a field whose default is a factory is refused."""
    names = _field_names(kind)
    fields = dataclasses.fields(kind)
    if any(f.default_factory is not dataclasses.MISSING or not f.init for f in fields):
        raise TypeError(f"build: {kind.__name__} has a default factory or a non-init field; call it instead")
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    return tuple(f.name for f in fields), names, defaults


def evolve(record: Record, **updates: Any) -> Record:
    """`dataclasses.replace(record, **updates)` for a plain frozen dataclass, by copying its `__dict__`."""
    kind: type = type(record)
    unknown = updates.keys() - _field_names(kind)
    if unknown:
        raise TypeError(f"evolve: {kind.__name__} has no field {', '.join(sorted(unknown))}")
    copy: Record = object.__new__(kind)
    state = copy.__dict__
    state.update(record.__dict__)
    state.update(updates)
    return copy


def build(kind: type[Record], *values: Any, **named: Any) -> Record:
    """`kind(*values, **named)` for a plain frozen dataclass without default factories, by filling its `__dict__`.

    Every field without a default must be given, as the generated `__init__` requires.
    """
    order, names, defaults = _layout(cast(type, kind))
    if len(values) > len(order):
        raise TypeError(f"build: {kind.__name__} takes {len(order)} fields, {len(values)} given")
    record: Record = object.__new__(kind)
    state = record.__dict__
    state.update(defaults)
    if values:
        state.update(zip(order, values, strict=False))  # the first len(values) fields
    if named:
        if not names.issuperset(named):
            unknown = sorted(named.keys() - names)
            raise TypeError(f"build: {kind.__name__} has no field {', '.join(unknown)}")
        state.update(named)
    if len(state) != len(order):
        missing = [n for n in order if n not in state]
        raise TypeError(f"build: {kind.__name__} needs {', '.join(missing)}")
    return record


def maker(kind: type[Record], **fixed: Any) -> Callable[..., Record]:
    """`build` for many records of `kind` that share the `fixed` fields: each call gives the others by name.

    The defaults and `fixed` are merged once, so a call costs half a `build` (~0.7 µs for a `Change`; the
    planner makes one unchanged `Change` per schedule). The same rules: every field without a default given,
    no name that is not a field.
    """
    order, names, defaults = _layout(cast(type, kind))
    unknown = sorted(fixed.keys() - names)
    if unknown:
        raise TypeError(f"maker: {kind.__name__} has no field {', '.join(unknown)}")
    base = {**defaults, **fixed}
    size = len(order)

    def make(**named: Any) -> Record:
        record: Record = object.__new__(kind)
        state = record.__dict__
        state.update(base)
        state.update(named)
        if len(state) != size or not names.issuperset(named):
            raise TypeError(f"maker: {kind.__name__} needs exactly its fields, given {', '.join(sorted(state))}")
        return record

    return make


class cached_value(functools.cached_property[Value], Generic[Value]):
    """`functools.cached_property` for a value that is a pure function of a frozen record's fields.

    Python 3.11's cached_property takes a lock on every first access (~0.9 µs of the ~2.3 µs a schedule's
    digest repr costs; 3.12 dropped it). Two threads computing the same pure value at once is harmless, so
    this one stores the value without it. Still a cached_property: `evolve` refuses a class that has one.
    """

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> cached_value[Value]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> Value: ...
    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> Value | cached_value[Value]:
        if instance is None:
            return self
        value = self.func(instance)
        instance.__dict__[cast(str, self.attrname)] = value  # later reads find it there, not here
        return value
