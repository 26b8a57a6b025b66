"""`json_text.dumps_indented` writes exactly what `json.dumps(value, indent=...)` writes."""

from __future__ import annotations

import json
import os
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.json_text import dumps_indented


class Colour(StrEnum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and ±Infinity included: json writes them as NaN / Infinity by default
    st.text(),
    st.sampled_from([Colour.RED, Level.HIGH]),
)
keys = st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=40,
)


# Examples as RECONCILER_PROPERTY_EXAMPLES says (the inner loop asks for fewer); unset, 400.
@settings(max_examples=int(os.environ.get("RECONCILER_PROPERTY_EXAMPLES", "400")), deadline=None)
@given(values, st.sampled_from([0, 2, 4]), st.booleans())
def test_same_text_as_json_dumps(value: Any, indent: int, ensure_ascii: bool) -> None:
    assert dumps_indented(value, indent=indent, ensure_ascii=ensure_ascii) == json.dumps(
        value, indent=indent, ensure_ascii=ensure_ascii
    )


def test_what_json_refuses_it_refuses() -> None:
    looped: list[Any] = []
    looped.append({"again": looped})
    with pytest.raises(ValueError, match="Circular reference"):
        dumps_indented(looped)
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps_indented({"when": object()})
    with pytest.raises(TypeError, match="keys must be"):
        dumps_indented({(1, 2): "tuple key"})
