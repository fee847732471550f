"""Fuzzing the payload codec: JSON values round-trip exactly; anything else is refused
with NotJSONSerializable naming where it is, never altered; oversize is refused."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any

import pytest
from django.tasks import TaskResultStatus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_tasks_fs.exceptions import NotJSONSerializable, PayloadError, PayloadTooLarge
from django_tasks_fs.execution.attempt import Attempt
from django_tasks_fs.execution.outcomes import Outcome
from django_tasks_fs.store.codec import (
    MAX_DOCUMENT_BYTES,
    MAX_INT_DIGITS,
    MAX_NESTING_DEPTH,
    decode_json,
    document_size,
    encode_json,
    ensure_fits,
)
from tests.security.tasks import huge_int


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


#: Every kind of JSON scalar, at its edges.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**MAX_INT_DIGITS) + 1, max_value=10**MAX_INT_DIGITS - 1)
    | st.sampled_from(
        [2**63, -(2**63) - 1, 2**64, 10**MAX_INT_DIGITS - 1, -(10**MAX_INT_DIGITS) + 1]
    )
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308])
    | st.text(st.characters(exclude_categories=()))  # lone surrogates, NUL, every plane
)
keys = st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.tuples(inner, inner)  # tuples are stored as lists, like Django does
        | st.dictionaries(keys, inner, max_size=6)
    ),
    max_leaves=10,
)


class Opaque:
    """An arbitrary object."""


#: Leaves that are not JSON; each must be refused wherever it appears.
bad_leaves = st.one_of(
    st.sets(st.integers(), max_size=3),
    st.frozensets(st.integers(), max_size=3),
    st.binary(max_size=10),
    st.builds(bytearray, st.binary(max_size=10)),
    st.builds(Opaque),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(),
    st.dates(),
    st.uuids(),
    st.complex_numbers(),
    st.sampled_from([math.nan, math.inf, -math.inf, 10**MAX_INT_DIGITS, -(10**MAX_INT_DIGITS)]),
    st.just(range(3)),
    st.just(Ellipsis),
    st.just(type),
    st.just(len),
    st.just(iter([1])),
    st.just(memoryview(b"x")),
    st.just({1: "int key"}),
    st.just({None: "None key"}),
    st.just({True: "bool key"}),
    st.just({(1, 2): "tuple key"}),
    st.just({1.5: "float key"}),
    st.just(OrderedDict([(b"k", 1)])),
)


def normalised(value: Any) -> Any:
    """What encode_json promises to give back: the same value, tuples as lists."""
    if isinstance(value, (list, tuple)):
        return [normalised(v) for v in value]
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    return value


def same(a: Any, b: Any) -> bool:
    """Equality that also tells -0.0 from 0.0, int from float and bool from int."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@fuzz(3000)
@given(json_values)
def test_every_json_value_round_trips_exactly_and_canonically(value: Any) -> None:
    text = encode_json(value, where="args")
    text.encode("utf-8")  # Firestore strings must be valid UTF-8 (lone surrogates escaped)
    decoded = decode_json(text)
    assert same(decoded, normalised(value))
    assert encode_json(decoded, where="args") == text  # one encoding per value


@st.composite
def poisoned(draw: st.DrawFn) -> tuple[Any, str]:
    """A JSON value with one non-JSON leaf somewhere, and that leaf's path."""
    bad = draw(bad_leaves)
    path = "args"
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            siblings = draw(st.lists(scalars, max_size=3))
            index = draw(st.integers(0, len(siblings)))
            siblings.insert(index, bad)
            container: Any = siblings if draw(st.booleans()) else tuple(siblings)
            path, bad = f"[{index}]" + path.removeprefix("args"), container
        else:
            key = draw(keys)
            others = draw(st.dictionaries(keys, scalars, max_size=3))
            others.pop(key, None)
            others[key] = bad
            path, bad = f"[{key!r}]" + path.removeprefix("args"), others
    return bad, "args" + path.removeprefix("args")


@fuzz(1500)
@given(poisoned())
def test_any_non_json_value_anywhere_is_refused_with_its_path(case: tuple[Any, str]) -> None:
    value, path = case
    with pytest.raises(NotJSONSerializable) as info:
        encode_json(value, where="args")
    assert isinstance(info.value, PayloadError)  # also django's InvalidTask
    message = str(info.value)
    assert message.startswith(path), (message, path)  # names exactly where it is


@fuzz(300)
@given(st.integers(0, MAX_NESTING_DEPTH + 50), st.sampled_from(["list", "dict", "tuple"]))
def test_nesting_beyond_the_limit_is_refused_never_truncated(depth: int, kind: str) -> None:
    value: Any = "leaf"
    expected: Any = "leaf"
    for _ in range(depth):
        value = {"k": value} if kind == "dict" else [value] if kind == "list" else (value,)
        expected = {"k": expected} if kind == "dict" else [expected]
    if depth <= MAX_NESTING_DEPTH:
        assert decode_json(encode_json(value, where="args")) == expected
    else:
        with pytest.raises(NotJSONSerializable, match="nested deeper"):
            encode_json(value, where="args")


def test_cycles_are_refused_not_looped_over() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    mapping: dict[str, Any] = {}
    mapping["self"] = [mapping]
    for value in (cycle, mapping):
        with pytest.raises(NotJSONSerializable, match="nested deeper"):
            encode_json(value, where="args")


def test_an_integer_too_long_for_text_is_refused_like_any_non_json_value() -> None:
    with pytest.raises(NotJSONSerializable, match=r"return value\[0\]: integer with more than"):
        encode_json([10**5000], where="return value")


def test_a_task_returning_an_integer_too_long_for_text_fails_cleanly(backend: Any) -> None:
    """Python's ValueError for ints past 4,300 digits used to escape the codec, and the
    attempt with it: the execution stayed RUNNING, its body ran again after the lease."""
    result = huge_int.enqueue()
    assert Attempt(backend, result.id, worker_id="w").run().outcome == Outcome.FAILED
    after = backend.executions.get(result.id)
    assert after.status == TaskResultStatus.FAILED
    assert after.lease_owner is None
    assert after.errors[-1].exception_class_path.endswith("NotJSONSerializable")


@st.composite
def big_strings(draw: st.DrawFn) -> str:
    """Strings of 1-4-byte characters, from 1/8 of Firestore's limit to just over it."""
    char = draw(st.sampled_from(["a", "é", "€", "𝄞", "\x00"]))
    size = draw(st.integers(MAX_DOCUMENT_BYTES // 8, MAX_DOCUMENT_BYTES // len(char.encode()) + 10))
    return char * size


@fuzz(100)
@given(big_strings())
def test_oversize_payloads_are_refused_by_their_utf8_size(text: str) -> None:
    encoded = encode_json([text], where="args")
    fields = {"args": encoded, "kwargs": "{}", "task_path": "tests.tasks.noop"}
    size = document_size("c/d", fields)
    assert size > len(encoded.encode("utf-8"))  # never counted as fewer bytes than stored
    if size > MAX_DOCUMENT_BYTES:
        with pytest.raises(PayloadTooLarge, match="over Firestore's 1,048,576-byte limit"):
            ensure_fits("c/d", fields, what="The task's arguments")
    else:
        ensure_fits("c/d", fields, what="The task's arguments")
        assert json.loads(encoded) == [text]
