"""create_write() builds the very Write the Firestore client's pbs_for_create() builds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers

from django_tasks_fs.store import ErrorEntry, TaskExecution
from django_tasks_fs.store.ops.create_writes import create_write

PATH = "projects/p/databases/(default)/documents/executions/abc"
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
