"""Task groups: one document per group, membership on the members' own documents.

A group document holds what the group needs once: its size, the callbacks to enqueue
when every member finished, and, after that, the summary. Members name their group
(``group_id``, ``group_size``) on their execution, so "is the group done?" is a count of
finished members (one aggregation, billed as one read per 1,000 members) made after a
member's own finishing write, never a write to the shared group document: a hundred
members finishing together do not queue up on one document (Firestore sustains about
one write per second on a document).

The group completes in one atomic commit: create every callback execution (its id is
derived from the group id) and close the group document, conditional on the version
read. Whoever loses that race (a duplicate delivery, a concurrent last member, the
sweeper) finds the callbacks already there and writes nothing: each callback is
enqueued exactly once.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Self

from django.tasks import TaskResultStatus

from ..exceptions import GroupNotFound
from .client import ServerClock, StoreSettings
from .codec import decode_json, encode_json, ensure_fits
from .documents import TaskExecution, is_document_id
from .ops import (
    ASCENDING,
    Create,
    DocumentExists,
    DocumentMissing,
    DocumentOps,
    Filter,
    PreconditionFailed,
    Query,
    UniqueCreate,
    Update,
    document_ops,
)

_CREATE_GROUP = UniqueCreate(subject="the group", verb="created")


class GroupStatus(enum.StrEnum):
    """Where a group stands."""

    #: Members may still be running; the callbacks are not enqueued yet.
    OPEN = "OPEN"
    #: Every member finished and the callbacks were enqueued (in the same commit).
    COMPLETE = "COMPLETE"
    #: It can never complete: enqueueing its members failed part way, or (found by the
    #: sweepers) a member's execution is missing: never written, or deleted unfinished.
    ABANDONED = "ABANDONED"


class CallbackKind(enum.StrEnum):
    """When a callback runs; also the suffix of its execution id."""

    ON_COMPLETE = "complete"  #: once every member finished, whatever the outcome
    ON_SUCCESS = "success"  #: once every member finished, only if all succeeded


def callback_execution_id(group_id: str, kind: CallbackKind) -> str:
    """The id of a group's callback execution: fixed, so it is created at most once
    (and a valid Cloud Tasks task id)."""
    return f"{group_id}-{kind.value}"


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupCallback:
    """A task to enqueue when the group completes (its backend is the group's), called
    with the group id, the summary, then ``args`` and ``kwargs``."""

    task_path: str
    queue_name: str
    priority: int = 0
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        return {
            "task_path": self.task_path,
            "queue_name": self.queue_name,
            "priority": self.priority,
            "args": encode_json(self.args, where="args"),
            "kwargs": encode_json(self.kwargs, where="kwargs"),
        }

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> Self:
        return cls(
            task_path=data["task_path"],
            queue_name=data["queue_name"],
            priority=data.get("priority", 0),
            args=decode_json(data.get("args", "[]")),
            kwargs=decode_json(data.get("kwargs", "{}")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskGroup:
    """One group of executions, enqueued together."""

    id: str
    backend: str
    size: int  #: how many members it has
    status: GroupStatus = GroupStatus.OPEN
    on_complete: GroupCallback | None = None
    on_success: GroupCallback | None = None
    created_at: datetime
    completed_at: datetime | None = None
    succeeded: int | None = None  #: members SUCCESSFUL, once complete
    failed: int | None = None  #: members FAILED, once complete
    callback_ids: list[str] = field(default_factory=list)  #: callback executions enqueued
    expires_at: datetime | None = None  #: for a Firestore TTL policy; set when complete
    update_time: datetime | None = field(default=None, compare=False)

    def to_document(self) -> dict[str, Any]:
        """Return the Firestore fields for this group."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_STORED}
        data["status"] = str(self.status)
        for name in ("on_complete", "on_success"):
            callback = getattr(self, name)
            data[name] = None if callback is None else callback.to_document()
        return data

    @classmethod
    def from_document(
        cls, doc_id: str, data: dict[str, Any], update_time: datetime | None = None
    ) -> Self:
        known = {f.name for f in fields(cls)} - _NOT_STORED
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = GroupStatus(values["status"])
        for name in ("on_complete", "on_success"):
            raw = values.get(name)
            values[name] = None if raw is None else GroupCallback.from_document(raw)
        values["callback_ids"] = list(values.get("callback_ids", []))
        return cls(id=doc_id, update_time=update_time, **values)

    def evolve(self, **changes: Any) -> Self:
        return replace(self, **changes)


_NOT_STORED = frozenset({"id", "update_time"})
_FINISHED = [str(TaskResultStatus.SUCCESSFUL), str(TaskResultStatus.FAILED)]


class GroupStore:
    """Task groups of one database and collection prefix."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self._documents = document_ops(settings)
        self.collection_name = settings.groups_collection
        self.clock = ServerClock(
            source=lambda: self.documents.server_time(settings.groups_collection)
        )

    @property
    def documents(self) -> DocumentOps:
        """Where the documents live (Firestore, or this process's memory)."""
        return self._documents

    def _id(self, group_id: str) -> str:
        if not isinstance(group_id, str) or not is_document_id(group_id):
            raise GroupNotFound(f"No task group with id {group_id!r}.")
        return group_id

    def create(self, group: TaskGroup, *, timeout: float | None = None) -> TaskGroup:
        """Write a new group (one write)."""
        data = group.to_document()
        path = f"{self.collection_name}/{self._id(group.id)}"
        ensure_fits(path, data, what="The group")
        update_time = self.documents.create(
            self.collection_name, group.id, data, timeout=timeout, unique=_CREATE_GROUP
        )
        if update_time is not None:
            self.clock.observe(update_time)
        return group.evolve(update_time=update_time)

    def get(self, group_id: str) -> TaskGroup:
        """Read one group; raise GroupNotFound."""
        snapshot = self.documents.get(self.collection_name, self._id(group_id))
        if snapshot.data is None:
            raise GroupNotFound(f"No task group with id {group_id!r}.")
        self.clock.observe(snapshot.read_time)
        return TaskGroup.from_document(snapshot.id, snapshot.data, snapshot.update_time)

    def _members_query(self, group_id: str, *statuses: str) -> Query:
        filters = [Filter("group_id", "==", group_id)]
        if statuses:
            filters.append(Filter("status", "in", list(statuses)))
        return Query(collection=self.settings.executions_collection, filters=tuple(filters))

    def count_finished(self, group_id: str) -> int:
        """How many members are SUCCESSFUL or FAILED (one aggregation)."""
        return self.documents.count(self._members_query(group_id, *_FINISHED))

    def count_members(self, group_id: str) -> int:
        """How many members exist, in any status (one aggregation)."""
        return self.documents.count(self._members_query(group_id))

    def count_succeeded(self, group_id: str) -> int:
        """How many members are SUCCESSFUL (one aggregation)."""
        return self.documents.count(self._members_query(group_id, str(TaskResultStatus.SUCCESSFUL)))

    def members(self, group_id: str) -> list[TaskExecution]:
        """Every member written so far, by id."""
        return [
            TaskExecution.from_document(s.id, s.data or {}, s.update_time)
            for s in self.documents.query(self._members_query(group_id))
        ]

    def complete(
        self,
        group: TaskGroup,
        callbacks: Sequence[TaskExecution],
        *,
        succeeded: int,
        failed: int,
        expires_at: datetime | None,
    ) -> TaskGroup | None:
        """Create the callback executions and close ``group`` (as read) in one commit;
        None, and nothing written, if another writer completed or changed it first."""
        executions = self.settings.executions_collection
        writes: list[Create | Update] = []
        for callback in callbacks:
            data = callback.to_document()
            ensure_fits(f"{executions}/{callback.id}", data, what="The group callback's arguments")
            writes.append(Create(executions, callback.id, data))
        now = self.clock.now()
        after = group.evolve(
            status=GroupStatus.COMPLETE,
            completed_at=now,
            succeeded=succeeded,
            failed=failed,
            callback_ids=[c.id for c in callbacks],
            expires_at=expires_at,
        )
        changes = {k: v for k, v in after.to_document().items() if group.to_document()[k] != v}
        assert group.update_time is not None
        writes.append(Update(self.collection_name, group.id, changes, group.update_time))
        try:
            update_time = self.clock.observe(self.documents.commit(writes))
        except (DocumentExists, PreconditionFailed, DocumentMissing):
            return None
        return after.evolve(update_time=update_time)

    def abandon(
        self,
        group_id: str,
        *,
        expires_at: datetime | None,
        known: TaskGroup | None = None,
    ) -> bool:
        """Mark a group that can never complete; with ``known`` (an OPEN group as read),
        only if it is still that version. Whether it was written."""
        changes = {"status": str(GroupStatus.ABANDONED), "expires_at": expires_at}
        try:
            self.documents.update(
                self.collection_name,
                self._id(group_id),
                changes,
                last_update_time=None if known is None else known.update_time,
            )
        except (DocumentMissing, PreconditionFailed):
            return False
        return True

    def open_groups(self, *, created_before: datetime, limit: int) -> list[TaskGroup]:
        """OPEN groups created before ``created_before``, oldest first (for the sweeper)."""
        query = Query(
            collection=self.collection_name,
            filters=(
                Filter("status", "==", str(GroupStatus.OPEN)),
                Filter("created_at", "<", created_before),
            ),
            order_by=(("created_at", ASCENDING),),
            limit=limit,
        )
        return [
            TaskGroup.from_document(s.id, s.data or {}, s.update_time)
            for s in self.documents.query(query)
        ]
