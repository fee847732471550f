"""The indexes the store's queries need, the fields no query uses, and their Firestore JSON.

``manage.py firestore_indexes`` prints the file the Firebase CLI deploys (or, with
``--gcloud``, the equivalent ``gcloud firestore`` commands): the composite indexes of
``QUERY_SHAPES``, a single-field index exemption for every stored field no query filters
or orders by (``UNINDEXED_FIELDS``), and the TTL policies. The test suite records every
query the store sends and fails if one is not covered by a composite index, or uses an
exempted field (the emulator enforces neither, so nothing else would); it also fails if a
stored field is in neither set, so a new field forces the choice.
"""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .client import StoreSettings

ASC = "ASCENDING"
DESC = "DESCENDING"
#: Equality filters the admin listing may combine (any subset).
LISTING_FILTERS = ("status", "backend", "queue_name", "task_path")


@dataclass(frozen=True, slots=True)
class QueryShape:
    """What decides the index a query needs: its collection, equality fields, order."""

    collection: str  #: the collection name without the prefix, e.g. "executions"
    equalities: frozenset[str]
    order: tuple[tuple[str, str], ...]  #: (field, ASCENDING|DESCENDING), inequality fields included

    def needs_composite_index(self) -> bool:
        # Equality-only queries are served by merging single-field indexes; one field alone
        # has its automatic single-field index.
        fields = set(self.equalities) | {f for f, _ in self.order}
        return bool(self.order) and len(fields) > 1


def _shapes() -> Iterable[QueryShape]:
    ready_order = (("priority", DESC), ("run_after", ASC))
    yield QueryShape("executions", frozenset({"status", "backend"}), ready_order)
    yield QueryShape("executions", frozenset({"status", "backend", "queue_name"}), ready_order)
    yield QueryShape("executions", frozenset({"status", "backend"}), (("lease_expires_at", ASC),))
    yield QueryShape(
        "executions", frozenset({"dispatch_state", "backend"}), (("enqueued_at", ASC),)
    )
    yield QueryShape("executions", frozenset({"status", "backend"}), (("finished_at", ASC),))
    # executions/stats.py (the admin dashboard), per backend and per queue: the oldest
    # due READY; finished since (counts) and the last finished (duration sample).
    for scope in ({"status", "backend"}, {"status", "backend", "queue_name"}):
        yield QueryShape("executions", frozenset(scope), (("run_after", ASC),))
        yield QueryShape("executions", frozenset(scope), (("finished_at", DESC),))
    for size in range(1, len(LISTING_FILTERS) + 1):
        for fields in itertools.combinations(LISTING_FILTERS, size):
            yield QueryShape("executions", frozenset(fields), (("enqueued_at", DESC),))
            yield QueryShape("executions", frozenset(fields), ())  # count(): merged equalities
    yield QueryShape("executions", frozenset(), (("enqueued_at", DESC),))  # unfiltered listing
    yield QueryShape("schedules", frozenset(), ())  # all schedules, by document id
    # a group's members (all; or counted by status): merged single-field indexes
    yield QueryShape("executions", frozenset({"group_id"}), ())
    yield QueryShape("executions", frozenset({"group_id", "status"}), ())
    yield QueryShape("groups", frozenset({"status"}), (("created_at", ASC),))  # the sweepers


#: Every query shape the store runs (those served by single-field indexes included).
ALL_QUERY_SHAPES: tuple[QueryShape, ...] = tuple(_shapes())
#: Every query shape the store runs that needs a composite index.
QUERY_SHAPES: tuple[QueryShape, ...] = tuple(
    s for s in ALL_QUERY_SHAPES if s.needs_composite_index()
)
#: The library's collections, without the prefix.
COLLECTIONS = ("executions", "schedules", "schedule_slots", "unique_keys", "groups")


def queried_fields(collection: str) -> frozenset[str]:
    """The fields of ``collection`` some query filters or orders by: they stay indexed."""
    return frozenset(
        field
        for shape in ALL_QUERY_SHAPES
        if shape.collection == collection
        for field in (*shape.equalities, *(f for f, _ in shape.order))
    )


#: Stored fields that no query filters or orders by, per collection. Each gets a
#: single-field index exemption: Firestore would otherwise index every field ascending and
#: descending (every map subfield, every array element), which costs write latency and
#: storage, lets large maps and arrays approach the 40,000 index entries per document, and
#: makes each timestamp below (heartbeat_at is rewritten on every heartbeat) a sequential
#: index range limited to about 500 writes per second. A stored field must be here or in
#: ``queried_fields`` (the test suite checks both ways).
UNINDEXED_FIELDS: Mapping[str, frozenset[str]] = {
    "executions": frozenset(
        {
            # payloads and histories: JSON text, arrays of maps, W3C trace carrier
            "args", "kwargs", "return_value", "errors", "worker_ids", "trace_context",
            "dispatch_error",
            # timestamps only read back (sequential: each would be a hotspot)
            "started_at", "last_attempted_at", "heartbeat_at", "cancelled_at",
            "dispatched_at", "expires_at",
            # per-attempt bookkeeping and flags
            "takes_context", "attempts", "max_attempts", "run_once", "timeout_seconds",
            "retry_policy",
            "lease_owner", "force_cancel", "redispatches", "redispatched_attempt",
            "cloud_task_name", "cloud_run_execution", "scheduled_task", "group_size",
            "unique_key",  # shown in the admin; the key document is read by id
        }
    ),
    "schedules": frozenset(
        {
            "task_path", "schedule", "time_zone", "args", "kwargs", "backend", "queue_name",
            "priority", "takes_context", "enabled", "description", "created_at", "updated_at",
            "last_fired_at", "last_slot", "last_execution_id", "cloud_scheduler_job",
            "sync_error",
        }
    ),
    "schedule_slots": frozenset(
        {"schedule", "slot", "execution_id", "created_at", "expires_at"}
    ),
    "unique_keys": frozenset(  # read by id only (see store.unique_keys)
        {"key", "backend", "task_path", "execution_id", "enqueued_at", "held_until", "expires_at"}
    ),
    "groups": frozenset(
        {
            "backend", "size", "on_complete", "on_success", "completed_at", "succeeded",
            "failed", "callback_ids", "expires_at",
        }
    ),
}  # fmt: skip
#: The timestamp a Firestore TTL policy deletes documents by, per collection.
TTL_FIELDS: Mapping[str, str] = {
    "executions": "expires_at",
    "schedule_slots": "expires_at",
    "unique_keys": "expires_at",
    "groups": "expires_at",
}


def covers(index: QueryShape, query: QueryShape) -> bool:
    """Does ``index`` serve ``query``? (Same equality fields in any order, then the same order.)"""
    return (
        index.collection == query.collection
        and index.equalities == query.equalities
        and index.order == query.order
    )


def index_document(
    settings: StoreSettings, shapes: Sequence[QueryShape] = QUERY_SHAPES
) -> dict[str, Any]:
    """The ``firestore.indexes.json`` content for a collection prefix: composite indexes,
    then an exemption (``indexes: []``) per unindexed field, with TTL where it applies."""
    indexes = [
        {
            "collectionGroup": f"{settings.collection_prefix}{shape.collection}",
            "queryScope": "COLLECTION",
            "fields": [
                *({"fieldPath": f, "order": ASC} for f in sorted(shape.equalities)),
                *({"fieldPath": f, "order": direction} for f, direction in shape.order),
            ],
        }
        for shape in shapes
    ]
    overrides = [
        {
            "collectionGroup": f"{settings.collection_prefix}{collection}",
            "fieldPath": field,
            **({"ttl": True} if TTL_FIELDS.get(collection) == field else {}),
            "indexes": [],
        }
        for collection in COLLECTIONS
        for field in sorted(UNINDEXED_FIELDS[collection])
    ]
    return {"indexes": indexes, "fieldOverrides": overrides}


def gcloud_commands(
    document: Mapping[str, Any], *, database: str, project: str | None = None
) -> list[str]:
    """The ``gcloud firestore`` commands that create ``document``'s indexes, exemptions and
    TTL policies.

    ``--async``: an index takes minutes to build, and gcloud would wait for each in turn.
    """
    where = [f"--database={database}"] + ([f"--project={project}"] if project else [])
    commands = [
        [
            "gcloud", "firestore", "indexes", "composite", "create",
            f"--collection-group={index['collectionGroup']}",
            f"--query-scope={index['queryScope'].lower()}",
            *(
                f"--field-config=field-path={f['fieldPath']},order={f['order'].lower()}"
                for f in index["fields"]
            ),
            *where, "--async",
        ]
        for index in document["indexes"]
    ]  # fmt: skip
    commands += [
        [
            "gcloud", "firestore", "indexes", "fields", "update", override["fieldPath"],
            f"--collection-group={override['collectionGroup']}", "--disable-indexes",
            *where, "--async",
        ]
        for override in document["fieldOverrides"]
        if override.get("indexes") == []
    ]  # fmt: skip
    commands += [
        [
            "gcloud", "firestore", "fields", "ttls", "update", override["fieldPath"],
            f"--collection-group={override['collectionGroup']}", "--enable-ttl",
            *where, "--async",
        ]
        for override in document["fieldOverrides"]
        if override.get("ttl")
    ]  # fmt: skip
    return [shlex.join(command) for command in commands]
