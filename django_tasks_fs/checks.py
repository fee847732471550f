"""System checks beyond each backend's own (``FirestoreBackend.check``).

* Always (cheap, no network): Google credentials that surely cannot work.
* Only under ``manage.py check --deploy`` (they call Google Cloud): every Cloud Tasks
  queue and Cloud Run job the configured backends need exists. The other deployment
  checks (local-only settings) are in ``deploy_checks``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core import checks

from .gcp.errors import GoogleCloudError
from .gcp.resources import CloudResource, exists
from .registry import firestore_backends
from .store.client import credentials_problem

#: Seconds the deployment check waits for one resource look-up.
RESOURCE_TIMEOUT = 5.0


def _obj(alias: str) -> str:
    return f"TASKS[{alias!r}]"


@checks.register("django_tasks_fs")
def check_credentials(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E007: GOOGLE_APPLICATION_CREDENTIALS names no file (and no emulator is used)."""
    problem = credentials_problem()
    backends = [b for b in firestore_backends().values() if not b.config.store_settings().in_memory]
    if problem is None or not backends:
        return []
    aliases = ", ".join(repr(b.alias) for b in backends)
    return [
        checks.Error(
            f"{problem}: backends {aliases} cannot reach Firestore.",
            hint=(
                "Point GOOGLE_APPLICATION_CREDENTIALS at a service account key file, or "
                "unset it and run 'gcloud auth application-default login'. For the local "
                "emulator, set FIRESTORE_EMULATOR_HOST=HOST:PORT instead."
            ),
            id="django_tasks_fs.E007",
        )
    ]


def required_resources(backends: Iterable[Any] | None = None) -> list[tuple[str, CloudResource]]:
    """(alias, resource) for every queue and job the Google Cloud backends of TASKS need."""
    from .backends.google_cloud import GoogleCloudBackend  # not at start-up: see backends/

    found = firestore_backends().values() if backends is None else backends
    return [
        (b.alias, resource)
        for b in found
        if isinstance(b, GoogleCloudBackend) and not b.problems
        for resource in b.required_resources()
    ]


def missing_resources(
    backends: Iterable[Any] | None = None, *, timeout: float = RESOURCE_TIMEOUT
) -> list[checks.CheckMessage]:
    """E008 for each required queue or job that does not exist; W001 for each that
    could not be looked up within ``timeout`` seconds (no permission, unreachable)."""
    messages: list[checks.CheckMessage] = []
    for alias, resource in required_resources(backends):
        try:
            if exists(resource, timeout=timeout):
                continue
        except GoogleCloudError as exc:
            messages.append(
                checks.Warning(
                    f"Could not check that the {resource.kind} {resource.path} exists: {exc}",
                    hint="Check the credentials, network and the role to read it "
                    "(e.g. roles/cloudtasks.viewer, roles/run.viewer).",
                    id="django_tasks_fs.W001",
                    obj=_obj(alias),
                )
            )
            continue
        messages.append(
            checks.Error(
                f"The {resource.kind} {resource.name!r} needed by backend {alias!r} does not "
                f"exist ({resource.path}).",
                hint=resource.fix,
                id="django_tasks_fs.E008",
                obj=_obj(alias),
            )
        )
    return messages


@checks.register("django_tasks_fs", deploy=True)
def check_google_cloud_resources(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """E008 / W001 (``check --deploy`` only): see missing_resources."""
    return missing_resources()
