"""What both admins share: value formatting and the base view."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.tasks import TaskResultStatus
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..exceptions import StoreNotConfigured, StoreUnavailable

logger = logging.getLogger(__name__)

#: Colours of the admin's own boolean icons (admin/img/icon-yes.svg, icon-no.svg).
STATUS_STYLE = {
    TaskResultStatus.SUCCESSFUL: ("#70bf2b", "admin/img/icon-yes.svg"),
    TaskResultStatus.FAILED: ("#dd4646", "admin/img/icon-no.svg"),
    TaskResultStatus.RUNNING: ("#447e9b", "admin/img/icon-info.svg"),
    TaskResultStatus.READY: ("#666666", "admin/img/icon-unknown.svg"),
}


def status_badge(status: TaskResultStatus) -> SafeString:
    from django.templatetags.static import static

    colour, icon = STATUS_STYLE[status]
    return format_html(
        '<span class="tfs-status" data-status="{}" style="color: {}; font-weight: bold">'
        '<img src="{}" alt="{}"> {}</span>',
        status,
        colour,
        static(icon),
        status,
        status.label if hasattr(status, "label") else status,
    )


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def local(value: datetime | None) -> datetime | None:
    return None if value is None else timezone.localtime(value)


def duration(start: datetime | None, end: datetime | None) -> str:
    """'1.234 s', '2 min 3 s' or '' when not finished."""
    if start is None or end is None:
        return ""
    seconds = (end - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.3f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


class FirestoreModelAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """A ModelAdmin whose pages read Firestore through the store instead of querysets."""

    def route(self, pattern: str, view: Callable[..., Any], name: str) -> URLPattern:
        """An admin URL for ``view``, named like Django's (``app_model_name``)."""
        opts = self.model._meta
        return path(
            pattern,
            self.admin_site.admin_view(self._firestore_errors(view)),
            name=f"{opts.app_label}_{opts.model_name}_{name}",
        )

    def _firestore_errors(self, view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        """Firestore unreachable (within firestore_timeout_seconds) or not configured:
        a 503 page with the message, not a hang and a 500."""

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except (StoreUnavailable, StoreNotConfigured) as exc:
                logger.warning("admin page %s: %s", request.path, exc)
                heading = (
                    "Firestore is not configured"
                    if isinstance(exc, StoreNotConfigured)
                    else "Firestore is unavailable"
                )
                context = self.context(request, heading, heading=heading, message=str(exc))
                return render(
                    request, "django_tasks_fs/admin/unavailable.html", context, status=503
                )

        return wrapper

    def url(self, name: str, *args: str) -> str:
        """Reverse one of this admin's URLs (``changelist``, ``change``, ...)."""
        opts = self.model._meta
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_{name}",
            args=args,
            current_app=self.admin_site.name,
        )

    def context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        """The template context every admin page needs (site header, sidebar, perms)."""
        opts = self.model._meta
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": opts,
            "app_label": opts.app_label,
            "has_view_permission": self.has_view_permission(request),
            "has_change_permission": self.has_change_permission(request),
            "has_delete_permission": self.has_delete_permission(request),
            "has_add_permission": self.has_add_permission(request),
            **extra,
        }
