"""A process whose clock is wrong still decides leases on Firestore's time.

The first decision of a fresh worker process can come before its first write (a
warm process claims what its parent's query found; the parent only ever queries): its
store's clock must learn Firestore's time first, not use the machine's.
"""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.tasks import task_backends

from django_tasks_fs.store import ExecutionStore
from django_tasks_fs.store import client as store_client
from django_tasks_fs.store.client import ServerClock
from tests.conftest import ExecutionFactory

#: Long enough that no pause of a slow machine expires it during a test; the skews are
#: twice as long, so a decision taken on this machine's clock would be wrong.
LEASE = timedelta(seconds=60)
SKEW = 2 * LEASE.total_seconds()


def skew_this_process(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make ServerClock see this machine's clock ``seconds`` off (time.time() only)."""
    skewed = SimpleNamespace(
        time=lambda: time.time() + seconds, monotonic=time.monotonic, sleep=time.sleep
    )
    monkeypatch.setattr(store_client, "time", skewed)


def fresh_store(tasks_project: str) -> ExecutionStore:
    """The default backend's store as a new process would have it (clock never used)."""
    store: ExecutionStore = task_backends.create_connection("default").executions
    return store


def test_a_fast_clock_does_not_take_a_live_lease_on_its_first_claim(
    tasks_project: str,
    executions: ExecutionStore,
    make_execution: ExecutionFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alive = executions.claim(make_execution().id, worker_id="alive", lease_duration=LEASE)
    known = executions.get(alive.execution_id)
    skew_this_process(monkeypatch, +SKEW)  # the live lease looks expired on this clock
    store = fresh_store(tasks_project)
    taken = store.claim_many([known], worker_id="fast", lease_duration=LEASE, backend="default")
    assert taken == []
    assert executions.get(alive.execution_id).lease_owner == alive.owner


def test_a_slow_clock_writes_leases_that_last_their_whole_duration(
    tasks_project: str,
    executions: ExecutionStore,
    make_execution: ExecutionFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = make_execution()
    skew_this_process(monkeypatch, -SKEW)  # a lease from this clock would be born expired
    store = fresh_store(tasks_project)
    (lease,) = store.claim_many([known], worker_id="slow", lease_duration=LEASE, backend="default")
    monkeypatch.undo()
    assert lease.expires_at is not None
    assert lease.expires_at - executions.clock.now() > LEASE / 2


def test_a_clock_without_firestore_falls_back_to_the_machine_and_asks_again_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[float] = []
    now = [1000.0]

    def unreachable() -> Any:
        calls.append(now[0])
        raise ConnectionError("no Firestore")

    monkeypatch.setattr(
        store_client,
        "time",
        SimpleNamespace(time=time.time, monotonic=lambda: now[0], sleep=time.sleep),
    )
    clock = ServerClock(source=unreachable)
    assert abs(clock.now().timestamp() - time.time()) < 1
    clock.now()
    assert len(calls) == 1  # not again at once
    now[0] += store_client.CLOCK_RETRY
    clock.now()
    assert len(calls) == 2
