"""Where the data lives (project, database, collections) and the Firestore client for it."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core.exceptions import (
    AlreadyExists,
    DeadlineExceeded,
    ResourceExhausted,
    ServiceUnavailable,
)
from google.cloud import firestore

from ..exceptions import StoreUnavailable

logger = logging.getLogger(__name__)

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
            except Exception:
                logger.warning(
                    "could not read Firestore's time; using this machine's clock (offset %.3fs)",
                    self._offset,
                    exc_info=True,
                )


def read_server_time(client: firestore.Client, collection: str) -> datetime:
    """Firestore's current time: the read time of a document that does not exist."""
    snapshot = (
        client.collection(collection)
        .document(CLOCK_DOCUMENT)
        .get(retry=None, timeout=CLOCK_READ_TIMEOUT)
    )
    read_time: datetime = snapshot.read_time
    return read_time


#: Errors meaning "Firestore did not answer": retried until the time allowed runs out.
UNREACHABLE_ERRORS = (ServiceUnavailable, DeadlineExceeded, ResourceExhausted)
#: Parts of gRPC's UNAVAILABLE messages that say the request never left this process.
_NOT_SENT_MARKERS = ("failed to connect", "connection refused", "dns resolution failed")


def _never_sent(exc: Exception) -> bool:
    """Did this failure happen before the request could reach Firestore?"""
    message = str(exc).lower()
    return isinstance(exc, ServiceUnavailable) and any(m in message for m in _NOT_SENT_MARKERS)


def create_document(
    ref: firestore.DocumentReference,
    data: dict[str, Any],
    *,
    timeout: float,
    subject: str = "the document",
    verb: str = "written",
) -> datetime | None:
    """Create ``ref`` within ``timeout`` seconds; return its update time.

    Firestore being unreachable, slow or throttling is retried (with backoff) until the
    time is up, then raises StoreUnavailable saying whether the write may still be
    applied (an attempt that may have reached Firestore). A retry refused with
    ALREADY_EXISTS after such an attempt means that attempt was applied: success, if
    the document id is unique to this write (a random id). Returns None when the
    update time could not be read back then.
    """
    started = time.monotonic()
    deadline = started + timeout
    delay = 0.1
    attempts = 0
    maybe_sent = False
    while True:
        attempts += 1
        remaining = deadline - time.monotonic()
        try:
            result = ref.create(data, retry=None, timeout=max(remaining, 0.05))
        except AlreadyExists:
            if not maybe_sent:
                raise
            return _read_update_time(ref, deadline)
        except UNREACHABLE_ERRORS as exc:
            maybe_sent = maybe_sent or not _never_sent(exc)
            now = time.monotonic()
            if now >= deadline - 0.05:
                raise _unavailable(
                    exc, subject, verb, attempts, now - started, ref.id, maybe_sent
                ) from exc
            time.sleep(min(delay, deadline - now - 0.05))
            delay = min(delay * 2, 1.0)
            continue
        update_time: datetime = result.update_time
        return update_time


def _read_update_time(ref: firestore.DocumentReference, deadline: float) -> datetime | None:
    try:
        snapshot = ref.get(retry=None, timeout=max(deadline - time.monotonic(), 1.0))
    except UNREACHABLE_ERRORS:
        return None
    update_time: datetime | None = snapshot.update_time
    return update_time


def _unavailable(
    exc: Exception,
    subject: str,
    verb: str,
    attempts: int,
    elapsed: float,
    document_id: str,
    maybe_sent: bool,
) -> StoreUnavailable:
    cause = f"{type(exc).__name__}: {exc}"
    if len(cause) > 300:
        cause = cause[:297] + "..."
    if isinstance(exc, DeadlineExceeded):
        headline = f"Firestore did not answer in time ({cause})"
    elif isinstance(exc, ResourceExhausted):
        headline = f"Firestore refused the write for lack of quota or capacity ({cause})"
    else:
        headline = f"Firestore is unreachable ({cause})"
    tried = f"gave up after {elapsed:.1f}s and {attempts} attempt(s)"
    if maybe_sent:
        message = (
            f"{headline}; {subject} was probably not {verb}, but an attempt may have "
            f"reached Firestore and still be applied: look up id {document_id!r} once "
            f"Firestore is back ({tried})."
        )
    else:
        message = f"{headline}; {subject} was not {verb} ({tried})."
    return StoreUnavailable(message, execution_id=document_id, maybe_written=maybe_sent)
