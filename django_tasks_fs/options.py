"""Backend OPTIONS: each option declared once, as one field of BackendOptions.

A field's ``option(...)`` declares its default, its validation, which backends accept
it and its one-line doc; the lists of names per backend, the checks and the
configuration reference test (tests/unit/test_docs_reference.py) are derived from
these fields. CloudOptions is the validated view of the options the Google Cloud
backends require, typed ``str``.

Problems are collected rather than raised, so ``manage.py check`` can report every one
of them with an id and a hint; using a misconfigured backend raises
ImproperlyConfigured listing them.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from .gcp.limits import MAX_TASK_COUNT
from .option_spec import (
    BOOL,
    COMMAND,
    DAYS_OR_NONE,
    DECLARATIONS,
    EMAIL,
    NUMBER,
    PREFIX,
    PROJECT,
    QUEUE_ALIASES,
    SECONDS,
    SECONDS_OR_ZERO,
    WHOLE,
    Check,
    Kind,
    OptionSpec,
    one_of,
    option,
    optional,
    spec_of,
    text,
    url,
)
from .store.client import (
    DEFAULT_COLLECTION_PREFIX,
    DEFAULT_DATABASE,
    DEFAULT_MAX_HISTORY_ENTRIES,
    DEFAULT_STORE,
    DEFAULT_TIMEOUT,
    STORES,
    StoreSettings,
)

MODES = ("cloud_tasks", "cloud_run_jobs")
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
DEFAULT_RETENTION_DAYS = 14.0
#: Errors and worker ids kept per execution: what every backend has always passed to the
#: store (the store's own default of 10 applies only to a StoreSettings built by hand).
ALL, LOCAL, CLOUD = Kind.ALL, Kind.LOCAL, Kind.CLOUD
BASE_URL = url(
    "the public URL where django_tasks_fs.urls is mounted, e.g. 'https://app.example.com/tasks/'"
)
CERTS_URL = url("the URL of the token signing certificates (Google's by default)")
ABSOLUTE_URL = text("an absolute URL")
DEFAULT_FAN_OUT_MAX_TASKS = 1_000
FAN_OUT_TASKS = Check(
    lambda v: WHOLE.valid(v) and v <= MAX_TASK_COUNT,
    f"a whole number from 1 to {MAX_TASK_COUNT:,} (Cloud Run's most tasks per job execution)",
)
CACHE_TTL = Check(NUMBER.valid, "a number of seconds (<= 0 disables the cache)")

__all__ = ["BackendOptions", "CloudOptions", "Kind", "Problem", "names_for", "parse_options"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One invalid option: which key, what is wrong, how to fix it."""

    id: str  #: system check id, e.g. "django_tasks_fs.E002"
    key: str
    message: str
    hint: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendOptions:
    """Every OPTIONS key any backend understands.

    Each is ``option(default, backends, check, doc)``; ``shown`` is how the reference
    shows a default computed at run time.
    """

    # -- Firestore, and where documents live ----------------------------------------------
    project_id: str | None = option(
        None,
        ALL,
        PROJECT,
        "Google project (Firestore, Cloud Tasks, ...)",
        shown="the environment's",
    )
    firestore_project: str | None = option(
        None, ALL, PROJECT, "Firestore's project, if not project_id", shown="`project_id`"
    )
    database: str = option(
        DEFAULT_DATABASE, ALL, text("a Firestore database id such as '(default)'"), "database id"
    )
    collection_prefix: str = option(
        DEFAULT_COLLECTION_PREFIX, ALL, PREFIX, "prefix of the collections (apps can share one)"
    )
    firestore_timeout_seconds: float = option(
        DEFAULT_TIMEOUT, ALL, SECONDS, "one Firestore call, retries included (StoreUnavailable)"
    )
    store: str = option(
        DEFAULT_STORE,
        ALL,
        one_of(*STORES),
        "'memory': this process's memory instead of Firestore (tests; no other process sees it)",
    )
    max_history_entries: int = option(
        DEFAULT_MAX_HISTORY_ENTRIES, ALL, WHOLE, "errors and worker ids kept per execution"
    )
    success_retention_days: float | None = option(
        DEFAULT_RETENTION_DAYS, ALL, DAYS_OR_NONE, "expires_at of successful executions (TTL)"
    )
    failure_retention_days: float | None = option(
        DEFAULT_RETENTION_DAYS, ALL, DAYS_OR_NONE, "expires_at of failed executions (TTL)"
    )

    # -- Attempts and leases -------------------------------------------------------------
    max_attempts: int | None = option(
        1,
        ALL,
        optional(WHOLE, "a whole number >= 1, or None for unlimited"),
        "total attempts (Google Cloud: the queue's / job's when not given)",
    )
    run_once: bool = option(False, ALL, BOOL, "never start a second attempt")
    heartbeat_enabled: bool = option(True, ALL, BOOL, "renew leases while a task runs")
    heartbeat_interval_seconds: float = option(10.0, ALL, SECONDS, "time between renewals")
    heartbeat_timeout_seconds: float = option(30.0, ALL, SECONDS, "lease length")
    heartbeat_join_timeout_seconds: float = option(
        5.0, ALL, SECONDS_OR_ZERO, "wait for a renewal in flight when an attempt ends"
    )
    retry_backoff_seconds: float = option(
        1.0,
        ALL,
        SECONDS_OR_ZERO,
        "first backoff, doubled per attempt (Google Cloud: the platform's when not given)",
    )
    retry_backoff_max_seconds: float = option(300.0, ALL, SECONDS_OR_ZERO, "longest backoff")

    # -- Local worker (ProcessBackend) ---------------------------------------------------
    mode: str = option("cloud_tasks", LOCAL, one_of(*MODES), "which platform to behave like")
    max_workers: int = option(4, LOCAL, WHOLE, "worker processes of run_tasks")
    poll_interval_seconds: float = option(
        1.0, LOCAL, SECONDS, "time between polls without listeners"
    )
    batch_size: int | None = option(
        None, LOCAL, optional(WHOLE), "executions fetched at a time", shown="`max_workers`"
    )
    shutdown_grace_seconds: float = option(
        30.0, LOCAL, SECONDS_OR_ZERO, "time running tasks get after the first SIGTERM"
    )

    # -- Google Cloud (CloudTasksBackend, CloudRunJobsBackend) ---------------------------
    location: str | None = option(
        None, CLOUD, optional(text("a Google Cloud region such as 'europe-west1'")), "region"
    )
    base_url: str | None = option(None, CLOUD, optional(BASE_URL), "where urls are mounted")
    oidc_service_account: str | None = option(
        None, CLOUD, optional(EMAIL), "the service account the platform's tokens are for"
    )
    oidc_audience: str | None = option(
        None,
        CLOUD,
        optional(text("the token audience, e.g. 'https://app.example.com'")),
        "expected aud of the tokens",
        shown="origin of `base_url`",
    )
    execute_url: str | None = option(
        None, CLOUD, optional(ABSOLUTE_URL), "Cloud Tasks target", shown='`base_url + "execute/"`'
    )
    schedule_url: str | None = option(
        None,
        CLOUD,
        optional(ABSOLUTE_URL),
        "Cloud Scheduler target",
        shown='`base_url + "schedule/"`',
    )
    queue_aliases: dict[str, str] = option(
        {}, CLOUD, QUEUE_ALIASES, "queue name -> Cloud Tasks queue / Cloud Run job", convert=dict
    )
    command: list[str] = option(
        ["python", "manage.py", "execute_task"],
        CLOUD,
        COMMAND,
        "Cloud Run Jobs: container args; the execution id is appended",
        convert=list,
    )
    fan_out_max_tasks: int = option(
        DEFAULT_FAN_OUT_MAX_TASKS,
        ALL,
        FAN_OUT_TASKS,
        "Cloud Run Jobs: most calls of one enqueue_many() per job execution (1: one each)",
    )
    cache_alias: str = option(
        "default", CLOUD, text("an alias from CACHES"), "cache of the platform's retry limits"
    )
    cache_prefix: str = option("django-tasks-fs", CLOUD, text("a string"), "cache key prefix")
    cache_ttl_max_attempts: float = option(600.0, CLOUD, CACHE_TTL, "seconds; <= 0: no cache")
    emulator_host: str | None = option(
        None,
        CLOUD,
        optional(text("host:port of the local Google Cloud emulator")),
        "gRPC host:port of the local Google Cloud emulator",
        shown="`$DJANGO_TASKS_FS_EMULATOR_HOST`",
    )
    oidc_certs_url: str = option(
        GOOGLE_CERTS_URL, CLOUD, CERTS_URL, "where the token signing certificates are"
    )
    queue_settings: dict[str, Any] = option(
        {},
        CLOUD,
        DECLARATIONS,
        "Cloud Tasks: declared queue settings, by queue ('*': all); see tasks_resources",
        convert=dict,
    )
    job_settings: dict[str, Any] = option(
        {},
        CLOUD,
        DECLARATIONS,
        "Cloud Run Jobs: declared job settings, by job ('*': all); see tasks_resources",
        convert=dict,
    )
    max_request_bytes: int = option(
        16 * 1024, CLOUD, Check(WHOLE.valid, "a number of bytes >= 1"), "larger bodies get 413"
    )

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


#: name -> declaration, in declaration order.
SPECS: dict[str, OptionSpec] = {f.name: spec_of(f) for f in fields(BackendOptions)}


def names_for(kind: Kind) -> frozenset[str]:
    """The OPTIONS keys backends of ``kind`` accept."""
    return frozenset(name for name, spec in SPECS.items() if kind & spec.kinds)


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudOptions:
    """The options every Google Cloud backend requires, present and valid."""

    project_id: str
    location: str
    base_url: str
    oidc_service_account: str

    @classmethod
    def require(
        cls, alias: str, options: BackendOptions, *, backend: str
    ) -> tuple[CloudOptions | None, list[Problem]]:
        """Return the validated options, or None and one problem per missing one."""
        values = {f.name: getattr(options, f.name) for f in fields(cls)}
        problems = [
            Problem(
                id="django_tasks_fs.E006",
                key=key,
                message=f"TASKS[{alias!r}]['OPTIONS'][{key!r}] is required by {backend}.",
                hint=f"Set {key!r}; see the configuration reference.",
            )
            for key, value in values.items()
            if not value  # an invalid value was reported (E002) and replaced by None
        ]
        return (None, problems) if problems else (cls(**values), [])


def parse_options(
    alias: str, raw: Mapping[str, Any], *, kind: Kind = Kind.ALL
) -> tuple[BackendOptions, list[Problem]]:
    """Return the options of backend ``alias`` and every problem found in ``raw``.

    ``kind``: the backends whose options are accepted. Invalid values are replaced by
    their defaults so the backend can still be built and reported on by the checks.
    """
    allowed = names_for(kind)
    if not isinstance(raw, Mapping):
        problem = Problem(
            id="django_tasks_fs.E001",
            key="OPTIONS",
            message=f"TASKS[{alias!r}]['OPTIONS'] must be a dict, not {type(raw).__name__}.",
            hint="Use OPTIONS={...} with the keys listed in the configuration reference.",
        )
        return BackendOptions(), [problem]
    problems: list[Problem] = []
    values: dict[str, Any] = {}
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
        spec = SPECS[key]
        if not spec.check(value):
            problems.append(
                Problem(
                    id="django_tasks_fs.E002",
                    key=key,
                    message=f"TASKS[{alias!r}]['OPTIONS'][{key!r}] is {value!r}; expected {spec.check.expected}.",
                    hint=f"Set {key!r} to {spec.check.expected}, or remove it to use the default.",
                )
            )
            continue
        values[key] = spec.convert(value) if spec.convert else value
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
