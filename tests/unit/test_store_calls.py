"""Store requests against the official client's own code paths, with a fault injected
where the network would break (no I/O)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core.exceptions import ServiceUnavailable

from django_tasks_fs.store.calls import Calls
from django_tasks_fs.store.client import StoreSettings


def broken_then_empty(failures: int) -> Any:
    """A stand-in for the RunQuery RPC: the first ``failures`` streams break before
    their first document (a connection reset), the next one is empty."""
    calls: list[Any] = []

    def run_query(self: Any, request: Any, **kwargs: Any) -> Iterator[Any]:
        calls.append(request)

        def responses() -> Iterator[Any]:
            if len(calls) <= failures:
                raise ServiceUnavailable("Stream removed (Connection reset by peer)")
            yield from ()

        return responses()

    run_query.calls = calls  # type: ignore[attr-defined]
    return run_query


def test_a_stream_broken_before_its_first_document_is_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # never contacted
    fake = broken_then_empty(failures=2)
    calls = Calls(StoreSettings(project="p"))
    monkeypatch.setattr(type(calls.client._firestore_api), "run_query", fake)
    query = calls.client.collection("c").order_by("__name__")
    # The client's own resumption would call start_after(None) and raise TypeError.
    assert calls.stream(query) == []
    assert len(fake.calls) == 3
