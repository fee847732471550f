"""The admin dashboard on the in-memory store: each figure equals the seeded executions'
real states (times relative to the store's clock), permissions, and the pure helpers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.tasks import TaskResultStatus, task_backends
from django.test import Client

from django_tasks_fs.admin.dashboard import Capped, Window, percentile
from django_tasks_fs.registry import firestore_backends
from django_tasks_fs.store import DispatchState, TaskExecution

from .conftest import ADMIN

DASHBOARD = ADMIN + "taskexecution/dashboard/"


def store_now() -> datetime:
    return task_backends["default"].executions.clock.now()  # type: ignore[attr-defined]


def finished(
    status: TaskResultStatus, ago: timedelta, seconds: float, *, now: datetime, **extra: Any
) -> dict[str, Any]:
    """Fields of an execution that finished ``ago`` with a last attempt of ``seconds``."""
    end = now - ago
    start = end - timedelta(seconds=seconds)
    return {
        "status": status,
        "enqueued_at": start - timedelta(seconds=1),
        "run_after": start - timedelta(seconds=1),
        "started_at": start,
        "last_attempted_at": start,
        "finished_at": end,
        "attempts": 1,
        **extra,
    }


def seed_every_state(add: Callable[..., TaskExecution]) -> dict[str, TaskExecution]:
    """Executions in every state, in backend 'default' (queues 'default' and 'emails')."""
    now = store_now()
    minutes = lambda n: now - timedelta(minutes=n)  # noqa: E731
    ok, failed = TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED
    seeded = {
        "oldest ready": add(enqueued_at=minutes(5), run_after=minutes(5)),
        "ready": add(enqueued_at=minutes(1), run_after=minutes(1)),
        "later": add(queue_name="emails", run_after=now + timedelta(hours=1)),
        "running": add(
            status=TaskResultStatus.RUNNING,
            started_at=minutes(1),
            last_attempted_at=minutes(1),
            lease_owner="w:1",
            lease_expires_at=now + timedelta(minutes=5),
            attempts=1,
        ),
        "stuck": add(
            status=TaskResultStatus.RUNNING,
            started_at=minutes(10),
            last_attempted_at=minutes(10),
            lease_owner="w:2",
            lease_expires_at=minutes(2),
            attempts=1,
        ),
        "pending": add(
            queue_name="emails",
            enqueued_at=minutes(5),
            run_after=minutes(5),
            dispatch_state=DispatchState.PENDING,
        ),
        "pending fresh": add(queue_name="emails", dispatch_state=DispatchState.PENDING),
    }
    durations = [(timedelta(minutes=1), 1.0), (timedelta(minutes=2), 2.0)]
    durations += [(timedelta(minutes=30), 10.0), (timedelta(hours=3), 4.0)]
    durations += [(timedelta(hours=30), 3.0)]
    for i, (ago, seconds) in enumerate(durations):
        seeded[f"ok {i}"] = add(**finished(ok, ago, seconds, now=now))
    # A retried one: its last attempt ran 2 s, 100 s after its first start.
    retried = finished(ok, timedelta(minutes=3), 2.0, now=now, attempts=2)
    retried["started_at"] -= timedelta(seconds=100)
    seeded["retried"] = add(**retried)
    seeded["failed"] = add(
        **finished(failed, timedelta(minutes=10), 0.5, now=now, task_path="tests.tasks.failing")
    )
    seeded["failed emails"] = add(
        **finished(failed, timedelta(hours=2), 0.25, now=now, queue_name="emails")
    )
    return seeded


def queue(context: Any, name: str, backend: str = "default") -> Any:
    found = next(b for b in context["backends"] if b["figures"].alias == backend)
    return next(q["figures"] for q in found["queues"] if q["label"] == name)


def test_the_figures_are_those_of_the_seeded_executions(
    superuser: Client, add_execution: Callable[..., TaskExecution]
) -> None:
    seeded = seed_every_state(add_execution)
    response = superuser.get(DASHBOARD)
    assert response.status_code == 200
    context = response.context
    default, emails = queue(context, "default"), queue(context, "emails")

    assert (str(default.ready), str(default.running)) == ("2", "2")
    assert default.oldest.id == seeded["oldest ready"].id
    assert timedelta(minutes=5) <= default.oldest_age < timedelta(minutes=6)
    # 'later' is not due; the stale PENDING one is READY and due for 5 minutes.
    assert (str(emails.ready), str(emails.running)) == ("3", "0")
    assert emails.oldest.id == seeded["pending"].id

    hour, day = default.windows
    # The last hour: 3 SUCCESSFUL (1, 2, 30 min ago) + the retried one, 1 FAILED.
    assert (hour.label, hour.finished, str(hour.failed), hour.failure_rate) == (
        "1 h",
        "5",
        "1",
        "20.0%",
    )
    assert (day.finished, str(day.failed), day.failure_rate) == ("6", "1", "16.7%")
    email_hour, email_day = emails.windows
    assert (email_hour.finished, email_hour.failure_rate) == ("0", "-")
    assert (email_day.finished, email_day.failure_rate) == ("1", "100.0%")

    # Durations of each path's last attempts (the retried one: 2 s, not 102 s).
    by_path = {d.task_path: d for d in default.durations}
    noop = by_path["tests.tasks.noop"]
    assert (noop.runs, noop.p50, noop.p95, noop.slowest) == (6, 2.0, 10.0, 10.0)
    assert (by_path["tests.tasks.failing"].runs, by_path["tests.tasks.failing"].p50) == (1, 0.5)
    assert default.sampled == 7
    assert [(d.task_path, d.runs, d.p95) for d in emails.durations] == [
        ("tests.tasks.noop", 1, 0.25)
    ]

    backend = next(b for b in context["backends"] if b["figures"].alias == "default")
    figures = backend["figures"]
    assert str(figures.stuck) == "1"
    assert [e.id for e in figures.stuck_items] == [seeded["stuck"].id]
    assert str(figures.pending) == "1"  # not the one enqueued just now
    assert [e.id for e in figures.pending_items] == [seeded["pending"].id]

    html = response.content.decode()
    assert f"taskexecution/default/{seeded['stuck'].id}/" in html
    assert f"taskexecution/default/{seeded['pending'].id}/" in html
    assert "?backend=default&amp;status=READY&amp;queue=default" in html
    assert "Durations of the last 100 finished executions per queue" in html
    assert "PENDING dispatch for more than 60 s" in html
    assert 'data-seconds="30"' in html  # the auto-refresh
    assert "Counts stop" not in html
    # The other backends are shown, empty.
    assert [b["figures"].alias for b in context["backends"]] == list(firestore_backends())


def test_one_backend_only(superuser: Client, add_execution: Callable[..., TaskExecution]) -> None:
    add_execution(backend="jobs")
    response = superuser.get(DASHBOARD + "?backend=jobs")
    assert [b["figures"].alias for b in response.context["backends"]] == ["jobs"]
    assert str(queue(response.context, "default", "jobs").ready) == "1"
    response = superuser.get(DASHBOARD + "?backend=nope")
    assert len(response.context["backends"]) == len(response.context["choices"])
    assert "Unknown backend &#x27;nope&#x27;; showing every backend." in response.content.decode()


def test_capped_counts_are_shown_with_a_plus(
    superuser: Client, add_execution: Callable[..., TaskExecution], monkeypatch: Any
) -> None:
    from django_tasks_fs.admin.executions import TaskExecutionAdmin

    monkeypatch.setattr(TaskExecutionAdmin, "count_limit", 2)
    for _ in range(3):
        add_execution()
    html = superuser.get(DASHBOARD + "?backend=default").content.decode()
    assert '<td class="num" data-figure="ready"><a href="' in html
    assert ">2+</a>" in html
    assert "Counts stop at 2 (shown as 2+)" in html


@pytest.mark.parametrize(
    ("perms", "status"),
    [((), 403), (("view_taskexecution",), 200), (("change_taskexecution",), 200)],
)
def test_the_dashboard_needs_the_view_permission(
    login: Callable[..., Client], tasks_project: str, perms: tuple[str, ...], status: int
) -> None:
    client = login(*perms)
    assert client.get(DASHBOARD).status_code == status
    index = client.get("/admin/").content.decode()
    assert ("Task dashboard" in index) == (status == 200)


def test_percentiles_and_rates() -> None:
    assert percentile([5.0], 50) == percentile([5.0], 95) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95)) == (50.0, 95.0)
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0

    def window(ok: int, failed: int, limit: int | None = 10) -> Window:
        return Window("1 h", 1.0, Capped(ok, limit), Capped(failed, limit))

    assert window(3, 1).failure_rate == "25.0%"
    assert window(0, 0).failure_rate == "-"
    assert (window(10, 1).failure_rate, window(10, 1).finished) == ("≤ 9.1%", "11+")
    assert window(1, 10).failure_rate == "≥ 90.9%"
    assert window(10, 10).failure_rate == "?"
    assert window(10, 10, None).failure_rate == "50.0%"
    assert window(30, 6, None).per_hour == "36.0/h"
    assert str(Capped(1000, 1000)) == "1,000+"
    assert str(Capped(999, 1000)) == "999"
