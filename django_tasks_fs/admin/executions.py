"""The task executions admin: the ModelAdmin wiring of the list, the detail and actions.

The list is an ExecutionChangeList (execution_list.py), the actions are in
execution_actions.py. Every page reads Firestore through the backend's ExecutionStore;
the placeholder model only carries the admin registration and the permissions.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.tasks.exceptions import InvalidTask
from django.urls import URLPattern
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from ..backends.base import FirestoreBackend
from ..exceptions import ExecutionNotFound, MissingCloudResource, TaskNotImportable
from ..policy import effective_rows
from ..registry import backend_holding, firestore_backends
from ..store import DispatchState, TaskExecution
from ..store.documents import is_document_id
from .common import (
    FirestoreModelAdmin,
    duration,
    local,
    pretty_json,
    status_badge,
)
from .dashboard_page import dashboard_page
from .execution_actions import ACTIONS, Action
from .execution_list import ExecutionChangeList


class TaskExecutionAdmin(FirestoreModelAdmin):
    """List, inspect, cancel, retry and delete the executions kept in Firestore."""

    list_per_page = 100
    #: The per-status counts above the list stop at this many ("1,000+"), so each is
    #: billed 1 read whatever the collection holds; None counts exactly (1 read per
    #: 1,000 matching executions per count, on every page view).
    count_limit: int | None = 1000
    template_prefix = "django_tasks_fs/admin/"
    #: The dashboard: finished executions read per queue for the duration percentiles,
    #: stuck / PENDING executions listed per backend, seconds between refreshes.
    dashboard_sample = 100
    dashboard_listed = 10
    dashboard_refresh_seconds = 30

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # executions are created by enqueueing tasks

    def get_urls(self) -> list[URLPattern]:
        return [
            self.route("", self.changelist_view, "changelist"),
            self.route("dashboard/", self.dashboard_view, "dashboard"),
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
        changelist = ExecutionChangeList(
            request,
            backends,
            per_page=self.list_per_page,
            count_limit=self.count_limit,
            detail_url=lambda alias, execution_id: self.url("change", alias, execution_id),
        )
        context = self.context(
            request,
            "Select task execution to view",
            **changelist.context(),
            actions=self.allowed_actions(request),
            return_to=request.get_full_path(),
            dashboard_url=self.url("dashboard"),
            **(extra_context or {}),
        )
        return render(request, self.template_prefix + "execution_list.html", context)

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        """Per backend and queue: ready, running, oldest waiting, finished, durations, stuck."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return dashboard_page(self, request)

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
        if e.group_id is not None:  # read from the execution itself: no extra read
            fields.append(("Group", f"{e.group_id} (one of {e.group_size} members)"))
        if e.unique_key is not None:
            fields.append(("Unique key", e.unique_key))
        runtime = [
            ("Lease owner", e.lease_owner or ""),
            ("Lease expires", local(e.lease_expires_at)),
            ("Last heartbeat", local(e.heartbeat_at)),
            ("Cancel requested", local(e.cancelled_at)),
            ("Force cancel", e.force_cancel),
            ("Dispatch state", dispatch_state_label(e)),
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
            policy=effective_rows(
                max_attempts=e.max_attempts,
                run_once=e.run_once,
                timeout_seconds=e.timeout_seconds,
                policy=e.retry_policy,
            ),
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


def dispatch_state_label(execution: TaskExecution) -> str:
    """The dispatch state, and what PENDING means for this one: a successful send is
    recorded by the first delivery, so a task sent but not delivered yet (a later
    run_after, a backlog) is PENDING too, and that is no cause for alarm."""
    state = str(execution.dispatch_state)
    if execution.dispatch_state != DispatchState.PENDING or execution.is_finished:
        return state
    if execution.dispatch_error:
        return f"{state}: the send failed; the sweeper sends it again"
    return (
        f"{state}: sent, awaiting its first delivery "
        "(which records it; the sweeper sends it again if none comes)"
    )
