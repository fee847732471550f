"""Every error a django_tasks_fs user can catch (or raise), under one base class.

::

    TaskFsError                      base class, do not raise directly
    ├── PayloadError (InvalidTask)   args / kwargs / return value cannot be stored
    │   ├── NotJSONSerializable      a value is not plain JSON
    │   └── PayloadTooLarge          the document would pass Firestore's 1 MiB limit
    ├── ExecutionNotFound (TaskResultDoesNotExist)
    ├── ScheduleNotFound (LookupError)
    ├── GroupNotFound (LookupError)
    ├── UnknownBackend (InvalidTaskBackend)  an alias is not a configured backend of ours
    ├── TaskNotImportable (ImportError)      an execution's or schedule's task path
    ├── ContentionError              a document kept changing under a compare-and-set
    ├── StoreUnavailable             Firestore did not answer in time
    ├── StoreNotConfigured (ImproperlyConfigured)  no credentials or project for Firestore
    ├── GoogleCloudError             a Google Cloud API call failed
    │   └── MissingCloudResource     a Cloud Tasks queue / Cloud Run job does not exist
    ├── PermanentTaskError           raise from a task: fail now, no retry
    ├── TaskTimeout (TimeoutError)   recorded for an attempt that overran its timeout
    ├── WorkerLost                   recorded for an attempt whose worker died
    └── WorkerStartError             recorded for an attempt whose process could not start

    TaskCancelledError (BaseException)  raised inside a task that is being stopped

``TaskCancelledError`` stays outside the tree on purpose: like ``KeyboardInterrupt``,
``except Exception`` in task code must not swallow it. The store's own control flow
(``ClaimRefused``, ``LeaseLost``) never reaches a caller; it lives in
``django_tasks_fs.store.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.tasks.exceptions import InvalidTask, InvalidTaskBackend, TaskResultDoesNotExist


class TaskFsError(Exception):
    """Base class for django_tasks_fs errors. Do not raise directly."""


class PayloadError(TaskFsError, InvalidTask):
    """Task arguments or a return value cannot be stored."""


class NotJSONSerializable(PayloadError, TypeError):
    """A value is not plain JSON (dict with str keys, list, str, int, finite float, bool, None)."""


class PayloadTooLarge(PayloadError, ValueError):
    """The execution document would exceed Firestore's 1 MiB document limit."""


class ExecutionNotFound(TaskFsError, TaskResultDoesNotExist):
    """No execution document has this id."""


class ScheduleNotFound(TaskFsError, LookupError):
    """No scheduled task has this name."""


class GroupNotFound(TaskFsError, LookupError):
    """No task group has this id."""


class UnknownBackend(TaskFsError, InvalidTaskBackend):
    """A backend alias is not one of the django_tasks_fs backends configured in TASKS."""


class TaskNotImportable(TaskFsError, ImportError):
    """An execution names a task path that does not import to a ``@task``."""


class ContentionError(TaskFsError):
    """A compare-and-set kept losing races; the document is being written too often."""


class TaskCancelledError(BaseException):
    """Raised inside a task that is stopped (forceful cancel, timeout, shutdown).

    A BaseException, like KeyboardInterrupt, so ``except Exception`` in task code does
    not swallow it.
    """


class TaskTimeout(TaskFsError, TimeoutError):
    """Recorded when an attempt ran longer than its task's ``timeout``."""


class PermanentTaskError(TaskFsError):
    """Raise from a task to fail it now, without further attempts."""


class WorkerLost(TaskFsError):
    """Recorded when an attempt's lease expired without a result (its worker died)."""


class WorkerStartError(TaskFsError):
    """Recorded when the process meant to run an attempt could not start (run_tasks)."""


class StoreUnavailable(TaskFsError):
    """Firestore could not be reached (or did not answer) within the time allowed.

    Raised by every store call after its ``firestore_timeout_seconds``; the message
    names the Firestore tried (emulator host or firestore.googleapis.com, project,
    database) and what to check. From ``enqueue()``, ``execution_id`` is the id the
    new execution would have had. ``maybe_written`` is False when no attempt reached
    Firestore (the task was not enqueued); True when one may have been received and
    applied late (read the result by ``execution_id`` once Firestore is back to know).
    From ``enqueue_many()`` (its commits run concurrently, so any of them may fail):
    ``enqueued`` holds the results of the calls that were enqueued, in call order, and
    ``not_enqueued`` the positions (0-based, ascending) of the calls that were not:
    retry exactly those. ``execution_id`` is then the first execution of the first
    failed commit, and ``maybe_written`` is True if any failed commit may still be
    applied (its calls are then in ``not_enqueued`` but may turn up).
    """

    def __init__(
        self,
        message: str,
        *,
        execution_id: str = "",
        maybe_written: bool = False,
        enqueued: Sequence[Any] = (),
        not_enqueued: Sequence[int] = (),
    ):
        super().__init__(message)
        self.execution_id = execution_id
        self.maybe_written = maybe_written
        self.enqueued: list[Any] = list(enqueued)
        self.not_enqueued: list[int] = list(not_enqueued)


class StoreNotConfigured(TaskFsError, ImproperlyConfigured):
    """Firestore cannot be used: no Google credentials, or no project (the message says how to fix it)."""


class GoogleCloudError(TaskFsError):
    """A Google Cloud API call failed (the cause is chained)."""


class MissingCloudResource(GoogleCloudError):
    """A Cloud Tasks queue or Cloud Run job a backend needs does not exist.

    Raised by ``enqueue()``. ``execution_id`` is empty when nothing was written (the
    resource was found missing before the write); otherwise that execution was recorded
    FAILED with this error, so nothing stays READY (retry it once the resource exists).
    """

    def __init__(self, message: str, *, resource: str, command: str, execution_id: str = ""):
        super().__init__(message)
        self.resource = resource  #: full resource name, e.g. projects/P/locations/L/queues/Q
        self.command = command  #: the command that creates it
        self.execution_id = execution_id

    def recorded(self, execution_id: str, *, closed: bool = True) -> MissingCloudResource:
        """The same error, saying what became of ``execution_id`` (written already)."""
        fate = (
            "was recorded as FAILED with this error; retry it (e.g. from the admin) once "
            "the resource exists."
            if closed
            else "could not be recorded as FAILED (Firestore did not answer); the sweeper "
            "will close it."
        )
        return MissingCloudResource(
            f"{self} Execution {execution_id!r} {fate}",
            resource=self.resource,
            command=self.command,
            execution_id=execution_id,
        )
