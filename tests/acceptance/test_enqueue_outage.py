"""enqueue() while Firestore is unreachable or slow: a clear, bounded error, nothing half-done.

The clients reach the (session) emulator through emulator.faultproxy.FaultProxy, which
cuts or slows the connection; the emulator and its data are left alone.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.tasks import TaskResultStatus
from google.api_core.exceptions import DeadlineExceeded, ServiceUnavailable

from django_tasks_fs import enqueue_many
from django_tasks_fs.exceptions import ExecutionNotFound, StoreUnavailable
from emulator.faultproxy import FaultProxy
from tests import tasks
from tests.conftest import wait_until


@pytest.fixture
def reachable_backend(backend: Any, proxy: FaultProxy) -> Any:
    """The default backend, its connection through the proxy already open."""
    backend.enqueue_timeout = 60.0  # the first request of a new channel may be slow
    tasks.noop.enqueue()
    return backend


def cut_and_wait(proxy: FaultProxy, backend: Any) -> None:
    """Cut, then wait until the client has noticed (a connection it still believes in
    would make the first attempt's fate unknown: "may still be applied")."""
    proxy.cut()
    probe = backend.executions.client.collection("probe").document("probe")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            probe.get(retry=None, timeout=1)
        except ServiceUnavailable as exc:
            if "failed to connect" in str(exc):
                return
        except DeadlineExceeded:
            pass
        time.sleep(0.05)
    pytest.fail("the client never saw the connection refused")


def markers(backend: Any, marker: str) -> int:
    """How many executions carry ``marker`` in their args."""
    return sum(marker in e.args for e in backend.executions.page(limit=1000).items)


def test_enqueue_during_an_outage_fails_clearly_in_time_and_writes_nothing(
    reachable_backend: Any, proxy: FaultProxy, tmp_path: Any
) -> None:
    backend = reachable_backend
    backend.enqueue_timeout = 2.0
    cut_and_wait(proxy, backend)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as failure:
        tasks.record.enqueue(str(tmp_path / "log"), "during-outage")
    elapsed = time.monotonic() - started
    proxy.restore()
    assert 1.5 <= elapsed < 5
    message = str(failure.value)
    assert message.startswith("Firestore is unreachable (ServiceUnavailable: ")
    assert "the task was not enqueued (gave up after 2.0s" in message
    assert failure.value.maybe_written is False
    # Once Firestore is back: no execution with that id, nor with that marker.
    backend.enqueue_timeout = 30.0
    tasks.noop.enqueue()
    with pytest.raises(ExecutionNotFound):
        backend.executions.get(failure.value.execution_id)
    assert markers(backend, "during-outage") == 0


def test_enqueue_rides_out_a_blip_shorter_than_its_timeout(
    reachable_backend: Any, proxy: FaultProxy
) -> None:
    backend = reachable_backend
    backend.enqueue_timeout = 15.0
    proxy.cut(seconds=1.0)
    started = time.monotonic()
    result = tasks.echo.enqueue("after-blip")
    assert time.monotonic() - started < 15
    assert backend.executions.get(result.id).status == TaskResultStatus.READY
    assert markers(backend, "after-blip") == 1


def test_a_timed_out_enqueue_says_the_write_may_still_be_applied(
    reachable_backend: Any, proxy: FaultProxy
) -> None:
    """Firestore receives the write but answers too late: the error cannot say "not
    enqueued", and indeed the execution appears."""
    backend = reachable_backend
    backend.enqueue_timeout = 2.0
    proxy.latency = 1.5  # the request arrives after 1.5 s, the answer after 3 s
    with pytest.raises(StoreUnavailable) as failure:
        tasks.echo.enqueue("too-slow")
    proxy.latency = 0.0
    assert failure.value.maybe_written is True
    message = str(failure.value)
    assert message.startswith("Firestore did not answer in time (DeadlineExceeded: ")
    assert "the task was probably not enqueued, but an attempt may have reached" in message
    assert failure.value.execution_id in message
    execution_id = failure.value.execution_id
    wait_until(lambda: markers(backend, "too-slow") == 1, timeout=30)
    assert backend.executions.get(execution_id).args == ["too-slow"]


def test_a_write_applied_before_a_reset_is_not_reported_as_a_failure(
    reachable_backend: Any, proxy: FaultProxy
) -> None:
    """The connection is reset after Firestore applied the create but before its answer
    came back: the retry meets ALREADY_EXISTS, which means the first attempt landed."""
    backend = reachable_backend
    backend.enqueue_timeout = 20.0
    proxy.latency = 1.0  # applied after ~1 s, answered after ~2 s
    outcome: dict[str, Any] = {}

    def enqueue() -> None:
        try:
            outcome["result"] = tasks.echo.enqueue("reset-after-write")
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=enqueue)
    thread.start()
    time.sleep(1.5)
    proxy.latency = 0.0
    proxy.cut(seconds=0.5)
    thread.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert backend.executions.get(result.id).args == ["reset-after-write"]
    assert markers(backend, "reset-after-write") == 1


def test_enqueue_many_during_an_outage_enqueues_nothing(
    reachable_backend: Any, proxy: FaultProxy
) -> None:
    backend = reachable_backend
    backend.enqueue_timeout = 2.0
    cut_and_wait(proxy, backend)
    with pytest.raises(StoreUnavailable) as failure:
        enqueue_many(tasks.echo, [(("bulk-outage", i), {}) for i in range(20)])
    proxy.restore()
    assert failure.value.maybe_written is False
    assert failure.value.enqueued == []
    assert "this commit of tasks was not written" in str(failure.value)
    assert failure.value.not_enqueued == list(range(20))
    assert "0 of 20 calls were enqueued" in str(failure.value)
    assert markers(backend, "bulk-outage") == 0


def test_a_bulk_commit_applied_before_a_reset_is_not_reported_as_a_failure(
    reachable_backend: Any, proxy: FaultProxy
) -> None:
    """As for one enqueue: the retried commit meets ALREADY_EXISTS, which means the
    first attempt wrote every document of the (all-or-nothing) batch."""
    backend = reachable_backend
    backend.enqueue_timeout = 20.0
    proxy.latency = 1.0  # applied after ~1 s, answered after ~2 s
    outcome: dict[str, Any] = {}

    def enqueue() -> None:
        try:
            outcome["results"] = enqueue_many(
                tasks.echo, [(("bulk-reset", i), {}) for i in range(20)]
            )
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=enqueue)
    thread.start()
    time.sleep(1.5)
    proxy.latency = 0.0
    proxy.cut(seconds=0.5)
    thread.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    assert [r.args for r in outcome["results"]] == [["bulk-reset", i] for i in range(20)]
    assert markers(backend, "bulk-reset") == 20
