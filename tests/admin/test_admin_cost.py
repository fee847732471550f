"""What an admin page costs in Firestore operations does not grow with the collection.

The same pages (first, filtered, next via the cursor, searches, detail) are rendered
over 250 and over 3,000 executions on the in-memory store with operation accounting
on. Each must send the same queries, and read the same documents apart from the rows
it shows (at most a page). 3,000 is enough to catch an uncapped count: half of the
executions are SUCCESSFUL, and a count of 1,500 is billed 2 reads, a capped one 1.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.tasks import task_backends
from django.test import Client

from django_tasks_fs.admin.executions import TaskExecutionAdmin
from django_tasks_fs.store import TaskExecution, new_execution_id
from django_tasks_fs.store.ops import Create, OpCounts

from .conftest import ADMIN

LIST = ADMIN + "taskexecution/"
STATUSES = ["SUCCESSFUL", "SUCCESSFUL", "SUCCESSFUL", "FAILED", "READY", "RUNNING"]
QUEUES = ["default", "default", "default", "emails", "reports"]  # 5: coprime with 6
TASKS = ["tests.tasks.noop", "tests.tasks.echo", "tests.tasks.failing", "tests.tasks.permanent"]
#: Reads a page may make beyond its rows: 4 capped counts, the cursor's document, and
#: the one execution past the page that says whether there is a next page.
OVERHEAD = 6


@pytest.fixture
def counts(memory_project: str, counts: OpCounts) -> OpCounts:
    """The shared ``counts`` (tests/conftest.py), started once the project is set."""
    return counts


def seed(settings: Any, size: int) -> str:
    """A fresh in-memory project holding ``size`` executions; the id of the newest."""
    from tests.settings import tasks_setting

    settings.TASKS = tasks_setting(f"mem-cost-{uuid.uuid4().hex[:8]}", store="memory")
    store = task_backends["default"].executions  # type: ignore[attr-defined]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    writes = []
    for i in range(size):
        at = base + timedelta(seconds=i)
        execution = TaskExecution(
            id=new_execution_id(),
            task_path=TASKS[i % len(TASKS)],
            backend="default",
            queue_name=QUEUES[i % len(QUEUES)],
            status=STATUSES[i % len(STATUSES)],  # type: ignore[arg-type]
            enqueued_at=at,
            run_after=at,
        )
        writes.append(Create(store.collection_name, execution.id, execution.to_document()))
    for first in range(0, size, 500):
        store.documents.commit(writes[first : first + 500])
    return writes[-1].id


def measure(client: Client, counts: OpCounts, url: str) -> dict[str, Any]:
    counts.reset()
    response = client.get(url)
    assert response.status_code == 200, url
    rows = len(response.context["rows"]) if "rows" in response.context else 1  # detail: 1
    has_next = bool(response.context.get("next_url"))
    return {"response": response, "rows": rows, "has_next": has_next, **counts.as_dict()}


def pages(client: Client, counts: OpCounts, newest: str) -> dict[str, dict[str, Any]]:
    """The cost of each page of the admin over the current project."""
    found = {"first page": measure(client, counts, LIST)}
    found["next page"] = measure(
        client, counts, LIST + found["first page"]["response"].context["next_url"]
    )
    found["filtered page"] = measure(client, counts, LIST + "?status=FAILED&queue=emails")
    found["task search"] = measure(client, counts, LIST + "?q=tests.tasks.echo")
    found["id search"] = measure(client, counts, LIST + f"?q={newest}")
    found["detail"] = measure(client, counts, f"{LIST}default/{newest}/")
    return found


def test_a_page_costs_the_same_over_250_and_3000_executions(
    settings: Any, counts: OpCounts, login: Callable[..., Client]
) -> None:
    client = login(superuser=True)
    per_page = TaskExecutionAdmin.list_per_page
    small = pages(client, counts, seed(settings, 250))
    large = pages(client, counts, seed(settings, 3000))

    for page, cost in large.items():
        assert cost["writes"] == 0, page
        assert cost["queries"] == small[page]["queries"], page
        # Documents read beyond the rows shown: the counts, the cursor, and, when there is
        # a next page, its first row (read to know that there is one).
        beyond = {
            size[page]["reads"] - size[page]["rows"] - size[page]["has_next"]
            for size in (small, large)
        }
        assert len(beyond) == 1, (page, small[page], large[page])
        assert cost["rows"] <= per_page
        assert cost["billed_reads"] <= per_page + OVERHEAD, page
    assert large["first page"]["rows"] == large["next page"]["rows"] == per_page
    assert large["filtered page"]["rows"] == per_page  # 3,000 / 30 such executions
    # A list page: 1 query for the rows (+1 past the page), 4 counts; the next one also
    # reads its cursor.
    assert large["first page"]["queries"] == 5
    assert large["first page"]["reads"] == per_page + 1 + 4
    assert large["next page"]["reads"] == per_page + 1 + 4 + 1
    assert (large["detail"]["queries"], large["detail"]["reads"]) == (0, 1)
    # A search by id reads that execution, and counts only what it found.
    assert (large["id search"]["queries"], large["id search"]["reads"]) == (0, 1)
    assert "<strong>Total</strong>: 1<" in large["id search"]["response"].content.decode()


def test_counts_stop_at_the_limit_and_say_so(
    settings: Any, counts: OpCounts, login: Callable[..., Client], monkeypatch: Any
) -> None:
    client = login(superuser=True)
    monkeypatch.setattr(TaskExecutionAdmin, "count_limit", 100)
    seed(settings, 300)  # 150 SUCCESSFUL, 50 of each other status
    html = client.get(LIST).content.decode()
    assert "<strong>SUCCESSFUL</strong>: 100+" in html
    assert "<strong>FAILED</strong>: 50<" in html
    assert "<strong>Total</strong>: 250+" in html  # at least that many
    assert "Counts stop at 100" in html
    assert "SUCCESSFUL (100+)" in html
    html = client.get(LIST + "?status=FAILED").content.decode()
    assert "50 task executions" in html

    monkeypatch.setattr(TaskExecutionAdmin, "count_limit", None)  # exact, cost grows
    html = client.get(LIST).content.decode()
    assert "<strong>SUCCESSFUL</strong>: 150<" in html
    assert "<strong>Total</strong>: 300<" in html
    assert "Counts stop" not in html
