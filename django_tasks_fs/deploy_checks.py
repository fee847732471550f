"""Checks run only by ``manage.py check --deploy``: settings that serve the local loop
and must not reach production. They read settings and the environment, no network.

* E009 / E010 / E011: an emulator is configured (Firestore, the Google Cloud one by
  variable or by the ``emulator_host`` option);
* E012: tokens are verified against certificates that are not Google's;
* E013: a URL Google Cloud must call is not public HTTPS;
* E014 / W002: ``django_tasks_fs.urls`` is not mounted, or not where ``base_url`` says.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.core import checks
from django.urls import NoReverseMatch, reverse

from .gcp.clients import EMULATOR_ENV as GCLOUD_EMULATOR_ENV
from .options import GOOGLE_CERTS_URL
from .registry import firestore_backends
from .store.client import EMULATOR_ENV as FIRESTORE_EMULATOR_ENV

if TYPE_CHECKING:
    from .backends.google_cloud import GoogleCloudBackend

#: The endpoints Google Cloud calls, by the option that locates each.
ENDPOINTS = {
    "execute_url": "django_tasks_fs:execute_task",
    "schedule_url": "django_tasks_fs:schedule_task",
}
URL_HINT = (
    "Set it to the public https:// URL where django_tasks_fs.urls is mounted, "
    "e.g. 'https://app.example.com/tasks/'."
)


def _obj(alias: str) -> str:
    return f"TASKS[{alias!r}]"


def _cloud_backends() -> list[GoogleCloudBackend]:
    from .backends.google_cloud import GoogleCloudBackend  # not at start-up: see backends/

    return list(firestore_backends(GoogleCloudBackend).values())


def _aliases(backends: Iterable[Any]) -> str:
    return ", ".join(repr(b.alias) for b in backends)


@checks.register("django_tasks_fs", deploy=True)
def check_emulators(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E009 / E010 / E011: an emulator would take the place of Google Cloud."""
    messages: list[checks.CheckMessage] = []
    firestore = list(firestore_backends().values())
    cloud = _cloud_backends()
    for env, backends, service, check_id in (
        (FIRESTORE_EMULATOR_ENV, firestore, "Firestore", "django_tasks_fs.E009"),
        (
            GCLOUD_EMULATOR_ENV,
            cloud,
            "Cloud Tasks, Cloud Run Jobs and Cloud Scheduler",
            "django_tasks_fs.E010",
        ),
    ):
        value = os.environ.get(env)
        if value and backends:
            messages.append(
                checks.Error(
                    f"{env} is set ({value!r}): backends {_aliases(backends)} would use a "
                    f"local emulator instead of {service}.",
                    hint=f"Unset {env} in the production environment; it is for local "
                    "development and tests only.",
                    id=check_id,
                )
            )
    messages.extend(
        checks.Error(
            f"TASKS[{b.alias!r}]['OPTIONS']['emulator_host'] is {b.config.emulator_host!r}: "
            "this backend would send its tasks, jobs and schedules to a local emulator.",
            hint="Remove 'emulator_host' from the production settings (keep it in local "
            f"settings, or set {GCLOUD_EMULATOR_ENV} on your machine only).",
            id="django_tasks_fs.E011",
            obj=_obj(b.alias),
        )
        for b in cloud
        if b.config.emulator_host
    )
    return messages


@checks.register("django_tasks_fs", deploy=True)
def check_token_certificates(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E012: Cloud Tasks and Cloud Scheduler tokens are signed by Google, nobody else."""
    return [
        checks.Error(
            f"TASKS[{b.alias!r}]['OPTIONS']['oidc_certs_url'] is {b.config.oidc_certs_url!r}: "
            "the task endpoints would accept tokens signed by whoever holds those keys.",
            hint=f"Remove 'oidc_certs_url' from the production settings; the default "
            f"({GOOGLE_CERTS_URL}) verifies the tokens Google signs.",
            id="django_tasks_fs.E012",
            obj=_obj(b.alias),
        )
        for b in _cloud_backends()
        if b.config.oidc_certs_url != GOOGLE_CERTS_URL
    ]


def unreachable_reason(url: str) -> str | None:
    """Why Google Cloud cannot call ``url`` safely (not HTTPS, a local host), or None."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "it is not HTTPS (the OIDC token would travel in clear)"
    host = (parts.hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        local = host == "localhost" or host.endswith((".localhost", ".local", ".internal"))
        if local or "." not in host:
            return f"its host {host!r} is not a public name"
        return None
    if not address.is_global:
        return f"its host {host!r} is not a public address"
    return None


@checks.register("django_tasks_fs", deploy=True)
def check_public_urls(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E013: base_url (and execute_url / schedule_url) must be public HTTPS."""
    messages: list[checks.CheckMessage] = []
    for b in _cloud_backends():
        for key in ("base_url", *ENDPOINTS):
            url = getattr(b.config, key)
            reason = unreachable_reason(url) if url else None
            if reason:
                messages.append(
                    checks.Error(
                        f"TASKS[{b.alias!r}]['OPTIONS'][{key!r}] is {url!r}: Cloud Tasks and "
                        f"Cloud Scheduler cannot call it, {reason}.",
                        hint=URL_HINT,
                        id="django_tasks_fs.E013",
                        obj=_obj(b.alias),
                    )
                )
    return messages


@checks.register("django_tasks_fs", deploy=True)
def check_endpoints_mounted(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E014: the URLconf lacks django_tasks_fs.urls; W002: it is not where the backend posts."""
    backends = _cloud_backends()
    if not backends:
        return []
    try:
        mounted = {key: reverse(name) for key, name in ENDPOINTS.items()}
    except NoReverseMatch:
        return [
            checks.Error(
                f"The URLconf does not include django_tasks_fs.urls: Cloud Tasks and Cloud "
                f"Scheduler would get 404 for backends {_aliases(backends)}.",
                hint='Add path("tasks/", include("django_tasks_fs.urls")) to ROOT_URLCONF and '
                "point base_url at it.",
                id="django_tasks_fs.E014",
            )
        ]
    messages: list[checks.CheckMessage] = []
    for b in backends:
        for key, path in mounted.items():
            url = getattr(b, key)
            if urlsplit(url).path != path:
                messages.append(
                    checks.Warning(
                        f"Backend {b.alias!r} posts to {url!r}, but django_tasks_fs.urls "
                        f"serves that endpoint at {path!r}.",
                        hint="Make base_url end with the prefix of the include() (e.g. "
                        "'https://app.example.com/tasks/'), unless a proxy rewrites the path.",
                        id="django_tasks_fs.W002",
                        obj=_obj(b.alias),
                    )
                )
    return messages
