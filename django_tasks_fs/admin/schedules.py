"""The scheduled tasks admin: list, add / change / delete with a validating form, and
enable / disable / run now / sync actions. Saving or deleting syncs Cloud Scheduler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.tasks.exceptions import InvalidTask
from django.urls import URLPattern
from django.utils import timezone

from ..backends.base import FirestoreBackend
from ..exceptions import MissingCloudResource, ScheduleNotFound, TaskNotImportable
from ..gcp.errors import GoogleCloudError
from ..registry import firestore_backends
from ..results import load_task
from ..scheduling import schedule_task
from ..scheduling.cron import next_slot
from ..scheduling.firing import run_now
from ..store import ScheduledTask
from ..store.documents import is_document_id
from .common import FirestoreModelAdmin, local
from .forms import ScheduledTaskForm, describe_cron

ScheduleAction = Callable[[HttpRequest, FirestoreBackend, ScheduledTask], None]


def _warn_sync(request: HttpRequest, schedule: ScheduledTask) -> None:
    if schedule.sync_error:
        messages.warning(
            request,
            f"Scheduled task {schedule.name!r} was saved, but Cloud Scheduler could not be "
            f"synced: {schedule.sync_error} Use the 'Sync with Cloud Scheduler' action to retry.",
        )


def _set_enabled(enabled: bool) -> ScheduleAction:
    def run(request: HttpRequest, backend: FirestoreBackend, schedule: ScheduledTask) -> None:
        saved = backend.schedules.update(schedule.name, lambda s: s.evolve(enabled=enabled))
        synced = backend.sync_schedule(saved)
        state = "enabled" if enabled else "disabled"
        messages.success(request, f"Scheduled task {schedule.name!r} was {state}.")
        _warn_sync(request, synced)

    return run


def _run_now(request: HttpRequest, backend: FirestoreBackend, schedule: ScheduledTask) -> None:
    result = run_now(backend, schedule)
    messages.success(
        request, f"Scheduled task {schedule.name!r} was enqueued now as execution {result.id}."
    )


def _sync(request: HttpRequest, backend: FirestoreBackend, schedule: ScheduledTask) -> None:
    synced = backend.sync_schedule(schedule)
    if synced.sync_error:
        _warn_sync(request, synced)
    else:
        messages.success(request, f"Scheduled task {schedule.name!r} was synced.")


ACTIONS: dict[str, tuple[str, ScheduleAction]] = {
    "enable": ("Enable", _set_enabled(True)),
    "disable": ("Disable", _set_enabled(False)),
    "run_now": ("Run now", _run_now),
    "sync": ("Sync with Cloud Scheduler", _sync),
}


class ScheduledTaskAdmin(FirestoreModelAdmin):
    """Manage the cron schedules kept in Firestore."""

    template_prefix = "django_tasks_fs/admin/"

    def get_urls(self) -> list[URLPattern]:
        return [
            self.route("", self.changelist_view, "changelist"),
            self.route("add/", self.add_view, "add"),
            self.route("<str:backend>/<str:name>/change/", self.schedule_change_view, "change"),
            self.route("<str:backend>/<str:name>/delete/", self.schedule_delete_view, "delete"),
        ]

    def _all(self) -> list[tuple[FirestoreBackend, ScheduledTask]]:
        """Every schedule once, with the backend whose store holds it, by name."""
        backends = firestore_backends()
        seen_stores = set()
        found: list[tuple[FirestoreBackend, ScheduledTask]] = []
        for backend in backends.values():
            if backend.config.store_settings() in seen_stores:
                continue
            seen_stores.add(backend.config.store_settings())
            for schedule in backend.schedules.list():
                owner = backends.get(schedule.backend, backend)
                found.append((owner, schedule))
        return sorted(found, key=lambda pair: (pair[1].name, pair[0].alias))

    def _get(self, alias: str, name: str) -> tuple[FirestoreBackend, ScheduledTask]:
        backends = firestore_backends()
        if alias not in backends:
            raise Http404(f"No django_tasks_fs backend {alias!r}.")
        try:
            if not is_document_id(name):
                raise ScheduleNotFound(name)
            return backends[alias], backends[alias].schedules.get(name)
        except (ScheduleNotFound, ValueError):
            raise Http404(f"No scheduled task {name!r} in backend {alias!r}.") from None

    # -- the list ----------------------------------------------------------------------

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            return self.list_action(request)
        now = timezone.now()
        rows = []
        for backend, s in self._all():
            try:
                upcoming = local(next_slot(s.schedule, s.time_zone, now)) if s.enabled else None
            except (ValueError, KeyError):
                upcoming = None
            rows.append(
                {
                    "schedule": s,
                    "key": f"{backend.alias}/{s.name}",
                    "url": self.url("change", backend.alias, s.name),
                    "words": describe_cron(s.schedule),
                    "next_run": upcoming,
                    "last_fired": local(s.last_fired_at),
                }
            )
        context = self.context(
            request,
            "Select scheduled task to change",
            rows=rows,
            actions=ACTIONS.items() if self.has_change_permission(request) else [],
            add_url=self.url("add"),
            **(extra_context or {}),
        )
        return render(request, self.template_prefix + "schedule_list.html", context)

    def list_action(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        back = self.url("changelist")
        name = request.POST.get("action", "")
        if name not in ACTIONS:
            messages.warning(request, "No action selected.")
            return HttpResponseRedirect(back)
        keys = request.POST.getlist("_selected_action")
        if not keys:
            messages.warning(request, "Items must be selected in order to perform actions on them.")
            return HttpResponseRedirect(back)
        label, run = ACTIONS[name]
        for key in keys:
            alias, _, schedule_name = key.partition("/")
            try:
                backend, schedule = self._get(alias, schedule_name)
            except Http404:
                messages.error(
                    request, f"No scheduled task {schedule_name!r}; it may have been deleted."
                )
                continue
            try:
                run(request, backend, schedule)
            except (TaskNotImportable, InvalidTask, ScheduleNotFound, MissingCloudResource) as exc:
                messages.error(request, f"{label} failed for {schedule.name!r}: {exc}")
        return HttpResponseRedirect(back)

    # -- add / change ------------------------------------------------------------------

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        return self._form_view(request, None, None)

    def schedule_change_view(self, request: HttpRequest, backend: str, name: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return self._form_view(request, *self._get(backend, name))

    def _form_view(
        self,
        request: HttpRequest,
        backend: FirestoreBackend | None,
        schedule: ScheduledTask | None,
    ) -> HttpResponse:
        creating = schedule is None
        can_save = (
            self.has_add_permission(request) if creating else self.has_change_permission(request)
        )
        initial: dict[str, Any] = {"backend": next(iter(firestore_backends()), None)}
        if schedule is not None:
            initial = {
                "name": schedule.name,
                "task_path": schedule.task_path,
                "schedule": schedule.schedule,
                "time_zone": schedule.time_zone,
                "backend": schedule.backend,
                "queue_name": schedule.queue_name,
                "priority": schedule.priority,
                "args": ScheduledTaskForm.dump(schedule.args),
                "kwargs": ScheduledTaskForm.dump(schedule.kwargs),
                "enabled": schedule.enabled,
                "description": schedule.description,
            }
        if request.method == "POST":
            if not can_save:
                raise PermissionDenied
            form = ScheduledTaskForm(request.POST, initial=initial, creating=creating)
            if form.is_valid():
                data = form.cleaned_data
                saved = schedule_task(
                    load_task(data["task_path"]),
                    data["schedule"],
                    name=data["name"],
                    description=data["description"],
                    time_zone=data["time_zone"],
                    enabled=data["enabled"],
                    backend=data["backend"],
                    queue_name=data["queue_name"],
                    priority=data["priority"],
                    args=data["args"],
                    kwargs=data["kwargs"],
                )
                verb = "added" if creating else "changed"
                messages.success(request, f"The scheduled task {saved.name!r} was {verb}.")
                _warn_sync(request, saved)
                return HttpResponseRedirect(self.url("changelist"))
        else:
            form = ScheduledTaskForm(initial=initial, creating=creating)
        if not can_save:
            for field in form.fields.values():
                field.disabled = True
        shown = schedule.name if schedule else ""
        title = "Add scheduled task" if creating else f"Change scheduled task {shown}"
        context = self.context(
            request,
            title if can_save else f"View scheduled task {shown}",
            form=form,
            schedule=schedule,
            can_save=can_save,
            words=describe_cron(schedule.schedule) if schedule else "",
            delete_url=(
                self.url("delete", backend.alias, schedule.name)
                if backend and schedule and self.has_delete_permission(request)
                else None
            ),
            changelist_url=self.url("changelist"),
        )
        return render(request, self.template_prefix + "schedule_form.html", context)

    # -- delete --------------------------------------------------------------------------

    def schedule_delete_view(self, request: HttpRequest, backend: str, name: str) -> HttpResponse:
        if not self.has_delete_permission(request):
            raise PermissionDenied
        owner, schedule = self._get(backend, name)
        if request.method == "POST":
            try:
                owner.delete_schedule(schedule)
            except GoogleCloudError as exc:
                messages.warning(
                    request,
                    f"The Cloud Scheduler job of {name!r} could not be deleted ({exc}); "
                    f"delete it in the Google Cloud console.",
                )
            owner.schedules.delete(name)
            messages.success(request, f"The scheduled task {name!r} was deleted.")
            return HttpResponseRedirect(self.url("changelist"))
        context = self.context(
            request,
            "Are you sure?",
            schedule=schedule,
            changelist_url=self.url("changelist"),
            change_url=self.url("change", owner.alias, name),
        )
        return render(request, self.template_prefix + "schedule_delete.html", context)
