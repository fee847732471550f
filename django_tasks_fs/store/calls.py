"""Every request the store sends to Firestore: bounded in time, outages named.

The official client retries an unreachable Firestore for 60 to 300 s per request (its
defaults), without a word: a worker, an admin page or a command would hang that long.
Here every request gets the settings' ``timeout`` (option ``firestore_timeout_seconds``),
retries included, and then raises StoreUnavailable naming the Firestore it tried
(emulator host or firestore.googleapis.com, project, database) and what to check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from google.api_core.exceptions import (
    AlreadyExists,
    DeadlineExceeded,
    InternalServerError,
    ResourceExhausted,
    RetryError,
    ServiceUnavailable,
)
from google.api_core.retry import Retry, if_exception_type
from google.cloud import firestore

from ..exceptions import StoreUnavailable
from .client import CLOCK_DOCUMENT, CLOCK_READ_TIMEOUT, StoreSettings, get_client

#: Errors meaning "Firestore did not answer": retried until the time allowed runs out.
UNREACHABLE_ERRORS = (ServiceUnavailable, DeadlineExceeded, ResourceExhausted)
#: Retried on reads, as the client's own defaults do.
_READ_RETRYABLE = (DeadlineExceeded, InternalServerError, ResourceExhausted, ServiceUnavailable)
#: Retried on writes: only errors that say the write was not applied (as the client does).
_WRITE_RETRYABLE = (ResourceExhausted, ServiceUnavailable)
#: What an outage looks like once the retries are spent.
_OUTAGE_ERRORS = (*_READ_RETRYABLE, RetryError)
#: Parts of gRPC's UNAVAILABLE messages that say the request never left this process.
_NOT_SENT_MARKERS = ("failed to connect", "connection refused", "dns resolution failed")


#: A retry that never retries (``retry=None`` breaks the client's stream resumption).
_NO_RETRY = Retry(predicate=lambda exc: False)


def _retry(errors: tuple[type[Exception], ...], timeout: float) -> Retry:
    return Retry(
        predicate=if_exception_type(*errors), initial=0.1, maximum=1.0, multiplier=2.0,
        timeout=timeout,
    )  # fmt: skip


class Calls:
    """The Firestore requests of one store (one settings), each bounded in time.

    ``timeout`` on a call overrides the settings' and sends a single try (no retries):
    for callers that retry themselves, or whose answer is worthless late (heartbeats).
    """

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings

    @property
    def client(self) -> firestore.Client:
        return get_client(self.settings)

    def _options(self, timeout: float | None, *, write: bool = False) -> dict[str, Any]:
        if timeout is not None:
            return {"retry": None, "timeout": timeout}
        limit = self.settings.timeout
        return {
            "retry": _retry(_WRITE_RETRYABLE if write else _READ_RETRYABLE, limit),
            "timeout": limit,
        }

    @contextmanager
    def _reported(self) -> Iterator[None]:
        """Turn an outage into StoreUnavailable naming this Firestore."""
        started = time.monotonic()
        try:
            yield
        except _OUTAGE_ERRORS as exc:
            cause = exc.cause if isinstance(exc, RetryError) and exc.cause else exc
            elapsed = time.monotonic() - started
            raise self._unavailable(f"{_what(cause)} (gave up after {elapsed:.1f}s).") from exc

    def _unavailable(self, what: str, **fields: Any) -> StoreUnavailable:
        """StoreUnavailable: ``what`` happened, then which Firestore and what to check."""
        project = self._project()
        return StoreUnavailable(
            f"{what} Tried {self.settings.target(project)}. {self.settings.outage_hint(project)}",
            **fields,
        )

    def _project(self) -> str | None:
        try:
            return str(self.client.project)
        except Exception:  # the client itself cannot be built: the settings' guess
            return self.settings.resolved_project()

    # -- reads -------------------------------------------------------------------------

    def get(self, ref: firestore.DocumentReference, *, timeout: float | None = None) -> Any:
        with self._reported():
            return ref.get(**self._options(timeout))

    def get_all(self, refs: list[firestore.DocumentReference]) -> list[Any]:
        with self._reported():
            return list(self.client.get_all(refs, **self._options(None)))

    def stream(self, query: Any) -> list[Any]:
        """The query's documents (read to the end within the time allowed).

        A stream broken midway is read again from the start, here: the client's own
        resumption restarts after the last document received and, when none was,
        fails with a TypeError (google-cloud-firestore's ``start_after(None)``).
        """
        deadline = time.monotonic() + self.settings.timeout
        delay = 0.1
        with self._reported():
            while True:
                left = max(deadline - time.monotonic(), 0.1)
                try:
                    return list(query.stream(retry=_NO_RETRY, timeout=left))
                except _READ_RETRYABLE:
                    if time.monotonic() + delay >= deadline:
                        raise
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)

    def count(self, query: Any) -> int:
        """The number of documents matching ``query`` (an aggregation, not a scan)."""
        with self._reported():
            result = query.count().get(**self._options(None))
        return int(result[0][0].value)

    def server_time(self, collection: str) -> datetime:
        """Firestore's current time: the read time of a document that does not exist."""
        ref = self.client.collection(collection).document(CLOCK_DOCUMENT)
        read_time: datetime = self.get(ref, timeout=CLOCK_READ_TIMEOUT).read_time
        return read_time

    # -- writes ------------------------------------------------------------------------

    def update(
        self,
        ref: firestore.DocumentReference,
        changes: dict[str, Any],
        *,
        option: Any,
        timeout: float | None = None,
    ) -> Any:
        with self._reported():
            return ref.update(changes, option=option, **self._options(timeout, write=True))

    def delete(self, ref: firestore.DocumentReference, *, option: Any = None) -> None:
        with self._reported():
            ref.delete(option=option, **self._options(None, write=True))

    def commit(self, batch: Any) -> datetime:
        """Commit ``batch``; return its commit time (every changed document's update time)."""
        with self._reported():
            batch.commit(**self._options(None, write=True))
        commit_time: datetime = batch.commit_time
        return commit_time

    def create(self, ref: firestore.DocumentReference, data: dict[str, Any]) -> datetime:
        """Create ``ref``; return its update time (AlreadyExists if it exists)."""
        with self._reported():
            update_time: datetime = ref.create(data, **self._options(None, write=True)).update_time
        return update_time

    def create_unique(
        self,
        ref: firestore.DocumentReference,
        data: dict[str, Any],
        *,
        timeout: float | None = None,
        subject: str = "the document",
        verb: str = "written",
    ) -> datetime | None:
        """Create ``ref``, whose id is random and used by no one else, within ``timeout``
        seconds (default: the settings'); return its update time.

        Firestore being unreachable, slow or throttling is retried (with backoff) until the
        time is up, then raises StoreUnavailable saying whether the write may still be
        applied (an attempt that may have reached Firestore). A retry refused with
        ALREADY_EXISTS after such an attempt means that attempt was applied: success, if
        the document id is unique to this write (a random id). Returns None when the
        update time could not be read back then.
        """

        def attempt(left: float) -> datetime:
            update_time: datetime = ref.create(data, retry=None, timeout=left).update_time
            return update_time

        return self._write_unique(attempt, ref, timeout=timeout, subject=subject, verb=verb)

    def commit_unique(
        self,
        build: Callable[[], Any],
        first: firestore.DocumentReference,
        *,
        timeout: float | None = None,
        subject: str = "the document",
        verb: str = "written",
    ) -> datetime | None:
        """Commit the batch ``build()`` makes, of creates only, every id random (``first``
        is one of them), as ``create_unique`` does one create: retried until ``timeout``,
        ALREADY_EXISTS after an attempt that may have been applied is success (a batch is
        all-or-nothing, so that attempt wrote every document). Returns the commit time."""

        def attempt(left: float) -> datetime:
            batch = build()  # a fresh batch each try: a failed one keeps no state to trust
            batch.commit(retry=None, timeout=left)
            commit_time: datetime = batch.commit_time
            return commit_time

        return self._write_unique(attempt, first, timeout=timeout, subject=subject, verb=verb)

    def _write_unique(
        self,
        attempt: Callable[[float], datetime],
        ref: firestore.DocumentReference,
        *,
        timeout: float | None,
        subject: str,
        verb: str,
    ) -> datetime | None:
        """Run ``attempt(seconds_left)`` until it succeeds or the time is up (see create_unique)."""
        started = time.monotonic()
        deadline = started + (self.settings.timeout if timeout is None else timeout)
        delay = 0.1
        attempts = 0
        maybe_sent = False
        while True:
            attempts += 1
            remaining = deadline - time.monotonic()
            try:
                return attempt(max(remaining, 0.05))
            except AlreadyExists:
                if not maybe_sent:
                    raise
                return self._update_time(ref, deadline)
            except UNREACHABLE_ERRORS as exc:
                maybe_sent = maybe_sent or not _never_sent(exc)
                now = time.monotonic()
                if now >= deadline - 0.05:
                    tried = f"gave up after {now - started:.1f}s and {attempts} attempt(s)"
                    if maybe_sent:
                        what = (
                            f"{_what(exc)}; {subject} was probably not {verb}, but an attempt "
                            f"may have reached Firestore and still be applied: look up id "
                            f"{ref.id!r} once Firestore is back ({tried})."
                        )
                    else:
                        what = f"{_what(exc)}; {subject} was not {verb} ({tried})."
                    raise self._unavailable(
                        what, execution_id=ref.id, maybe_written=maybe_sent
                    ) from exc
                time.sleep(min(delay, deadline - now - 0.05))
                delay = min(delay * 2, 1.0)

    def _update_time(self, ref: firestore.DocumentReference, deadline: float) -> datetime | None:
        try:
            snapshot = ref.get(retry=None, timeout=max(deadline - time.monotonic(), 1.0))
        except UNREACHABLE_ERRORS:
            return None
        update_time: datetime | None = snapshot.update_time
        return update_time


def _what(exc: BaseException) -> str:
    """What happened, with the cause (shortened)."""
    cause = f"{type(exc).__name__}: {exc}"
    if len(cause) > 300:
        cause = cause[:297] + "..."
    if isinstance(exc, DeadlineExceeded):
        return f"Firestore did not answer in time ({cause})"
    if isinstance(exc, ResourceExhausted):
        return f"Firestore refused the request for lack of quota or capacity ({cause})"
    return f"Firestore is unreachable ({cause})"


def _never_sent(exc: Exception) -> bool:
    """Did this failure happen before the request could reach Firestore?"""
    message = str(exc).lower()
    return isinstance(exc, ServiceUnavailable) and any(m in message for m in _NOT_SENT_MARKERS)
