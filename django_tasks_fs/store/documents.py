"""The documents the library keeps in Firestore, and their one mapping to and from fields.

Field names match ``django.tasks.TaskResult`` attributes where one exists. Payloads
(``args``, ``kwargs``, ``return_value``) are stored as JSON text (see codec).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Self

from django.tasks import TaskResultStatus

from .codec import decode_json, encode_json

FINISHED_STATUSES = frozenset({TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED})


class DispatchState(enum.StrEnum):
    """Whether the platform (Cloud Tasks, Cloud Run Jobs) has been told about an execution."""

    #: Written to Firestore, dispatch not yet confirmed; a sweeper retries it.
    PENDING = "PENDING"
    #: The platform accepted it (a task or job execution exists).
    DISPATCHED = "DISPATCHED"
    #: No dispatch needed: a local worker polls for it.
    LOCAL = "LOCAL"
    #: The platform refused it for good (its queue or job does not exist): the
    #: execution was closed FAILED with that error and is never sent again.
    REFUSED = "REFUSED"


def is_document_id(value: str) -> bool:
    """Can ``value`` name a Firestore document? (Not empty, '.', '..' or ``__*__``,
    no '/', at most 1,500 bytes.) Other ids are refused before any request."""
    return (
        bool(value)
        and "/" not in value
        and value not in {".", ".."}
        and not (value.startswith("__") and value.endswith("__"))
        and len(value.encode("utf-8", "surrogatepass")) <= 1500
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEntry:
    """One failed attempt, as ``django.tasks.TaskError`` records it."""

    exception_class_path: str
    traceback: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskExecution:
    """One enqueued task and everything that happened to it."""

    id: str
    task_path: str
    backend: str
    queue_name: str
    priority: int = 0
    takes_context: bool = False
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    status: TaskResultStatus = TaskResultStatus.READY
    enqueued_at: datetime
    run_after: datetime  #: always set (enqueue time when not deferred): one range query
    started_at: datetime | None = None
    last_attempted_at: datetime | None = None
    finished_at: datetime | None = None
    return_value: Any = None
    errors: list[ErrorEntry] = field(default_factory=list)  #: capped by count and bytes
    worker_ids: list[str] = field(default_factory=list)  #: capped by count and bytes
    attempts: int = 0  #: attempts started; never derived from the capped histories
    max_attempts: int | None = 1  #: attempts allowed in total; None means unlimited
    run_once: bool = False  #: never start a second attempt, even after a lost worker
    timeout_seconds: float | None = None
    #: The rest of the task's policy (django_tasks_fs.policy): backoff, retry_on,
    #: dont_retry_on and each value's source; empty: the backend's (older documents).
    retry_policy: dict[str, Any] = field(default_factory=dict)
    lease_owner: str | None = None  #: token of the attempt holding the lease
    lease_expires_at: datetime | None = None
    heartbeat_at: datetime | None = None
    cancelled_at: datetime | None = None
    force_cancel: bool = False
    dispatch_state: DispatchState = DispatchState.LOCAL
    dispatch_error: str | None = None
    dispatched_at: datetime | None = None  #: when the platform last accepted it
    #: Times the sweeper handed an abandoned execution to the platform again; names the
    #: Cloud Task of that re-dispatch (``<id>-r<n>``), so repeating one is de-duplicated.
    redispatches: int = 0
    redispatched_attempt: int | None = None  #: the abandoned attempt last re-dispatched
    cloud_task_name: str | None = None  #: Cloud Tasks task resource name
    cloud_run_execution: str | None = None  #: Cloud Run Jobs execution resource name
    scheduled_task: str | None = None  #: name of the ScheduledTask that enqueued it
    group_id: str | None = None  #: the group it is a member of (store.groups)
    group_size: int | None = None  #: how many members that group has
    unique_key: str | None = None  #: the task's unique key it was enqueued with (store.unique_keys)
    expires_at: datetime | None = None  #: for a Firestore TTL policy; set when finished
    trace_context: dict[str, str] = field(
        default_factory=dict
    )  #: W3C traceparent/tracestate of enqueue
    #: Firestore's update time of the version read (not stored; used for compare-and-set).
    update_time: datetime | None = field(default=None, compare=False)

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def to_document(self) -> dict[str, Any]:
        """Return the Firestore fields for this execution."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_STORED}
        data["status"] = str(self.status)
        data["dispatch_state"] = str(self.dispatch_state)
        data["args"] = encode_json(self.args, where="args")
        data["kwargs"] = encode_json(self.kwargs, where="kwargs")
        data["return_value"] = (
            None
            if self.return_value is None
            else encode_json(self.return_value, where="return value")
        )
        data["errors"] = [errors_to_document(e) for e in self.errors]
        return data

    @classmethod
    def from_document(
        cls, doc_id: str, data: dict[str, Any], update_time: datetime | None = None
    ) -> Self:
        """Build an execution from Firestore fields (unknown fields are ignored)."""
        known = {f.name for f in fields(cls)} - _NOT_STORED
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = TaskResultStatus(values["status"])
        values["dispatch_state"] = DispatchState(values.get("dispatch_state", "LOCAL"))
        values["args"] = decode_json(values["args"])
        values["kwargs"] = decode_json(values["kwargs"])
        raw_return = values.get("return_value")
        values["return_value"] = None if raw_return is None else decode_json(raw_return)
        values["errors"] = [ErrorEntry(**e) for e in values.get("errors", [])]
        values["worker_ids"] = list(values.get("worker_ids", []))
        values.pop("id", None)
        return cls(id=doc_id, update_time=update_time, **values)

    def evolve(self, **changes: Any) -> Self:
        """Return a copy with ``changes`` applied (the one place executions are 'mutated')."""
        return replace(self, **changes)


def errors_to_document(entry: ErrorEntry) -> dict[str, str]:
    return {"exception_class_path": entry.exception_class_path, "traceback": entry.traceback}


_NOT_STORED = frozenset({"id", "update_time"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledTask:
    """A cron schedule that enqueues a task at every slot."""

    name: str  #: document id; also names the Cloud Scheduler job
    task_path: str
    schedule: str  #: cron expression (5 fields), evaluated in time_zone
    time_zone: str = "UTC"
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    backend: str = "default"
    queue_name: str = "default"
    priority: int = 0
    takes_context: bool = False
    enabled: bool = True
    description: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_fired_at: datetime | None = None
    last_slot: datetime | None = None  #: the newest slot that enqueued an execution
    last_execution_id: str | None = None
    cloud_scheduler_job: str | None = None  #: Cloud Scheduler job resource name, once synced
    sync_error: str | None = None
    update_time: datetime | None = field(default=None, compare=False)

    def to_document(self) -> dict[str, Any]:
        data = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in _NOT_STORED_SCHEDULE
        }
        data["args"] = encode_json(self.args, where="args")
        data["kwargs"] = encode_json(self.kwargs, where="kwargs")
        return data

    @classmethod
    def from_document(
        cls, doc_id: str, data: dict[str, Any], update_time: datetime | None = None
    ) -> Self:
        known = {f.name for f in fields(cls)} - _NOT_STORED_SCHEDULE
        values = {k: v for k, v in data.items() if k in known}
        values["args"] = decode_json(values["args"])
        values["kwargs"] = decode_json(values["kwargs"])
        return cls(name=doc_id, update_time=update_time, **values)

    def evolve(self, **changes: Any) -> Self:
        return replace(self, **changes)


_NOT_STORED_SCHEDULE = frozenset({"name", "update_time"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotReservation:
    """The claim of one slot of one schedule: created with the execution it enqueued."""

    schedule: str  #: the scheduled task's name
    slot: datetime
    execution_id: str
    created_at: datetime
    expires_at: datetime | None = None  #: the execution's, so TTL deletes both together

    def to_document(self) -> dict[str, Any]:
        """Return the Firestore fields for this reservation."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """Proof that one attempt holds an execution; every write by that attempt quotes it."""

    owner: str  #: unique per attempt, so a takeover by the same worker is still detected
    execution: TaskExecution  #: as of this attempt's last write (its update_time is the CAS base)

    @property
    def execution_id(self) -> str:
        return self.execution.id

    @property
    def attempt(self) -> int:
        return self.execution.attempts

    @property
    def expires_at(self) -> datetime | None:
        return self.execution.lease_expires_at

    @property
    def cancel_requested(self) -> bool:
        return self.execution.cancelled_at is not None

    @property
    def force_cancel(self) -> bool:
        return self.execution.force_cancel
