"""An AdminSite that works with no SQL database, signed in by Identity-Aware Proxy.

Use it by putting ``"django_tasks_fs.admin_site.FirestoreAdminConfig"`` in
INSTALLED_APPS instead of ``"django.contrib.admin"``: ``admin.site`` becomes a
:class:`FirestoreAdminSite`. With ``TASKS_FS_IAP`` set, IAP is the only way in: a
request without a valid assertion gets 401, a user without a grant 403, and there is
no login form, password change or admin log (they need SQL tables). Without
``TASKS_FS_IAP`` it behaves as Django's own site.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.sites import AdminSite
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_protect

from .iap.config import SETTING, iap_config

#: IAP's own sign-out URL (on the host it protects): clears the IAP login cookie.
IAP_SIGN_OUT = "/?gcp-iap-mode=CLEAR_LOGIN_COOKIE"

_View = TypeVar("_View", bound=Callable[..., Any])


def has_sql_database() -> bool:
    engine = settings.DATABASES.get("default", {}).get("ENGINE", "")
    return bool(engine) and not engine.endswith(".dummy")


class FirestoreAdminSite(AdminSite):
    index_template = "django_tasks_fs/admin/index.html"

    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        inner = super().admin_view(view, cacheable)

        def gate(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if iap_config().configured and not self.has_permission(request):
                return self.refuse(request)
            return inner(request, *args, **kwargs)

        update_wrapper(gate, inner)
        gate.csrf_exempt = True  # type: ignore[attr-defined]  # inner is csrf_protect-ed
        return cast(_View, gate)

    def refuse(self, request: HttpRequest) -> HttpResponse:
        """401: no valid IAP assertion; 403: a Google account with no grant."""
        user = request.user
        if user.is_authenticated:
            status, heading = 403, "You have no access to this admin"
            message = (
                f"{user} is signed in through Identity-Aware Proxy but has no grant in "
                f"settings.{SETTING}['GRANTS']. Ask an administrator to add it."
            )
        else:
            status, heading = 401, "Sign-in through Identity-Aware Proxy required"
            message = getattr(request, "iap_refusal", "no valid IAP assertion")
        context = {
            **self.each_context(request),
            "title": heading,
            "heading": heading,
            "message": message,
            "has_permission": False,
        }
        response = TemplateResponse(
            request, "django_tasks_fs/admin/iap_refused.html", context, status=status
        )
        add_never_cache_headers(response)
        return response

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not iap_config().configured:
            return super().login(request, extra_context)
        if self.has_permission(request):
            return HttpResponseRedirect(self.reverse("index"))
        return self.refuse(request)

    def logout(  # type: ignore[override]  # a redirect to IAP's sign-out
        self, request: HttpRequest, extra_context: Any = None
    ) -> HttpResponse:
        if not iap_config().configured:
            return super().logout(request, extra_context)
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        return csrf_protect(lambda r: HttpResponseRedirect(IAP_SIGN_OUT))(request)

    def password_change(self, request: HttpRequest, extra_context: Any = None) -> TemplateResponse:
        if iap_config().configured:
            raise Http404("Google accounts signed in by IAP have no password here.")
        return super().password_change(request, extra_context)

    def password_change_done(
        self, request: HttpRequest, extra_context: Any = None
    ) -> TemplateResponse:
        if iap_config().configured:
            raise Http404("Google accounts signed in by IAP have no password here.")
        return super().password_change_done(request, extra_context)

    def index(self, request: HttpRequest, extra_context: Any = None) -> TemplateResponse:
        # "Recent actions" reads django.contrib.admin's LogEntry table.
        show_log = has_sql_database() and not iap_config().configured
        extra = {"tfs_show_log": show_log, "tfs_dashboard_url": self.dashboard_url(request)}
        return super().index(request, {**extra, **(extra_context or {})})

    def dashboard_url(self, request: HttpRequest) -> str | None:
        """The task dashboard's URL, if the executions admin is here and lets ``request`` view."""
        from .models import TaskExecution

        model_admin = self._registry.get(TaskExecution)
        if model_admin is None or not model_admin.has_view_permission(request):
            return None
        return self.reverse("django_tasks_fs_taskexecution_dashboard")

    def reverse(self, name: str) -> str:
        from django.urls import reverse

        return reverse(f"admin:{name}", current_app=self.name)


class FirestoreAdminConfig(AdminConfig):
    """``django.contrib.admin`` with :class:`FirestoreAdminSite` as ``admin.site``."""

    default_site = "django_tasks_fs.admin_site.FirestoreAdminSite"
