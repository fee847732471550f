"""Backend OPTIONS, parsed once into a frozen dataclass.

Problems are collected rather than raised, so ``manage.py check`` can report every one
of them with an id and a hint; using a misconfigured backend raises
ImproperlyConfigured listing them.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from .store.client import (
    DEFAULT_COLLECTION_PREFIX,
    DEFAULT_DATABASE,
    DEFAULT_STORE,
    DEFAULT_TIMEOUT,
    STORES,
    StoreSettings,
)

MODES = ("cloud_tasks", "cloud_run_jobs")
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
DEFAULT_RETENTION_DAYS = 14.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One invalid option: which key, what is wrong, how to fix it."""

    id: str  #: system check id, e.g. "django_tasks_fs.E002"
    key: str
    message: str
    hint: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendOptions:
    """Every OPTIONS key any backend understands, with its default."""

    # Firestore
    project_id: str | None = None  #: Google project (Firestore, Cloud Tasks, ...)
    firestore_project: str | None = None  #: Firestore's project if not project_id
    database: str = DEFAULT_DATABASE
    collection_prefix: str = DEFAULT_COLLECTION_PREFIX
    #: Seconds one Firestore call may take, retries included (then StoreUnavailable)
    firestore_timeout_seconds: float = DEFAULT_TIMEOUT
    #: "memory": this process's memory instead of Firestore (tests; see store.ops.memory)
    store: str = DEFAULT_STORE
    # Attempts and leases
    max_attempts: int | None = 1  #: ProcessBackend; None = unlimited
    run_once: bool = False
    heartbeat_enabled: bool = True
    heartbeat_interval_seconds: float = 10.0
    heartbeat_timeout_seconds: float = 30.0  #: lease length, renewed by each heartbeat
    heartbeat_join_timeout_seconds: float = 5.0
    max_history_entries: int = 100
    retry_backoff_seconds: float = 1.0  #: local retries: base of the exponential backoff
    retry_backoff_max_seconds: float = 300.0
    success_retention_days: float | None = DEFAULT_RETENTION_DAYS
    failure_retention_days: float | None = DEFAULT_RETENTION_DAYS
    # Local worker (ProcessBackend)
    mode: str = "cloud_tasks"
    max_workers: int = 4
    poll_interval_seconds: float = 1.0
    batch_size: int | None = None  #: None = max_workers
    shutdown_grace_seconds: float = 30.0
    # Google Cloud (CloudTasksBackend / CloudRunJobsBackend)
    location: str | None = None
    base_url: str | None = None
    oidc_service_account: str | None = None
    oidc_audience: str | None = None
    execute_url: str | None = None
    schedule_url: str | None = None
    queue_aliases: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=lambda: ["python", "manage.py", "execute_task"])
    cache_alias: str = "default"
    cache_prefix: str = "django-tasks-fs"
    cache_ttl_max_attempts: float = 600.0
    emulator_host: str | None = None  #: gRPC host:port of the local Google Cloud emulator
    oidc_certs_url: str = GOOGLE_CERTS_URL  #: where the token signing certificates are
    max_request_bytes: int = 16 * 1024  #: larger execute/ and schedule/ bodies get 413

    @property
    def lease_duration(self) -> timedelta:
        return timedelta(seconds=self.heartbeat_timeout_seconds)

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size or self.max_workers

    def store_settings(self) -> StoreSettings:
        def days(value: float | None) -> timedelta | None:
            return None if value is None else timedelta(days=value)

        return StoreSettings(
            project=self.firestore_project or self.project_id,
            database=self.database,
            collection_prefix=self.collection_prefix,
            max_history_entries=self.max_history_entries,
            retention_successful=days(self.success_retention_days),
            retention_failed=days(self.failure_retention_days),
            timeout=self.firestore_timeout_seconds,
            store=self.store,
        )


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _non_negative(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


#: key -> (validator, description of a valid value)
_VALIDATORS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "project_id": (_optional(_text), "a Google Cloud project id"),
    "firestore_project": (_optional(_text), "a Google Cloud project id"),
    "database": (_text, "a Firestore database id such as '(default)'"),
    "collection_prefix": (
        lambda v: isinstance(v, str) and "/" not in v,
        "a string without '/', e.g. 'myapp_'",
    ),
    "firestore_timeout_seconds": (_positive, "a number of seconds > 0"),
    "store": (
        lambda v: v in STORES,
        "'firestore', or 'memory' for this process's memory (tests only)",
    ),
    "max_attempts": (_optional(_positive_int), "a whole number >= 1, or None for unlimited"),
    "run_once": (lambda v: isinstance(v, bool), "True or False"),
    "heartbeat_enabled": (lambda v: isinstance(v, bool), "True or False"),
    "heartbeat_interval_seconds": (_positive, "a number of seconds > 0"),
    "heartbeat_timeout_seconds": (_positive, "a number of seconds > 0"),
    "heartbeat_join_timeout_seconds": (_non_negative, "a number of seconds >= 0"),
    "max_history_entries": (_positive_int, "a whole number >= 1"),
    "retry_backoff_seconds": (_non_negative, "a number of seconds >= 0"),
    "retry_backoff_max_seconds": (_non_negative, "a number of seconds >= 0"),
    "success_retention_days": (_optional(_positive), "a number of days > 0, or None to keep"),
    "failure_retention_days": (_optional(_positive), "a number of days > 0, or None to keep"),
    "mode": (lambda v: v in MODES, "'cloud_tasks' or 'cloud_run_jobs'"),
    "max_workers": (_positive_int, "a whole number >= 1"),
    "poll_interval_seconds": (_positive, "a number of seconds > 0"),
    "batch_size": (_optional(_positive_int), "a whole number >= 1"),
    "shutdown_grace_seconds": (_non_negative, "a number of seconds >= 0"),
    "location": (_optional(_text), "a Google Cloud region such as 'europe-west1'"),
    "base_url": (
        _optional(lambda v: isinstance(v, str) and v.startswith(("https://", "http://"))),
        "the public URL where django_tasks_fs.urls is mounted, e.g. 'https://app.example.com/tasks/'",
    ),
    "oidc_service_account": (
        _optional(lambda v: isinstance(v, str) and "@" in v),
        "a service account email",
    ),
    "oidc_audience": (_optional(_text), "the token audience, e.g. 'https://app.example.com'"),
    "execute_url": (_optional(_text), "an absolute URL"),
    "schedule_url": (_optional(_text), "an absolute URL"),
    "queue_aliases": (
        lambda v: (
            isinstance(v, Mapping) and all(isinstance(k, str) and _text(x) for k, x in v.items())
        ),
        "a dict of queue name -> Cloud Tasks queue / Cloud Run job name",
    ),
    "command": (
        lambda v: (
            isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, str) for x in v)
        ),
        "a non-empty list of strings, e.g. ['python', 'manage.py', 'execute_task']",
    ),
    "cache_alias": (_text, "an alias from CACHES"),
    "cache_prefix": (_text, "a string"),
    "cache_ttl_max_attempts": (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "a number of seconds (<= 0 disables the cache)",
    ),
    "emulator_host": (_optional(_text), "host:port of the local Google Cloud emulator"),
    "oidc_certs_url": (
        lambda v: isinstance(v, str) and v.startswith(("https://", "http://")),
        "the URL of the token signing certificates (Google's by default)",
    ),
    "max_request_bytes": (_positive_int, "a number of bytes >= 1"),
}

OPTION_NAMES = frozenset(f.name for f in fields(BackendOptions))
#: Options only the Google Cloud backends understand.
CLOUD_OPTIONS = frozenset(
    {
        "location",
        "base_url",
        "oidc_service_account",
        "oidc_audience",
        "execute_url",
        "schedule_url",
        "queue_aliases",
        "command",
        "cache_alias",
        "cache_prefix",
        "cache_ttl_max_attempts",
        "emulator_host",
        "oidc_certs_url",
        "max_request_bytes",
    }
)
#: Options only ProcessBackend understands (the platform decides these on Google Cloud).
LOCAL_OPTIONS = frozenset(
    {
        "mode",
        "max_workers",
        "poll_interval_seconds",
        "batch_size",
        "shutdown_grace_seconds",
        "max_attempts",
        "retry_backoff_seconds",
        "retry_backoff_max_seconds",
    }
)
assert set(_VALIDATORS) == OPTION_NAMES, "every option needs a validator"


def parse_options(
    alias: str, raw: Mapping[str, Any], *, allowed: frozenset[str] | None = None
) -> tuple[BackendOptions, list[Problem]]:
    """Return the options of backend ``alias`` and every problem found in ``raw``.

    Invalid values are replaced by their defaults so the backend can still be built
    and reported on by the system checks.
    """
    allowed = OPTION_NAMES if allowed is None else allowed
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    if not isinstance(raw, Mapping):
        problem = Problem(
            id="django_tasks_fs.E001",
            key="OPTIONS",
            message=f"TASKS[{alias!r}]['OPTIONS'] must be a dict, not {type(raw).__name__}.",
            hint="Use OPTIONS={...} with the keys listed in the configuration reference.",
        )
        return BackendOptions(), [problem]
    for key, value in raw.items():
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            problems.append(
                Problem(
                    id="django_tasks_fs.E001",
                    key=str(key),
                    message=f"TASKS[{alias!r}]['OPTIONS'] has an unknown option {key!r}.",
                    hint=f"Did you mean {close[0]!r}?"
                    if close
                    else f"Valid options for this backend: {', '.join(sorted(allowed))}.",
                )
            )
            continue
        check, expected = _VALIDATORS[key]
        if not check(value):
            problems.append(
                Problem(
                    id="django_tasks_fs.E002",
                    key=key,
                    message=f"TASKS[{alias!r}]['OPTIONS'][{key!r}] is {value!r}; expected {expected}.",
                    hint=f"Set {key!r} to {expected}, or remove it to use the default.",
                )
            )
            continue
        if key == "queue_aliases":
            value = dict(value)
        elif key == "command":
            value = list(value)
        values[key] = value
    options = BackendOptions(**values)
    if options.heartbeat_interval_seconds >= options.heartbeat_timeout_seconds:
        problems.append(
            Problem(
                id="django_tasks_fs.E003",
                key="heartbeat_interval_seconds",
                message=(
                    f"TASKS[{alias!r}]: heartbeat_interval_seconds "
                    f"({options.heartbeat_interval_seconds}) must be less than "
                    f"heartbeat_timeout_seconds ({options.heartbeat_timeout_seconds})."
                ),
                hint="A lease must outlive several heartbeats; e.g. interval 10 and timeout 30.",
            )
        )
    return options, problems
