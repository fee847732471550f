"""Operation accounting: what this process asked of Firestore, counted as Firestore bills it.

Serverless users pay per document read and written, so the library can count every
document operation it sends (every one goes through ``DocumentOps``). Off by default;
two ways to turn it on:

* ``DJANGO_TASKS_FS_OP_COUNTS=DIR`` in the environment: every process that creates a
  store counts, and writes its figures to ``DIR/ops-<pid>-<random>.json`` at exit
  (child processes inherit the variable, so a worker and its children all report;
  ``collect(DIR)`` sums the files). A process killed by a signal, or ended with
  ``os._exit``, writes nothing.
* ``enable_counting()`` in-process (tests, benchmarks): stores created afterwards count
  into ``process_counts()``.

What is counted, per process (``OpCounts``):

* ``writes``: documents written; each create, update or delete of a successful request
  or commit counts one (Firestore bills no write of a refused request).
* ``reads``: snapshots returned by get, get_many and query (a missing document's
  included; ``server_time`` is one such get), plus a count() aggregation billed as
  Firestore bills it: 1 read per 1,000 index entries counted or part of them.
* ``billed_reads``: ``reads`` plus the 1 read Firestore bills for a query that returns
  nothing.
* ``queries``: queries and count() aggregations sent.
* ``listens``: listeners opened (each a Firestore Listen stream). What they deliver
  is billed as Firestore bills a listener: each document of the first result and each
  document that later enters, changes in or leaves the result is one read (a first
  result with nothing in it: ``billed_reads`` 1, as an empty query). An idle listener
  costs nothing.
* ``commits``: write requests sent (create, update, delete or a batch), refused or not.
* ``conflicts``: PreconditionFailed raised (a compare-and-set lost a race).
* ``rpcs``: requests sent. One per operation: retries inside the Firestore client
  (an unreachable server) are not seen here.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import secrets
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from .protocol import (
    DocumentOps,
    Listening,
    OnError,
    OnUpdate,
    PreconditionFailed,
    Query,
    QueryUpdate,
    Snapshot,
    UniqueCreate,
    Write,
)

#: Directory where each counting process writes its figures at exit.
OP_COUNTS_ENV = "DJANGO_TASKS_FS_OP_COUNTS"
#: A count() aggregation is billed 1 document read per this many index entries (or part).
COUNT_ENTRIES_PER_READ = 1000


@dataclass(slots=True)
class OpCounts:
    """Document operations of one process (or a sum of several); see the module docstring."""

    writes: int = 0
    reads: int = 0
    billed_reads: int = 0
    queries: int = 0
    listens: int = 0
    commits: int = 0
    conflicts: int = 0
    rpcs: int = 0
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def add(self, **amounts: int) -> None:
        """Add ``amounts`` (field name -> number) atomically."""
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_lock"}

    def reset(self) -> None:
        with self._lock:
            for f in fields(self):
                if f.name != "_lock":
                    setattr(self, f.name, 0)

    def __add__(self, other: OpCounts) -> OpCounts:
        mine, theirs = self.as_dict(), other.as_dict()
        return OpCounts(**{k: v + theirs[k] for k, v in mine.items()})


def count_reads(entries: int) -> int:
    """Document reads Firestore bills for a count() over ``entries`` index entries."""
    return max(1, math.ceil(entries / COUNT_ENTRIES_PER_READ))


class CountingOps:
    """``DocumentOps`` that counts every operation into ``counts``, then lets ``inner`` do it."""

    def __init__(self, inner: DocumentOps, counts: OpCounts) -> None:
        self.inner = inner  #: the operations counted
        self.counts = counts

    @contextmanager
    def _write(self, documents: int) -> Iterator[None]:
        """One write request of ``documents`` documents: counted as written only if it is."""
        try:
            yield
        except PreconditionFailed:
            self.counts.add(rpcs=1, commits=1, conflicts=1)
            raise
        except BaseException:
            self.counts.add(rpcs=1, commits=1)
            raise
        self.counts.add(rpcs=1, commits=1, writes=documents)

    def _read(self, snapshots: Sequence[Snapshot], *, query: bool = False) -> None:
        empty_query = 1 if query and not snapshots else 0
        self.counts.add(
            rpcs=1,
            queries=1 if query else 0,
            reads=len(snapshots),
            billed_reads=len(snapshots) + empty_query,
        )

    # -- reads -------------------------------------------------------------------------

    def get(self, collection: str, id: str, *, timeout: float | None = None) -> Snapshot:
        snapshot = self.inner.get(collection, id, timeout=timeout)
        self._read([snapshot])
        return snapshot

    def get_many(self, collection: str, ids: Sequence[str]) -> list[Snapshot]:
        snapshots = self.inner.get_many(collection, ids)
        self._read(snapshots)
        return snapshots

    def query(self, query: Query) -> list[Snapshot]:
        snapshots = self.inner.query(query)
        self._read(snapshots, query=True)
        return snapshots

    def count(self, query: Query) -> int:
        found = self.inner.count(query)
        reads = count_reads(found)
        self.counts.add(rpcs=1, queries=1, reads=reads, billed_reads=reads)
        return found

    def server_time(self, collection: str) -> datetime:
        # Firestore's time is the read time of a get of a missing document (store.calls).
        time = self.inner.server_time(collection)
        self.counts.add(rpcs=1, reads=1, billed_reads=1)
        return time

    def listen(self, query: Query, on_update: OnUpdate, on_error: OnError) -> Listening:
        def counted(update: QueryUpdate) -> None:
            delivered = len(update.changes)
            empty = 1 if update.initial and not update.documents else 0
            self.counts.add(reads=delivered, billed_reads=delivered + empty)
            on_update(update)

        listening = self.inner.listen(query, counted, on_error)
        self.counts.add(rpcs=1, listens=1)
        return listening

    # -- writes ------------------------------------------------------------------------

    def create(
        self,
        collection: str,
        id: str,
        data: dict[str, Any],
        *,
        timeout: float | None = None,
        unique: UniqueCreate | None = None,
    ) -> datetime | None:
        with self._write(1):
            return self.inner.create(collection, id, data, timeout=timeout, unique=unique)

    def create_many(
        self,
        collection: str,
        documents: Sequence[tuple[str, dict[str, Any]]],
        *,
        timeout: float | None = None,
        unique: UniqueCreate | None = None,
    ) -> datetime | None:
        with self._write(len(documents)):
            return self.inner.create_many(collection, documents, timeout=timeout, unique=unique)

    def update(
        self,
        collection: str,
        id: str,
        changes: dict[str, Any],
        *,
        last_update_time: datetime | None = None,
        timeout: float | None = None,
    ) -> datetime:
        with self._write(1):
            return self.inner.update(
                collection, id, changes, last_update_time=last_update_time, timeout=timeout
            )

    def delete(self, collection: str, id: str, *, last_update_time: datetime | None = None) -> None:
        with self._write(1):
            self.inner.delete(collection, id, last_update_time=last_update_time)

    def commit(self, writes: Sequence[Write]) -> datetime:
        with self._write(len(writes)):
            return self.inner.commit(writes)


# -- this process ----------------------------------------------------------------------

_process_counts = OpCounts()
_enabled = False
_report_lock = threading.Lock()
_report_registered = False


def process_counts() -> OpCounts:
    """The counts of every counting store of this process."""
    return _process_counts


def enable_counting() -> OpCounts:
    """Count the operations of every store created from now on; return the counts."""
    global _enabled
    _enabled = True
    return _process_counts


def disable_counting() -> None:
    """Stop wrapping new stores (unless the environment asks for counting)."""
    global _enabled
    _enabled = False


def counting_enabled() -> bool:
    return _enabled or bool(os.environ.get(OP_COUNTS_ENV))


def counted(ops: DocumentOps) -> DocumentOps:
    """``ops``, counted into ``process_counts()`` when counting is on."""
    if not counting_enabled():
        return ops
    if os.environ.get(OP_COUNTS_ENV):
        _register_report()
    return CountingOps(ops, _process_counts)


def _register_report() -> None:
    global _report_registered
    with _report_lock:
        if not _report_registered:
            atexit.register(write_report)
            # A forked child inherits the exit hook; it reports its own operations only.
            os.register_at_fork(after_in_child=_process_counts.reset)
            _report_registered = True


def write_report(directory: str | os.PathLike[str] | None = None) -> Path | None:
    """Write this process's counts to a new file in ``directory`` (default: the one
    named by the environment); return its path (None: nowhere to write)."""
    target = directory if directory is not None else os.environ.get(OP_COUNTS_ENV)
    if not target:
        return None
    folder = Path(target)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ops-{os.getpid()}-{secrets.token_hex(4)}.json"
    record = {"pid": os.getpid(), "argv": sys.argv, "counts": _process_counts.as_dict()}
    path.write_text(json.dumps(record))
    return path


def read_reports(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every report written to ``directory`` (pid, argv, counts)."""
    reports: list[dict[str, Any]] = [
        json.loads(p.read_text()) for p in sorted(Path(directory).glob("ops-*.json"))
    ]
    return reports


def collect(directory: str | os.PathLike[str]) -> OpCounts:
    """The sum of every report written to ``directory``."""
    total = OpCounts()
    for report in read_reports(directory):
        total = total + OpCounts(**report["counts"])
    return total


__all__ = [
    "COUNT_ENTRIES_PER_READ",
    "OP_COUNTS_ENV",
    "CountingOps",
    "OpCounts",
    "collect",
    "count_reads",
    "counted",
    "counting_enabled",
    "disable_counting",
    "enable_counting",
    "process_counts",
    "read_reports",
    "write_report",
]
