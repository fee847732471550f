"""Where the data lives (project, database, collections) and the Firestore client for it."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.auth.exceptions import DefaultCredentialsError
from google.cloud import firestore

from ..exceptions import StoreNotConfigured

logger = logging.getLogger(__name__)

DEFAULT_DATABASE = "(default)"
DEFAULT_COLLECTION_PREFIX = "django_tasks_fs_"
DEFAULT_MAX_HISTORY_ENTRIES = 100
DEFAULT_MAX_HISTORY_BYTES = 128 * 1024
DEFAULT_RETENTION = timedelta(days=14)
#: Seconds one Firestore call may take, retries included, before StoreUnavailable
#: (option ``firestore_timeout_seconds``). The client's own defaults retry an
#: unreachable Firestore for 60 to 300 s, in silence.
DEFAULT_TIMEOUT = 10.0
#: Where documents live (option ``store``): Firestore, or this process's memory
#: (tests and demos only: no other process sees it; see store.ops.memory).
STORES = ("firestore", "memory")
DEFAULT_STORE = "firestore"
#: Project used when none is configured and FIRESTORE_EMULATOR_HOST is set.
EMULATOR_DEFAULT_PROJECT = "django-tasks-fs-local"
EMULATOR_ENV = "FIRESTORE_EMULATOR_HOST"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreSettings:
    """Everything the store needs from a backend's OPTIONS."""

    project: str | None = None  #: Google project; None = the environment's
    database: str = DEFAULT_DATABASE  #: Firestore database id
    collection_prefix: str = DEFAULT_COLLECTION_PREFIX
    max_history_entries: int = DEFAULT_MAX_HISTORY_ENTRIES  #: per history list (errors, workers)
    max_history_bytes: int = DEFAULT_MAX_HISTORY_BYTES  #: total for the error history
    retention_successful: timedelta | None = DEFAULT_RETENTION  #: None keeps forever
    retention_failed: timedelta | None = DEFAULT_RETENTION
    timeout: float = DEFAULT_TIMEOUT  #: seconds per Firestore call, retries included
    store: str = DEFAULT_STORE  #: one of STORES

    @property
    def in_memory(self) -> bool:
        return self.store == "memory"

    @property
    def executions_collection(self) -> str:
        return f"{self.collection_prefix}executions"

    @property
    def schedules_collection(self) -> str:
        return f"{self.collection_prefix}schedules"

    @property
    def slots_collection(self) -> str:
        return f"{self.collection_prefix}schedule_slots"

    @property
    def unique_keys_collection(self) -> str:
        return f"{self.collection_prefix}unique_keys"

    @property
    def groups_collection(self) -> str:
        return f"{self.collection_prefix}groups"

    def resolved_project(self) -> str | None:
        """The project id to use, from the settings, the environment or the emulator default."""
        if self.project:
            return self.project
        for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
            if os.environ.get(name):
                return os.environ[name]
        if os.environ.get(EMULATOR_ENV):
            return EMULATOR_DEFAULT_PROJECT
        return None  # google.auth.default() decides

    def target(self, project: str | None = None) -> str:
        """Which Firestore this is, for messages: host, project and database."""
        if self.in_memory:
            named = repr(project or self.resolved_project())
            return (
                f"the in-memory store of this process, project {named}, database {self.database!r}"
            )
        host = os.environ.get(EMULATOR_ENV)
        where = (
            f"the Firestore emulator at {host!r} ({EMULATOR_ENV})"
            if host
            else "Firestore at firestore.googleapis.com"
        )
        project = project or self.resolved_project()
        named = repr(project) if project else "from the environment"
        return f"{where}, project {named}, database {self.database!r}"

    def outage_hint(self, project: str | None = None) -> str:
        """What to check when that Firestore does not answer."""
        host = os.environ.get(EMULATOR_ENV)
        if host:
            return (
                f"Is the emulator running at {host}? Start it (e.g. gcloud emulators "
                f"firestore start --host-port={host}) or correct {EMULATOR_ENV}."
            )
        project = project or self.resolved_project() or "PROJECT"
        return (
            "Check this machine's network access to firestore.googleapis.com, "
            "https://status.cloud.google.com, and that the database exists: "
            f"gcloud firestore databases describe --database={self.database} "
            f"--project={project}. For the local emulator, set {EMULATOR_ENV}=HOST:PORT."
        )


_clients: dict[tuple[int, str | None, str, str | None], firestore.Client] = {}
_clients_lock = threading.Lock()


def get_client(settings: StoreSettings) -> firestore.Client:
    """Return a cached client for the settings' project and database.

    Cached per process id too: gRPC channels must not cross a fork.
    """
    project = settings.resolved_project()
    key = (os.getpid(), project, settings.database, os.environ.get("FIRESTORE_EMULATOR_HOST"))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _new_client(settings, project)
            _clients[key] = client
        return client


def _new_client(settings: StoreSettings, project: str | None) -> firestore.Client:
    """A Firestore client; StoreNotConfigured, with the fix, if Google's auth finds
    no credentials (or no project) to use."""
    try:
        return firestore.Client(project=project, database=settings.database)
    except DefaultCredentialsError as exc:
        problem = f"no Google credentials were found ({exc})"
    except OSError as exc:
        if project is not None:
            raise
        problem = f"no Google Cloud project is configured ({exc})"
    raise StoreNotConfigured(
        f"Cannot use {settings.target(project)}: {problem}. For the local emulator, "
        f"set {EMULATOR_ENV}=HOST:PORT (e.g. 127.0.0.1:8086). For real Firestore, run "
        "'gcloud auth application-default login', or set GOOGLE_APPLICATION_CREDENTIALS "
        "to a service account key file (on Google Cloud the service's own account is "
        "used), and set the backend's 'project_id' option or GOOGLE_CLOUD_PROJECT."
    ) from None


def credentials_problem() -> str | None:
    """A cheap look for a sure credentials problem (no I/O beyond a file check):
    GOOGLE_APPLICATION_CREDENTIALS naming no file while the emulator is not used."""
    if os.environ.get(EMULATOR_ENV):
        return None
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path and not os.path.isfile(path):
        return f"GOOGLE_APPLICATION_CREDENTIALS is {path!r}, which is not a file"
    return None


#: Document read (it never exists) to learn Firestore's current time: its read time.
CLOCK_DOCUMENT = "server-clock"
#: A clock with a source asks Firestore's time again when it has learned nothing newer
#: for this long (seconds), and retries this long after a failed attempt.
CLOCK_MAX_AGE = 60.0
CLOCK_RETRY = 5.0
#: Timeout of one such read, in seconds.
CLOCK_READ_TIMEOUT = 2.0


class ServerClock:
    """Firestore's idea of now, learned from the timestamps its responses carry.

    Lease decisions use server time so that workers with skewed clocks still agree.
    With a ``source`` (a call returning Firestore's current time), ``now()`` asks it
    before answering from a clock that has learned nothing yet (or nothing for
    CLOCK_MAX_AGE seconds): a process whose first decision comes before its first write
    (a worker claiming what a query found, a worker's polls) must not decide on its own
    clock. If the source fails (Firestore unreachable), this machine's clock (with the
    last offset learned) is used, and the source is asked again after CLOCK_RETRY.
    """

    def __init__(self, source: Callable[[], datetime] | None = None) -> None:
        self._offset = 0.0  # server minus local, in seconds
        self._learned_at: float | None = None  # time.monotonic() of the last observation
        self._source = source
        self._next_try = 0.0
        self._lock = threading.Lock()

    def observe(self, server_time: datetime) -> datetime:
        """Record a server timestamp just received; return it."""
        self._offset = server_time.timestamp() - time.time()
        self._learned_at = time.monotonic()
        return server_time

    @property
    def synced(self) -> bool:
        """Has a server timestamp been observed in the last CLOCK_MAX_AGE seconds?"""
        learned = self._learned_at
        return learned is not None and time.monotonic() - learned < CLOCK_MAX_AGE

    def now(self) -> datetime:
        if self._source is not None and not self.synced:
            self._sync(self._source)
        return datetime.fromtimestamp(time.time() + self._offset, tz=UTC)

    def _sync(self, source: Callable[[], datetime]) -> None:
        with self._lock:
            if self.synced or time.monotonic() < self._next_try:
                return
            self._next_try = time.monotonic() + CLOCK_RETRY
            try:
                self.observe(source())
            except StoreNotConfigured:
                raise  # not an outage: the caller must hear of it at once
            except Exception as exc:
                # Debug only: an outage is reported by whoever needed Firestore itself.
                logger.debug(
                    "could not read Firestore's time (%s: %s); using this machine's clock "
                    "(offset %.3fs)",
                    type(exc).__name__,
                    exc,
                    self._offset,
                )
