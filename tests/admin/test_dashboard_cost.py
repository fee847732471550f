"""What a dashboard view costs in Firestore operations does not grow with the collection.

The dashboard of one backend (2 queues) is rendered over 0 and over 3,000 executions on
the in-memory store with operation accounting on. It must send the same queries, and
read the same documents apart from those it shows (the duration sample, the oldest
waiting, the stuck and pending ones listed): each count stops at ``count_limit``. 3,000
is enough to catch an uncapped count: 1,200 executions of one queue succeeded within the
hour, and a count of 1,200 is billed 2 reads, a capped one 1.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.tasks import task_backends
from django.test import Client

from django_tasks_fs.admin.executions import TaskExecutionAdmin
from django_tasks_fs.store import DispatchState, TaskExecution, new_execution_id
from django_tasks_fs.store.ops import Create, OpCounts

from .conftest import ADMIN

DASHBOARD = ADMIN + "taskexecution/dashboard/?backend=default"
STATUSES = ["SUCCESSFUL", "SUCCESSFUL", "SUCCESSFUL", "FAILED", "READY", "RUNNING"]
QUEUES = ["default", "default", "default", "default", "emails"]  # 5: coprime with 6
TASKS = ["tests.tasks.noop", "tests.tasks.echo", "tests.tasks.failing"]


@pytest.fixture
def counts(memory_project: str, counts: OpCounts) -> OpCounts:
    """The shared ``counts`` (tests/conftest.py), started once the project is set."""
    return counts


def execution(i: int, now: Any) -> TaskExecution:
    """The ``i``-th execution: finished within the hour, waiting, running (every other
    one with an expired lease), or waiting for its dispatch (every other READY one)."""
    status = STATUSES[i % len(STATUSES)]
    at = now - timedelta(seconds=i % 3000 + 10)
    fields: dict[str, Any] = {}
    if status in ("SUCCESSFUL", "FAILED"):
        fields = {
            "started_at": at,
            "last_attempted_at": at,
            "finished_at": at + timedelta(seconds=0.5),
        }
    elif status == "RUNNING":
        lease = timedelta(minutes=-1 if i // 6 % 2 else 5)
        fields = {"started_at": at, "lease_owner": "w:1", "lease_expires_at": now + lease}
    elif i // 6 % 2:
        fields = {"dispatch_state": DispatchState.PENDING}
    return TaskExecution(
        id=new_execution_id(),
        task_path=TASKS[i % len(TASKS)],
        backend="default",
        queue_name=QUEUES[i % len(QUEUES)],
        status=status,  # type: ignore[arg-type]
        enqueued_at=at - timedelta(minutes=5),
        run_after=at - timedelta(minutes=5),
        **fields,
    )


def seed(settings: Any, size: int) -> None:
    """A fresh in-memory project holding ``size`` executions."""
    from tests.settings import tasks_setting

    settings.TASKS = tasks_setting(f"mem-dash-{uuid.uuid4().hex[:8]}", store="memory")
    store = task_backends["default"].executions  # type: ignore[attr-defined]
    now = store.clock.now()
    writes = [
        Create(store.collection_name, e.id, e.to_document())
        for e in (execution(i, now) for i in range(size))
    ]
    for first in range(0, size, 500):
        store.documents.commit(writes[first : first + 500])


def measure(client: Client, counts: OpCounts) -> dict[str, Any]:
    client.get(DASHBOARD)  # the store's first request also reads the server's clock
    counts.reset()
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    (backend,) = response.context["backends"]
    figures = backend["figures"]
    shown = len(figures.stuck_items) + len(figures.pending_items)
    shown += sum(q.sampled + (q.oldest is not None) for q in figures.queues)
    return {"shown": shown, "figures": figures, **counts.as_dict()}


def test_a_dashboard_view_costs_the_same_over_0_and_3000_executions(
    settings: Any, counts: OpCounts, login: Callable[..., Client]
) -> None:
    client = login(superuser=True)
    seed(settings, 0)
    empty = measure(client, counts)
    seed(settings, 3000)
    full = measure(client, counts)

    # Per queue: 2 counts, the oldest waiting, 4 finished counts, the duration sample;
    # per backend: 2 counts, the stuck and the pending listed.
    queries = 2 * (2 + 1 + 4 + 1) + 4
    assert empty["queries"] == full["queries"] == queries
    assert empty["writes"] == full["writes"] == 0
    # Each count billed 1 read (capped), whatever it counts; the rest is what is shown.
    counted = 2 * 6 + 2
    assert empty["reads"] - empty["shown"] == full["reads"] - full["shown"] == counted
    assert empty["shown"] == 0
    sample, listed = TaskExecutionAdmin.dashboard_sample, TaskExecutionAdmin.dashboard_listed
    assert full["shown"] == 2 * (sample + 1) + 2 * listed
    # Empty queries are billed 1 read each: the oldest waiting, the samples, the lists.
    assert empty["billed_reads"] == counted + 2 * 2 + 2
    assert full["billed_reads"] == full["reads"]

    hour = full["figures"].queues[0].windows[0]
    # 400 FAILED of 1,600: 25%, at most 400 / (1,000 + 400) as far as the capped counts tell.
    assert (str(hour.successful), str(hour.failed), hour.failure_rate) == (
        "1,000+",
        "400",
        "≤ 28.6%",
    )
    assert str(full["figures"].stuck) == "250"


def test_exact_counts_cost_more_as_the_collection_grows(
    settings: Any, counts: OpCounts, login: Callable[..., Client], monkeypatch: Any
) -> None:
    client = login(superuser=True)
    monkeypatch.setattr(TaskExecutionAdmin, "count_limit", None)
    seed(settings, 3000)
    full = measure(client, counts)
    # The 1,200 SUCCESSFUL of the queue over the last hour and the last day: 2 reads each.
    assert full["reads"] - full["shown"] > 2 * 6 + 2
    assert str(full["figures"].queues[0].windows[0].successful) == "1,200"
