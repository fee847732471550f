"""Where the data lives (project, database, collections) and the Firestore client for it."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.cloud import firestore

DEFAULT_DATABASE = "(default)"
DEFAULT_COLLECTION_PREFIX = "django_tasks_fs_"
DEFAULT_MAX_HISTORY_ENTRIES = 10
DEFAULT_MAX_HISTORY_BYTES = 128 * 1024
DEFAULT_RETENTION = timedelta(days=14)
#: Project used when none is configured and FIRESTORE_EMULATOR_HOST is set.
EMULATOR_DEFAULT_PROJECT = "django-tasks-fs-local"


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

    @property
    def executions_collection(self) -> str:
        return f"{self.collection_prefix}executions"

    @property
    def schedules_collection(self) -> str:
        return f"{self.collection_prefix}schedules"

    @property
    def slots_collection(self) -> str:
        return f"{self.collection_prefix}schedule_slots"

    def resolved_project(self) -> str | None:
        """The project id to use, from the settings, the environment or the emulator default."""
        if self.project:
            return self.project
        for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
            if os.environ.get(name):
                return os.environ[name]
        if os.environ.get("FIRESTORE_EMULATOR_HOST"):
            return EMULATOR_DEFAULT_PROJECT
        return None  # google.auth.default() decides


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
            client = firestore.Client(project=project, database=settings.database)
            _clients[key] = client
        return client


def has_clients() -> bool:
    """Has this process created a Firestore client (and so possibly a gRPC channel)?

    A process without one can be forked safely; after that, only spawned children are.
    """
    pid = os.getpid()
    with _clients_lock:
        return any(key[0] == pid for key in _clients)


class ServerClock:
    """Firestore's idea of now, learned from the timestamps its responses carry.

    Lease decisions use server time so that workers with skewed clocks still agree.
    """

    def __init__(self) -> None:
        self._offset = 0.0  # server minus local, in seconds

    def observe(self, server_time: datetime) -> datetime:
        """Record a server timestamp just received; return it."""
        self._offset = server_time.timestamp() - time.time()
        return server_time

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self._offset, tz=UTC)
