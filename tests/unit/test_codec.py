"""The payload codec: exact JSON round trips, clear refusals, Firestore size accounting."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from django_tasks_fs.exceptions import NotJSONSerializable, PayloadError, PayloadTooLarge
from django_tasks_fs.store.codec import (
    MAX_DOCUMENT_BYTES,
    MAX_NESTING_DEPTH,
    decode_json,
    document_size,
    encode_json,
    ensure_fits,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: beyond int64 too
    | st.integers(min_value=2**63, max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=40,
)


def same(a: Any, b: Any) -> bool:
    """Equality that also tells -0.0 from 0.0 and int from float."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=500)
@given(json_values)
def test_every_json_value_round_trips_exactly(value: Any) -> None:
    text = encode_json(value, where="args")
    text.encode("utf-8")  # always valid UTF-8 for Firestore
    assert same(decode_json(text), value)


def test_deep_nesting_and_big_ints_and_unicode() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_NESTING_DEPTH - 1):
        deep = [deep]
    value = {
        "deep": deep,
        "big": 2**200,
        "neg": -(2**64),
        "text": "héllo ☃ 𝄞 \u0000",
        "lone": "\ud800",
    }
    decoded = decode_json(encode_json(value, where="kwargs"))
    assert decoded == value
    assert same(
        {k: v for k, v in decoded.items() if k != "deep"},
        {k: v for k, v in value.items() if k != "deep"},
    )


def test_tuples_become_lists_like_django() -> None:
    assert decode_json(encode_json((1, (2, 3)), where="args")) == [1, [2, 3]]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1, 2}, r"args\[0\]: value of type set is not JSON-serializable"),
        (object(), r"args\[0\]: value of type object is not JSON-serializable"),
        (float("nan"), r"args\[0\]: nan is not a JSON number"),
        (float("inf"), r"args\[0\]: inf is not a JSON number"),
        ({1: "x"}, r"args\[0\]: dict key 1 is a int; JSON keys must be str"),
        ({"a": [b"bytes"]}, r"args\[0\]\['a'\]\[0\]: value of type bytes"),
    ],
)
def test_non_json_values_are_refused_with_their_path(value: Any, message: str) -> None:
    with pytest.raises(NotJSONSerializable, match=message) as info:
        encode_json([value], where="args")
    assert isinstance(info.value, PayloadError)  # also django's InvalidTask


def test_too_deep_is_refused() -> None:
    deep: Any = 1
    for _ in range(MAX_NESTING_DEPTH + 1):
        deep = [deep]
    with pytest.raises(NotJSONSerializable, match="nested deeper"):
        encode_json(deep, where="args")


def test_document_size_follows_firestore_rules() -> None:
    # 'c/d': name = (1+1)+(1+1)+16 = 20; field 'a'(2) + string 'xyz'(4) = 6; +32.
    assert document_size("c/d", {"a": "xyz"}) == 20 + 6 + 32
    assert (
        document_size("c/d", {"n": 1, "b": True, "z": None, "l": [1, 2.0]})
        == 20 + 2 + 8 + 2 + 1 + 2 + 1 + 2 + 16 + 32
    )


def test_ensure_fits_names_the_problem() -> None:
    ensure_fits("c/d", {"args": "x" * (MAX_DOCUMENT_BYTES - 100)}, what="The task's arguments")
    with pytest.raises(
        PayloadTooLarge, match=r"The task's arguments is too large.*1,048,576-byte limit"
    ):
        ensure_fits("c/d", {"args": "x" * MAX_DOCUMENT_BYTES}, what="The task's arguments")


def test_encoded_form_is_compact_json() -> None:
    assert encode_json({"a": [1, 2]}, where="x") == json.dumps({"a": [1, 2]}, separators=(",", ":"))
