"""What ``manage.py tasks_emulators`` reads from ``TASKS``: the Cloud Tasks queues and
Cloud Run jobs its backends send to (created in the Google Cloud emulator, which starts
empty), and whether their OPTIONS will reach the emulators.

Google Cloud has these created once by the deployment (docs/howto/deploy-google-cloud.md);
locally this does it at every start.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from ..backends.cloud_run_jobs import CloudRunJobsBackend
from ..backends.google_cloud import GoogleCloudBackend
from ..gcp.clients import EMULATOR_ENV, jobs_client, tasks_client
from ..gcp.drift import Settings, nested
from ..gcp.resources import CloudResource, Kind
from .local import FIRESTORE_ENV, LocalEmulators

#: Local retry pacing of the created queues (Google's default backoff reaches an hour).
MIN_BACKOFF = timedelta(seconds=1)
MAX_BACKOFF = timedelta(seconds=10)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
URLS_INCLUDE = 'path("tasks/", include("django_tasks_fs.urls"))'


@dataclass(frozen=True, slots=True, kw_only=True)
class Resource:
    """A queue or job a backend needs (``GoogleCloudBackend.required_resources()``, the
    list the deploy check reads too), and the TASKS aliases that use it."""

    cloud: CloudResource
    aliases: tuple[str, ...]
    #: Its declared settings (queue_settings / job_settings): created with them.
    settings: Settings = field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.cloud.path


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Resources to create, and advice on OPTIONS that would miss the emulators."""

    resources: tuple[Resource, ...] = ()
    advice: tuple[str, ...] = ()
    commands: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  #: job path -> argv


def plan(backends: Mapping[str, Any], *, certs_url: str, grpc_host: str) -> Plan:
    """Read every Google Cloud backend of ``backends`` (alias -> backend)."""
    found: dict[str, Resource] = {}  # by path: two backends may share a queue
    commands: dict[str, tuple[str, ...]] = {}
    advice: list[str] = []
    for alias, backend in backends.items():
        if not isinstance(backend, GoogleCloudBackend):
            continue
        if backend.problems:
            advice.append(
                f"TASKS[{alias!r}] is misconfigured (see 'manage.py check'): "
                "nothing was created for it."
            )
            continue
        for cloud, settings in backend.declared_resources():
            resource = Resource(cloud=cloud, aliases=(alias,), settings=settings)
            if resource.path in found:
                known = found[resource.path]
                resource = replace(
                    known,
                    aliases=tuple(dict.fromkeys((*known.aliases, alias))),
                    settings={**known.settings, **settings},
                )
            found[resource.path] = resource
            if isinstance(backend, CloudRunJobsBackend):
                commands[resource.path] = (*backend.config.command, "<execution id>")
        advice.extend(_advice(alias, backend, certs_url=certs_url, grpc_host=grpc_host))
    return Plan(resources=tuple(found.values()), advice=tuple(advice), commands=commands)


def _advice(
    alias: str, backend: GoogleCloudBackend, *, certs_url: str, grpc_host: str
) -> Iterable[str]:
    """Why deliveries from the emulators would not reach or not be accepted by the app."""
    where = f"TASKS[{alias!r}]['OPTIONS']"
    config = backend.config
    if config.oidc_certs_url != certs_url:
        yield (
            f"{where}['oidc_certs_url'] is {config.oidc_certs_url!r}: the app would refuse "
            f"the emulator's tokens (403). Set it to {certs_url!r} locally."
        )
    if config.emulator_host and config.emulator_host != grpc_host:
        yield (
            f"{where}['emulator_host'] is {config.emulator_host!r}, not this emulator "
            f"({grpc_host!r}): the backend would send elsewhere. Remove it and export "
            f"DJANGO_TASKS_FS_EMULATOR_HOST={grpc_host}, or set it to {grpc_host!r}."
        )
    base = urlsplit(backend.base_url)
    if base.hostname not in LOOPBACK_HOSTS:
        yield (
            f"{where}['base_url'] is {config.base_url!r}: the emulator delivers tasks and "
            "scheduled jobs to that host. Locally, use the address runserver listens on, e.g. "
            "'http://127.0.0.1:8000/tasks/'."
        )
    problem = _unrouted(urlsplit(backend.execute_url).path)
    if problem:
        yield (
            f"{where}['base_url'] is {config.base_url!r}, but {problem} Mount the "
            f"endpoints with {URLS_INCLUDE} in your ROOT_URLCONF (base_url ends with "
            "that path)."
        )


def _unrouted(path: str) -> str | None:
    """Why ``path`` does not reach the execute/ view, or None when it does."""
    from django.urls import Resolver404, resolve

    try:
        match = resolve(path)
    except Resolver404:
        return f"no URL pattern matches its execute/ path {path!r}."
    except Exception as exc:  # a broken urls.py: say so rather than crash the emulators
        return f"resolving {path!r} failed: {type(exc).__name__}: {exc}."
    if match.view_name != "django_tasks_fs:execute_task":
        return f"its execute/ path {path!r} reaches {match.view_name!r}."
    return None


def create(
    plan: Plan,
    grpc_host: str,
    *,
    max_attempts: int,
    job_env: Mapping[str, str],
    job_cwd: str = ".",
) -> list[str]:
    """Create ``plan``'s queues and jobs in the emulator; return one line per resource."""
    lines = []
    for resource in plan.resources:
        cloud = resource.cloud
        parent = f"projects/{cloud.project}/locations/{cloud.location}"
        used_by = ", ".join(f"TASKS[{a!r}]" for a in resource.aliases)
        declared = " with the settings TASKS declares" if resource.settings else ""
        if cloud.kind == Kind.QUEUE:
            queue = nested({**queue_defaults(resource.settings, max_attempts), **resource.settings})
            tasks_client(grpc_host).create_queue(
                parent=parent, queue={"name": resource.path, **queue}
            )
            lines.append(f"Cloud Tasks queue {resource.path}  ({used_by}){declared}")
        else:
            env = [{"name": k, "value": v} for k, v in job_env.items()]
            defaults = {
                "template.task_count": 1,
                "template.template.max_retries": max_attempts - 1,
            }
            job = nested({**defaults, **resource.settings})
            job["template"]["template"]["containers"] = [{"image": "local", "env": env}]
            jobs_client(grpc_host).create_job(parent=parent, job_id=cloud.name, job=job).result(
                timeout=30
            )
            argv = " ".join(plan.commands.get(resource.path, ()))
            lines.append(
                f"Cloud Run job {resource.path}  ({used_by}): runs {argv} in {job_cwd}{declared}"
            )
    return lines


def queue_defaults(declared: Settings, max_attempts: int) -> dict[str, object]:
    """A local queue's retry settings where TASKS declares none: ``max_attempts``, and
    quick backoffs (unless a backoff is declared: the two must stay in order)."""
    defaults: dict[str, object] = {"retry_config.max_attempts": max_attempts}
    if not {"retry_config.min_backoff", "retry_config.max_backoff"} & set(declared):
        defaults["retry_config.min_backoff"] = MIN_BACKOFF
        defaults["retry_config.max_backoff"] = MAX_BACKOFF
    return defaults


def job_environment(firestore_host: str, grpc_host: str) -> dict[str, str]:
    """The container env of created jobs: the emulators, and the project's settings."""
    env = {FIRESTORE_ENV: firestore_host, EMULATOR_ENV: grpc_host}
    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE")
    if settings_module:
        env["DJANGO_SETTINGS_MODULE"] = settings_module
    return env


def provision(
    emulators: LocalEmulators, backends: Mapping[str, Any], *, max_attempts: int
) -> list[str]:
    """Create what ``backends`` send to in the running emulators; return lines to show."""
    env = emulators.environment
    grpc_host = env[EMULATOR_ENV]
    found = plan(backends, certs_url=emulators.certs_url, grpc_host=grpc_host)
    created = create(
        found,
        grpc_host,
        max_attempts=max_attempts,
        job_env=job_environment(env[FIRESTORE_ENV], grpc_host),
        job_cwd=str(emulators.job_cwd),
    )
    if created:
        lines = ["", "Created from TASKS:", *(f"  {line}" for line in created)]
    else:
        lines = ["TASKS names no Cloud Tasks queue or Cloud Run job to create."]
    return lines + [f"Warning: {advice}" for advice in found.advice]
