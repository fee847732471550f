"""create_write() builds the very Write the Firestore client's pbs_for_create() builds."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers

from django_tasks_fs.store import ErrorEntry, TaskExecution
from django_tasks_fs.store.ops import reset_memory
from django_tasks_fs.store.ops.create_writes import create_write
from tests.settings import tasks_setting

PATH = "projects/p/databases/(default)/documents/executions/abc"


class Colour(enum.StrEnum):
    RED = "red"


NOW = datetime(2026, 12, 2, 16, 40, 22, 132168, tzinfo=UTC)


def client_bytes(data: dict[str, Any]) -> bytes:
    (write,) = _helpers.pbs_for_create(PATH, data)
    return bytes(write._pb.SerializeToString(deterministic=True))


def our_bytes(data: dict[str, Any]) -> bytes:
    return bytes(create_write(PATH, data)._pb.SerializeToString(deterministic=True))


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"s": "text", "u": "ünïcode ☃", "empty": ""},
        {"none": None, "t": True, "f": False},
        {"i": 0, "neg": -7, "big": 2**63 - 1, "small": -(2**63)},
        {"x": 0.0, "pi": 3.141592653589793, "neg": -1e300},
        {"utc": NOW, "naive": NOW.replace(tzinfo=None)},
        {"offset": NOW.astimezone(timezone(timedelta(hours=5, minutes=30)))},
        {"nanos": DatetimeWithNanoseconds(2026, 1, 2, 3, 4, 5, nanosecond=123456789, tzinfo=UTC)},
        {"list": [], "items": [1, "a", None, 2.5, True, NOW], "tuple": (1, 2)},
        {"map": {}, "nested": {"a": {"b": {"c": [1, {"d": "e"}]}}}, "dotted": {"a.b": 1}},
        {"list_of_maps": [{"k": 1}, {}], "key with spaces": "v", "ключ": 1},
        {"enum": Colour.RED, "nested": {"sources": {"max_attempts": Colour.RED}}},
    ],
)
def test_plain_values_encode_as_the_client_does(data: dict[str, Any]) -> None:
    assert our_bytes(data) == client_bytes(data)


def test_an_execution_document_encodes_as_the_client_does() -> None:
    execution = TaskExecution(
        id="abc",
        task_path="app.tasks.send",
        backend="default",
        queue_name="emails",
        args=[1, "two"],
        kwargs={"three": [3.0]},
        enqueued_at=NOW,
        run_after=NOW + timedelta(minutes=5),
        errors=[ErrorEntry(exception_class_path="builtins.ValueError", traceback="tb")],
        trace_context={"traceparent": "00-abc-def-01"},
    )
    document = execution.to_document()
    assert our_bytes(document) == client_bytes(document)


@pytest.mark.parametrize(
    "data",
    [
        {"stamp": firestore.SERVER_TIMESTAMP, "v": 1},  # a transform
        {"raw": b"\x00\x01"},
        {"nested": {"stamp": firestore.SERVER_TIMESTAMP}},
        {"point": firestore.GeoPoint(1.5, -2.5)},
    ],
)
def test_other_values_go_through_the_clients_encoder(data: dict[str, Any]) -> None:
    assert our_bytes(data) == client_bytes(data)


@pytest.fixture
def memory(settings: Any) -> Iterator[None]:
    settings.TASKS = tasks_setting(f"mem-{uuid.uuid4().hex[:8]}", store="memory")
    yield
    reset_memory()


def test_the_documents_the_backends_create_take_the_fast_path(
    memory: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A field whose value the fast path does not know sends every document through the
    client's encoder, several times slower (bulk enqueue: docs/benchmarks.md)."""
    from django.tasks import task_backends

    from tests import tasks

    def slow(*args: Any) -> Any:
        raise AssertionError(f"the client's encoder was used for {args[1]!r}")

    monkeypatch.setattr(_helpers, "pbs_for_create", slow)
    backend: Any = task_backends["default"]
    for task in (tasks.noop, tasks.noop.using(max_attempts=3, unique_key="k"), tasks.echo):
        document = backend.build_execution(task, [1, {"a": [2.5, None]}], {"k": "v"}).to_document()
        create_write(PATH, document)
