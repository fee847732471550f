"""A heartbeat whose connection goes silent (a partial partition: open, unanswered)
gives the lease up before it can expire, so no second owner ever meets the body."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from django_tasks_fs.execution.heartbeat import Heartbeat
from tests.factories import write_execution

LEASE = timedelta(seconds=5)


def test_a_silent_connection_stops_the_attempt_before_its_lease_expires(
    backend: Any, proxy: Any
) -> None:
    store = backend.executions
    lease = store.claim(write_execution(store).id, worker_id="w", lease_duration=LEASE)
    stopped_at: list[float] = []
    stopped = threading.Event()

    def on_stop_needed() -> None:
        stopped_at.append(time.monotonic())
        stopped.set()

    heartbeat = Heartbeat(
        store, lease, interval=0.3, duration=LEASE, on_stop_needed=on_stop_needed
    ).start()
    try:
        time.sleep(1.0)  # renewals go through
        assert not heartbeat.lost.is_set()
        proxy.latency = 60.0  # the connection stays open, nothing answers in time
        silenced = time.monotonic()  # the last renewal that went through was sent before
        # Before the fix, the renewal hung in the client's 60 s retry: nothing for a minute.
        assert stopped.wait(timeout=LEASE.total_seconds() + 5)
    finally:
        heartbeat.stop(join_timeout=10)
    assert heartbeat.lost.is_set()
    assert stopped_at[0] - silenced < LEASE.total_seconds()  # given up while still ours
