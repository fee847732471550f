"""System checks for ``TASKS_FS_IAP`` and the no-SQL admin (ids E020 to E029, W020 to W029)."""

from __future__ import annotations

import importlib.util
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks

from .config import GOOGLE_IAP_CERTS_URL, SETTING, iap_config

MIDDLEWARE = "django_tasks_fs.iap.IAPAuthenticationMiddleware"
ADMIN_CONFIG = "django_tasks_fs.admin_site.FirestoreAdminConfig"


def _admin_site_is_ours() -> bool:
    if not apps.is_installed("django.contrib.admin"):
        return True  # no admin, nothing to check
    from django.contrib import admin

    from ..admin_site import FirestoreAdminSite

    return isinstance(admin.site, FirestoreAdminSite)  # the lazy site proxies __class__


@checks.register("django_tasks_fs")
def check_iap(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    config = iap_config()
    middleware_on = MIDDLEWARE in settings.MIDDLEWARE
    messages: list[checks.CheckMessage] = []
    if not config.configured:
        if middleware_on:
            messages.append(
                checks.Error(
                    f"{MIDDLEWARE} is in MIDDLEWARE but settings.{SETTING} is not set.",
                    hint=f"Set {SETTING} = {{'AUDIENCE': ..., 'GRANTS': {{...}}}}.",
                    id="django_tasks_fs.E020",
                )
            )
        return messages
    for problem in config.problems:
        messages.append(
            checks.Error(
                f"settings.{SETTING}: {problem}",
                hint="See the admin page of the docs (Identity-Aware Proxy).",
                id="django_tasks_fs.E021",
            )
        )
    if not middleware_on:
        messages.append(
            checks.Error(
                f"settings.{SETTING} is set but {MIDDLEWARE} is not in MIDDLEWARE: "
                "nobody is signed in by IAP.",
                hint="Put it in MIDDLEWARE in place of "
                "'django.contrib.auth.middleware.AuthenticationMiddleware'.",
                id="django_tasks_fs.E022",
            )
        )
    if not _admin_site_is_ours():
        messages.append(
            checks.Error(
                f"settings.{SETTING} is set but admin.site is not a FirestoreAdminSite: "
                "Django's login form, password change and admin log need SQL tables.",
                hint=f"In INSTALLED_APPS, replace 'django.contrib.admin' with '{ADMIN_CONFIG}'.",
                id="django_tasks_fs.E023",
            )
        )
    if importlib.util.find_spec("cryptography") is None:
        messages.append(
            checks.Error(
                "IAP assertions are ES256-signed and google-auth verifies ES256 only "
                "with the 'cryptography' package, which is not installed.",
                hint="pip install 'django-tasks-fs[iap]'",
                id="django_tasks_fs.E024",
            )
        )
    grants = config.grants
    if not (grants.users or grants.domains or grants.groups or grants.everyone):
        messages.append(
            checks.Warning(
                f"settings.{SETTING} grants nothing: every IAP user gets 403.",
                hint="Add GRANTS, e.g. {'you@example.com': ['all']}.",
                id="django_tasks_fs.W020",
            )
        )
    return messages


@checks.register("django_tasks_fs", deploy=True)
def check_iap_deploy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    config = iap_config()
    if not config.configured or config.uses_google_keys:
        return []
    return [
        checks.Error(
            f"settings.{SETTING}['CERTS_URL'] is {config.certs_url!r}: assertions signed by "
            "the local IAP stand-in are accepted, so anyone who can reach the app can "
            "sign in as anyone.",
            hint=f"Remove CERTS_URL in production (the default is {GOOGLE_IAP_CERTS_URL}).",
            id="django_tasks_fs.E025",
        )
    ]
