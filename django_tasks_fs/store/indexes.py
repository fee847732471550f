"""The composite indexes every store query needs, as data, and their Firestore JSON.

``manage.py firestore_indexes`` prints the file the Firebase CLI deploys (or, with
``--gcloud``, the equivalent ``gcloud firestore`` commands); the test suite records every query the store sends and fails if
one is not covered here (the emulator does not enforce indexes, so nothing else would).
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
    for size in range(1, len(LISTING_FILTERS) + 1):
        for fields in itertools.combinations(LISTING_FILTERS, size):
            yield QueryShape("executions", frozenset(fields), (("enqueued_at", DESC),))


#: Every query shape the store runs that needs a composite index.
QUERY_SHAPES: tuple[QueryShape, ...] = tuple(s for s in _shapes() if s.needs_composite_index())


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
    """The ``firestore.indexes.json`` content for a collection prefix (and TTL on expires_at)."""
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
    ttl = [
        {
            "collectionGroup": f"{settings.collection_prefix}{name}",
            "fieldPath": "expires_at",
            "ttl": True,
            "indexes": [],
        }
        for name in ("executions", "schedule_slots")
    ]
    return {"indexes": indexes, "fieldOverrides": ttl}


def gcloud_commands(
    document: Mapping[str, Any], *, database: str, project: str | None = None
) -> list[str]:
    """The ``gcloud firestore`` commands that create ``document``'s indexes and TTL policies.

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
            "gcloud", "firestore", "fields", "ttls", "update", override["fieldPath"],
            f"--collection-group={override['collectionGroup']}", "--enable-ttl",
            *where, "--async",
        ]
        for override in document["fieldOverrides"]
        if override.get("ttl")
    ]  # fmt: skip
    return [shlex.join(command) for command in commands]
