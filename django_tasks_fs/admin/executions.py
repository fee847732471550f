"""The task executions admin: a cursor-paginated list, a read-only detail, and actions.

Every page reads Firestore through the backend's ExecutionStore; the placeholder
model only carries the admin registration and the permissions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.tasks import TaskResultStatus
from django.tasks.exceptions import InvalidTask
from django.urls import URLPattern
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from ..backends.base import FirestoreBackend
from ..cancellation import cancel
from ..exceptions import ExecutionNotFound, MissingCloudResource, TaskNotImportable
from ..registry import backend_holding, firestore_backends
from ..results import load_task
from ..store import CancelOutcome, ExecutionFilter, TaskExecution
from ..store.documents import is_document_id
from .common import (
    FirestoreModelAdmin,
    duration,
    local,
    pretty_json,
    status_badge,
)

#: An execution id as the backends create them; a search for one reads that document.
EXECUTION_ID_RE = re.compile(r"^[0-9a-f]{32}$")
STATUSES = [
    TaskResultStatus.READY,
    TaskResultStatus.RUNNING,
    TaskResultStatus.SUCCESSFUL,
    TaskResultStatus.FAILED,
]
#: Earlier pages remembered in the URL for the "previous" link.
MAX_TRAIL = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """One thing the admin can do to an execution."""

    name: str
    label: str
    permission: str  #: "cancel", "retry" (or "change" for both) or "delete"
    refusal: Callable[[FirestoreBackend, TaskExecution], str | None]
    #: Runs it and returns the success message; the third argument links to an
    #: execution's admin page (backend alias, execution id) -> URL.
    run: Callable[[FirestoreBackend, TaskExecution, Callable[[str, str], str]], str]


def _cancel_refusal(backend: FirestoreBackend, execution: TaskExecution) -> str | None:
    if execution.is_finished:
        return (
            f"Cannot cancel execution {execution.id!r}: it already finished ({execution.status})."
        )
    return None


def _force_cancel_refusal(backend: FirestoreBackend, execution: TaskExecution) -> str | None:
    if not backend.supports_force_cancel:
        return (
            f"Cannot force cancel execution {execution.id!r}: backend {backend.alias!r} "
            f"does not support forceful cancellation; use Cancel."
        )
    return _cancel_refusal(backend, execution)


def _retry_refusal(backend: FirestoreBackend, execution: TaskExecution) -> str | None:
    if not execution.is_finished:
        return (
            f"Cannot retry execution {execution.id!r}: it is {execution.status}; "
            f"only finished executions can be retried."
        )
    try:
        load_task(execution.task_path)
    except TaskNotImportable as exc:
        return f"Cannot retry execution {execution.id!r}: {exc}"
    return None


def _delete_refusal(backend: FirestoreBackend, execution: TaskExecution) -> str | None:
    if execution.status == TaskResultStatus.RUNNING:
        return f"Cannot delete execution {execution.id!r}: it is RUNNING; cancel it first."
    return None


def _cancel(backend: FirestoreBackend, execution: TaskExecution, *, force: bool) -> str:
    outcome = cancel(backend, execution.id, force=force)  # the backend is known: no search
    return {
        CancelOutcome.CANCELLED: f"Execution {execution.id} was cancelled before it ran.",
        CancelOutcome.REQUESTED: (
            f"Execution {execution.id} is running: it was asked to stop"
            + (" and is being stopped." if force else ".")
        ),
        CancelOutcome.ALREADY_FINISHED: f"Execution {execution.id} had already finished.",
    }[outcome]


def _retry(
    backend: FirestoreBackend, execution: TaskExecution, link: Callable[[str, str], str]
) -> str:
    task = load_task(execution.task_path).using(
        queue_name=execution.queue_name, priority=execution.priority, backend=backend.alias
    )
    result = task.enqueue(*execution.args, **execution.kwargs)
    return format_html(
        'Execution {} was retried as <a href="{}">{}</a>.',
        execution.id,
        link(backend.alias, result.id),
        result.id,
    )


def _delete(backend: FirestoreBackend, execution: TaskExecution, link: object) -> str:
    backend.executions.delete(execution.id)
    return f"Execution {execution.id} was deleted."


ACTIONS = {
    action.name: action
    for action in [
        Action(
            name="cancel",
            label="Cancel",
            permission="cancel",
            refusal=_cancel_refusal,
            run=lambda b, e, _: _cancel(b, e, force=False),
        ),
        Action(
            name="force_cancel",
            label="Force cancel",
            permission="cancel",
            refusal=_force_cancel_refusal,
            run=lambda b, e, _: _cancel(b, e, force=True),
        ),
        Action(
            name="retry",
            label="Retry (enqueue a copy)",
            permission="retry",
            refusal=_retry_refusal,
            run=_retry,
        ),
        Action(
            name="delete",
            label="Delete",
            permission="delete",
            refusal=_delete_refusal,
            run=_delete,
        ),
    ]
}


class TaskExecutionAdmin(FirestoreModelAdmin):
    """List, inspect, cancel, retry and delete the executions kept in Firestore."""

    list_per_page = 100
    template_prefix = "django_tasks_fs/admin/"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # executions are created by enqueueing tasks

    def get_urls(self) -> list[URLPattern]:
        return [
            self.route("", self.changelist_view, "changelist"),
            # Django's own object URLs (an id without its backend) lead to the detail.
            self.route("<str:execution_id>/", self.find_view, "find"),
            self.route("<str:execution_id>/change/", self.find_view, "find_change"),
            self.route("<str:backend>/<str:execution_id>/", self.detail_view, "change"),
            self.route(
                "<str:backend>/<str:execution_id>/<str:action>/", self.action_view, "action"
            ),
        ]

    # -- permissions ---------------------------------------------------------------

    def allowed(self, request: HttpRequest, action: Action) -> bool:
        if action.permission == "delete":
            return self.has_delete_permission(request)
        opts = self.model._meta
        return self.has_change_permission(request) or request.user.has_perm(
            f"{opts.app_label}.{action.permission}_{opts.model_name}"
        )

    def allowed_actions(self, request: HttpRequest) -> list[Action]:
        return [a for a in ACTIONS.values() if self.allowed(request, a)]

    def _backend(self, alias: str) -> FirestoreBackend:
        backends = firestore_backends()
        if alias not in backends:
            raise Http404(f"No django_tasks_fs backend {alias!r}.")
        return backends[alias]

    def _get(self, backend: FirestoreBackend, execution_id: str) -> TaskExecution:
        try:
            if not is_document_id(execution_id):
                raise ExecutionNotFound(execution_id)
            return backend.executions.get(execution_id)
        except ExecutionNotFound:
            raise Http404(
                f"No task execution {execution_id!r} in backend {backend.alias!r}."
            ) from None

    # -- the list ----------------------------------------------------------------------

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            return self.list_action(request)
        backends = firestore_backends()
        if not backends:
            raise Http404("No django_tasks_fs backend is configured in TASKS.")
        params = request.GET
        alias = params.get("backend") or next(iter(backends))
        if alias not in backends:
            messages.error(request, f"Unknown backend {alias!r}; showing {next(iter(backends))!r}.")
            alias = next(iter(backends))
        backend = backends[alias]
        status = params.get("status") or None
        if status is not None and status not in TaskResultStatus.values:
            messages.error(request, f"Unknown status {status!r}; showing all statuses.")
            status = None
        query = params.get("q", "").strip()
        filters = ExecutionFilter(
            status=TaskResultStatus(status) if status else None,
            backend=alias,
            queue_name=params.get("queue") or None,
            task_path=params.get("task") or None,
        )
        by_id = bool(EXECUTION_ID_RE.match(query))
        if query and not by_id:
            filters = replace(filters, task_path=query)
        cursor = params.get("cursor") or None
        if cursor is not None and not is_document_id(cursor):
            messages.error(request, "That page no longer exists; showing the first page.")
            cursor = None
        trail = [c for c in params.get("trail", "").split(",") if c][-MAX_TRAIL:]
        store = backend.executions
        with ThreadPoolExecutor(max_workers=len(STATUSES) + 1) as pool:
            counts = {s: pool.submit(store.count, replace(filters, status=s)) for s in STATUSES}
            if by_id:
                try:
                    found = store.get(query)
                    items, next_cursor = [found], None
                except ExecutionNotFound:
                    items, next_cursor = [], None
            else:
                try:
                    page = store.page(filters, cursor=cursor, limit=self.list_per_page)
                except ExecutionNotFound:
                    messages.error(request, "That page no longer exists; showing the first page.")
                    page = store.page(filters, limit=self.list_per_page)
                    cursor, trail = None, []
                items, next_cursor = page.items, page.next_cursor
            status_counts = {s: f.result() for s, f in counts.items()}

        def link(**changes: str | None) -> str:
            values = {
                "backend": alias,
                "status": status,
                "queue": filters.queue_name if not query or by_id else params.get("queue"),
                "task": params.get("task"),
                "q": query,
            }
            values.update(changes)
            return "?" + urlencode({k: v for k, v in values.items() if v})

        queue_choices = sorted(set(backend.queues) | {e.queue_name for e in items})
        task_choices = sorted(
            {e.task_path for e in items} | ({params["task"]} if params.get("task") else set())
        )
        filter_groups = [
            (
                "backend",
                [(a, link(backend=a, queue=None), a == alias) for a in backends],
                False,
            ),
            (
                "status",
                [("All", link(status=None), status is None)]
                + [(f"{s} ({status_counts[s]})", link(status=s), s == status) for s in STATUSES],
                True,
            ),
            (
                "queue",
                [("All", link(queue=None), not params.get("queue"))]
                + [(q, link(queue=q), q == params.get("queue")) for q in queue_choices],
                True,
            ),
            (
                "task",
                [("All", link(task=None), not params.get("task"))]
                + [(t, link(task=t), t == params.get("task")) for t in task_choices],
                True,
            ),
        ]
        rows = [
            {
                "execution": e,
                "url": self.url("change", alias, e.id),
                "status": status_badge(e.status),
                "enqueued_at": local(e.enqueued_at),
                "started_at": local(e.started_at),
                "finished_at": local(e.finished_at),
                "duration": duration(e.started_at, e.finished_at),
            }
            for e in items
        ]
        base = link()
        next_url = (
            f"{base}&"
            + urlencode({"cursor": next_cursor, "trail": ",".join([*trail, cursor or "-"])})
            if next_cursor
            else None
        )
        previous_url = None
        if cursor:
            earlier = trail[:-1]
            previous = trail[-1] if trail and trail[-1] != "-" else ""
            extra = {"cursor": previous, "trail": ",".join(earlier)}
            previous_url = f"{base}&" + urlencode({k: v for k, v in extra.items() if v})
        total = sum(status_counts.values())
        context = self.context(
            request,
            "Select task execution to view",
            rows=rows,
            backend=backend,
            filter_groups=filter_groups,
            status_counts=[(s, status_counts[s]) for s in STATUSES],
            total=total,
            shown_total=status_counts[filters.status] if filters.status else total,
            query=query,
            page_number=len(trail) + 1 if cursor else 1,
            next_url=next_url,
            previous_url=previous_url,
            first_url=base if cursor else None,
            actions=self.allowed_actions(request),
            return_to=request.get_full_path(),
            **(extra_context or {}),
        )
        return render(request, self.template_prefix + "execution_list.html", context)

    # -- the detail ----------------------------------------------------------------------

    def find_view(self, request: HttpRequest, execution_id: str) -> HttpResponse:
        """Redirect ``<id>/`` (Django's URL shape) to the execution in whichever backend has it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if is_document_id(execution_id):
            try:
                backend = backend_holding(execution_id)
            except ExecutionNotFound:
                pass
            else:
                return HttpResponseRedirect(self.url("change", backend.alias, execution_id))
        raise Http404(f"No task execution {execution_id!r} in any django_tasks_fs backend.")

    def detail_view(self, request: HttpRequest, backend: str, execution_id: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        found = self._backend(backend)
        execution = self._get(found, execution_id)
        e = execution
        fields = [
            ("Id", e.id),
            ("Task", e.task_path),
            ("Status", status_badge(e.status)),
            ("Backend", e.backend),
            ("Queue", e.queue_name),
            ("Priority", e.priority),
            ("Takes context", e.takes_context),
            ("Attempts", f"{e.attempts} of {e.max_attempts or 'unlimited'}"),
            ("Run once", e.run_once),
            ("Timeout", f"{e.timeout_seconds} s" if e.timeout_seconds else "none"),
            ("Enqueued", local(e.enqueued_at)),
            ("Run after", local(e.run_after)),
            ("Started", local(e.started_at)),
            ("Last attempted", local(e.last_attempted_at)),
            ("Finished", local(e.finished_at)),
            ("Duration", duration(e.started_at, e.finished_at)),
            ("Scheduled task", e.scheduled_task or ""),
            ("Expires", local(e.expires_at)),
        ]
        runtime = [
            ("Lease owner", e.lease_owner or ""),
            ("Lease expires", local(e.lease_expires_at)),
            ("Last heartbeat", local(e.heartbeat_at)),
            ("Cancel requested", local(e.cancelled_at)),
            ("Force cancel", e.force_cancel),
            ("Dispatch state", str(e.dispatch_state)),
            ("Dispatch error", e.dispatch_error or ""),
            ("Cloud Tasks task", e.cloud_task_name or ""),
            ("Cloud Run execution", e.cloud_run_execution or ""),
        ]
        # Only what can be done now: no Cancel on a finished execution, no Retry on a
        # running one (the action URLs still explain a refusal to whoever types them).
        actions = [
            {"action": a, "url": self.url("action", found.alias, e.id, a.name)}
            for a in self.allowed_actions(request)
            if a.refusal(found, e) is None
        ]
        context = self.context(
            request,
            f"Task execution {e.id}",
            execution=e,
            fields=fields,
            runtime=runtime,
            args=pretty_json(e.args),
            kwargs=pretty_json(e.kwargs),
            return_value=pretty_json(e.return_value),
            errors=list(reversed(list(enumerate(e.errors, start=1)))),
            worker_ids=list(enumerate(e.worker_ids, start=1)),
            actions=actions,
            changelist_url=self.url("changelist") + f"?backend={found.alias}",
        )
        return render(request, self.template_prefix + "execution_detail.html", context)

    # -- actions -------------------------------------------------------------------------

    def action_view(
        self, request: HttpRequest, backend: str, execution_id: str, action: str
    ) -> HttpResponse:
        """Confirm (GET) and run (POST) one action on one execution."""
        if action not in ACTIONS:
            raise Http404(f"Unknown action {action!r}.")
        chosen = ACTIONS[action]
        if not self.has_view_permission(request) or not self.allowed(request, chosen):
            raise PermissionDenied
        found = self._backend(backend)
        execution = self._get(found, execution_id)
        detail = self.url("change", found.alias, execution.id)
        if request.method == "POST":
            self.perform(request, found, chosen, [execution])
            if chosen.name == "delete" and not chosen.refusal(found, execution):
                return HttpResponseRedirect(self.url("changelist") + f"?backend={found.alias}")
            return HttpResponseRedirect(detail)
        return self.confirmation(request, found, chosen, [execution], return_to=detail)

    def list_action(self, request: HttpRequest) -> HttpResponse:
        """The action form of the list: confirm first, then run on the selected ids."""
        return_to = request.POST.get("return_to") or self.url("changelist")
        # Back to a page of this site only: not '//evil.example/' nor '/\\evil.example/'.
        if not return_to.startswith("/") or not url_has_allowed_host_and_scheme(
            return_to, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return_to = self.url("changelist")
        name = request.POST.get("action", "")
        ids = request.POST.getlist("_selected_action")
        if name not in ACTIONS:
            messages.warning(request, "No action selected.")
            return HttpResponseRedirect(return_to)
        chosen = ACTIONS[name]
        if not self.allowed(request, chosen):
            raise PermissionDenied
        if not ids:
            messages.warning(request, "Items must be selected in order to perform actions on them.")
            return HttpResponseRedirect(return_to)
        found = self._backend(request.POST.get("backend", ""))
        executions = found.executions.get_many([i for i in ids if is_document_id(i)])
        missing = set(ids) - {e.id for e in executions}
        for execution_id in sorted(missing):
            messages.error(
                request, f"No task execution {execution_id!r}; it may have been deleted."
            )
        if request.POST.get("confirm") == "yes":
            self.perform(request, found, chosen, executions)
            return HttpResponseRedirect(return_to)
        return self.confirmation(request, found, chosen, executions, return_to=return_to)

    def confirmation(
        self,
        request: HttpRequest,
        backend: FirestoreBackend,
        action: Action,
        executions: list[TaskExecution],
        *,
        return_to: str,
    ) -> HttpResponse:
        items = [
            {
                "execution": e,
                "status": status_badge(e.status),
                "refusal": action.refusal(backend, e),
                "url": self.url("change", backend.alias, e.id),
            }
            for e in executions
        ]
        context = self.context(
            request,
            f"{action.label}: are you sure?",
            action=action,
            backend=backend,
            items=items,
            applicable=sum(1 for i in items if not i["refusal"]),
            return_to=return_to,
            single=request.resolver_match is not None
            and request.resolver_match.url_name is not None
            and request.resolver_match.url_name.endswith("_action"),
            changelist_url=self.url("changelist"),
        )
        return render(request, self.template_prefix + "execution_confirm.html", context)

    def perform(
        self,
        request: HttpRequest,
        backend: FirestoreBackend,
        action: Action,
        executions: list[TaskExecution],
    ) -> None:
        """Run ``action`` on each execution, with one message per execution."""
        for execution in executions:
            try:
                current = backend.executions.get(execution.id)
            except ExecutionNotFound:
                messages.error(
                    request, f"No task execution {execution.id!r}; it may have been deleted."
                )
                continue
            refusal = action.refusal(backend, current)
            if refusal:
                messages.error(request, refusal)
                continue
            try:
                done = action.run(backend, current, lambda b, i: self.url("change", b, i))
            except (ExecutionNotFound, InvalidTask, TaskNotImportable, MissingCloudResource) as exc:
                messages.error(request, f"{action.label} failed for {execution.id}: {exc}")
                continue
            messages.success(request, format_html("{}", done))
