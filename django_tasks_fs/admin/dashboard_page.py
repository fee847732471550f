"""The dashboard page: which backends to show, and its figures as the template wants them."""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from ..dispatching import DEFAULT_GRACE
from ..registry import firestore_backends
from ..store import TaskExecution
from .common import duration, local, status_badge
from .dashboard import BackendFigures, Dashboard


class DashboardAdmin(Protocol):
    """What the page needs of the executions admin (TaskExecutionAdmin)."""

    count_limit: int | None
    dashboard_sample: int
    dashboard_listed: int
    dashboard_refresh_seconds: int
    template_prefix: str

    def url(self, name: str, *args: str) -> str: ...

    def context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]: ...


def dashboard_page(admin: DashboardAdmin, request: HttpRequest) -> HttpResponse:
    """Every backend's figures (``?backend=alias``: that one's only)."""
    backends = firestore_backends()
    if not backends:
        raise Http404("No django_tasks_fs backend is configured in TASKS.")
    alias = request.GET.get("backend") or None
    if alias is not None and alias not in backends:
        messages.error(request, f"Unknown backend {alias!r}; showing every backend.")
        alias = None
    chosen = [backends[alias]] if alias else list(backends.values())
    dashboard = Dashboard(
        chosen,
        count_limit=admin.count_limit,
        sample=admin.dashboard_sample,
        listed=admin.dashboard_listed,
        grace=DEFAULT_GRACE,
    )
    changelist = admin.url("changelist")

    def list_url(**params: str | None) -> str:
        return changelist + "?" + urlencode({k: v for k, v in params.items() if v})

    def item(backend: str, execution: TaskExecution, since: Any) -> dict[str, Any]:
        return {
            "execution": execution,
            "url": admin.url("change", backend, execution.id),
            "status": status_badge(execution.status),
            "since": local(since),
        }

    def backend_context(figures: BackendFigures) -> dict[str, Any]:
        a = figures.alias
        return {
            "figures": figures,
            "list_url": list_url(backend=a),
            "queues": [
                {
                    "figures": q,
                    "label": q.name or "all queues",
                    "ready_url": list_url(backend=a, status="READY", queue=q.name),
                    "running_url": list_url(backend=a, status="RUNNING", queue=q.name),
                    "oldest_url": q.oldest and admin.url("change", a, q.oldest.id),
                    "oldest_age": q.oldest_age is not None
                    and duration(figures.now - q.oldest_age, figures.now),
                }
                for q in figures.queues
            ],
            "durations": [d for q in figures.queues for d in q.durations],
            "stuck": [item(a, e, e.lease_expires_at) for e in figures.stuck_items],
            "pending": [item(a, e, e.enqueued_at) for e in figures.pending_items],
        }

    shown = [backend_context(b) for b in dashboard.backends]
    capped = any(
        c.capped
        for b in dashboard.backends
        for c in (
            b.stuck,
            b.pending,
            *(x for q in b.queues for x in (q.ready, q.running)),
            *(x for q in b.queues for w in q.windows for x in (w.successful, w.failed)),
        )
    )
    context = admin.context(
        request,
        "Task dashboard",
        backends=shown,
        choices=[(a, f"?backend={a}", a == alias) for a in backends],
        all_url="?",
        alias=alias,
        sample=admin.dashboard_sample,
        listed=admin.dashboard_listed,
        refresh_seconds=admin.dashboard_refresh_seconds,
        grace_seconds=int(DEFAULT_GRACE.total_seconds()),
        count_note=(
            f"Counts stop at {admin.count_limit:,} (shown as {admin.count_limit:,}+): a "
            "Firestore count is billed 1 read per 1,000 executions it counts."
            if capped and admin.count_limit is not None
            else ""
        ),
        changelist_url=changelist,
    )
    return render(request, admin.template_prefix + "dashboard.html", context)
