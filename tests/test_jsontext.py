"""The indented JSON the command line prints is the standard library's text, exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perseat_addin.jsontext import dumps

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text())
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(), inner, max_size=4)), max_leaves=30)


def _std(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)


@pytest.mark.parametrize("obj", [
    {}, [], (), {"a": []}, {"a": {}}, "é\n\"\\\u2028\x00", 10**30, -0.0, 1e300, float("nan"), float("inf"),
    {1: 2}, {True: "x"}, {"a": 1, 2: "b"}, ("t", [1, {"d": None}]), {"invoices": [{"lines": [{"taxable": True}]}]},
])
def test_the_same_text_as_the_standard_library(obj: Any) -> None:
    assert dumps(obj) == _std(obj)


@given(VALUES)
def test_any_plain_value(obj: Any) -> None:
    assert dumps(obj) == _std(obj)


def test_other_kinds_left_to_the_standard_library() -> None:
    class Text(str):
        pass

    assert dumps({"k": Text("v"), "n": [Text("w")]}) == _std({"k": Text("v"), "n": [Text("w")]})
    with pytest.raises(TypeError):
        dumps({"when": object()})
