"""One page of the executions list, as its query string asks.

Django's ``ChangeList`` for a queryset, redone over Firestore: the filters come from
the query string (``backend``, ``status``, ``queue``, ``task``, ``q``), pages follow a
cursor (``cursor``, plus a ``trail`` of earlier cursors for the "previous" link), and
the per-status counts and the page are read in parallel.

What a page costs does not grow with the collection: one query for the page (plus one
get of the cursor's document after the first page), and one ``count()`` per status
that stops at ``count_limit`` (shown as "1,000+"), so billed 1 read each. An
uncapped count would be billed 1 read per 1,000 executions it matches. A search by
execution id is one get: its counts are those of what it found.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest
from django.tasks import TaskResultStatus

from ..backends.base import FirestoreBackend
from ..exceptions import ExecutionNotFound
from ..store import ExecutionFilter, TaskExecution
from ..store.documents import is_document_id
from .common import duration, local, status_badge

#: An execution id as the backends create them; a search for one reads that document.
EXECUTION_ID_RE = re.compile(r"^[0-9a-f]{32}$")
STATUSES = [
    TaskResultStatus.READY,
    TaskResultStatus.RUNNING,
    TaskResultStatus.SUCCESSFUL,
    TaskResultStatus.FAILED,
]
#: Earlier pages remembered in the URL for the "previous" link.
MAX_TRAIL = 100
GONE = "That page no longer exists; showing the first page."

#: (label, URL, selected) of one filter choice.
Choice = tuple[str, str, bool]


class ExecutionChangeList:
    """The filters, counts, page and links of one request to the executions list.

    Unknown values in the query string are reported with ``messages`` and replaced by
    the defaults, as Django's ChangeList does with an invalid lookup.
    """

    def __init__(
        self,
        request: HttpRequest,
        backends: dict[str, FirestoreBackend],
        *,
        per_page: int,
        count_limit: int | None,
        detail_url: Callable[[str, str], str],
    ) -> None:
        self.request = request
        self.params = request.GET
        self.backends = backends
        self.per_page = per_page
        self.count_limit = count_limit  #: counts stop here (None: exact, cost grows)
        self.detail_url = detail_url  #: (backend alias, execution id) -> its admin page
        self.alias = self._alias()
        self.backend = backends[self.alias]
        self.status = self._status()
        self.query = self.params.get("q", "").strip()
        self.by_id = bool(EXECUTION_ID_RE.match(self.query))
        self.filters = ExecutionFilter(
            status=TaskResultStatus(self.status) if self.status else None,
            backend=self.alias,
            queue_name=self.params.get("queue") or None,
            task_path=self.params.get("task") or None,
        )
        if self.query and not self.by_id:
            self.filters = replace(self.filters, task_path=self.query)
        self.cursor = self._cursor()
        self.trail = [c for c in self.params.get("trail", "").split(",") if c][-MAX_TRAIL:]
        self.items: list[TaskExecution] = []
        self.next_cursor: str | None = None
        self.status_counts: dict[TaskResultStatus, int] = {}
        self._read()

    # -- the query string ------------------------------------------------------------------

    def _alias(self) -> str:
        first = next(iter(self.backends))
        alias = self.params.get("backend") or first
        if alias not in self.backends:
            messages.error(self.request, f"Unknown backend {alias!r}; showing {first!r}.")
            return first
        return alias

    def _status(self) -> str | None:
        status = self.params.get("status") or None
        if status is not None and status not in TaskResultStatus.values:
            messages.error(self.request, f"Unknown status {status!r}; showing all statuses.")
            return None
        return status

    def _cursor(self) -> str | None:
        cursor = self.params.get("cursor") or None
        if cursor is not None and not is_document_id(cursor):
            messages.error(self.request, GONE)
            return None
        return cursor

    # -- Firestore -------------------------------------------------------------------------

    def _read(self) -> None:
        """Count each status and read the page; a search by id reads that one execution
        and counts what it found (1 read, no count)."""
        store = self.backend.executions
        if self.by_id:
            try:
                self.items = [store.get(self.query)]
            except ExecutionNotFound:
                self.items = []
            self.status_counts = {s: sum(e.status == s for e in self.items) for s in STATUSES}
            return
        with ThreadPoolExecutor(max_workers=len(STATUSES) + 1) as pool:
            counts = {
                s: pool.submit(store.count, replace(self.filters, status=s), limit=self.count_limit)
                for s in STATUSES
            }
            try:
                page = store.page(self.filters, cursor=self.cursor, limit=self.per_page)
            except ExecutionNotFound:  # the cursor's document was deleted
                messages.error(self.request, GONE)
                page = store.page(self.filters, limit=self.per_page)
                self.cursor, self.trail = None, []
            self.items, self.next_cursor = page.items, page.next_cursor
            self.status_counts = {s: f.result() for s, f in counts.items()}

    # -- links -----------------------------------------------------------------------------

    def link(self, **changes: str | None) -> str:
        """The query string of this list with ``changes`` (None removes a parameter)."""
        values = {
            "backend": self.alias,
            "status": self.status,
            "queue": self.params.get("queue"),
            "task": self.params.get("task"),
            "q": self.query,
        }
        values.update(changes)
        return "?" + urlencode({k: v for k, v in values.items() if v})

    def next_url(self) -> str | None:
        if not self.next_cursor:
            return None
        trail = ",".join([*self.trail, self.cursor or "-"])
        return f"{self.link()}&" + urlencode({"cursor": self.next_cursor, "trail": trail})

    def previous_url(self) -> str | None:
        if not self.cursor:
            return None
        previous = self.trail[-1] if self.trail and self.trail[-1] != "-" else ""
        extra = {"cursor": previous, "trail": ",".join(self.trail[:-1])}
        return f"{self.link()}&" + urlencode({k: v for k, v in extra.items() if v})

    # -- what the template shows -----------------------------------------------------------

    def filter_groups(self) -> list[tuple[str, list[Choice], bool]]:
        """(parameter, choices, has an "All" choice) for the filter sidebar."""
        queue, task = self.params.get("queue"), self.params.get("task")
        queues = sorted(set(self.backend.queues) | {e.queue_name for e in self.items})
        tasks = sorted({e.task_path for e in self.items} | ({task} if task else set()))
        link = self.link
        return [
            (
                "backend",
                [(a, link(backend=a, queue=None), a == self.alias) for a in self.backends],
                False,
            ),
            (
                "status",
                [("All", link(status=None), self.status is None)]
                + [
                    (f"{s} ({self.shown_count(s)})", link(status=s), s == self.status)
                    for s in STATUSES
                ],
                True,
            ),
            (
                "queue",
                [("All", link(queue=None), not queue)]
                + [(q, link(queue=q), q == queue) for q in queues],
                True,
            ),
            (
                "task",
                [("All", link(task=None), not task)]
                + [(t, link(task=t), t == task) for t in tasks],
                True,
            ),
        ]

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "execution": e,
                "url": self.detail_url(self.alias, e.id),
                "status": status_badge(e.status),
                "enqueued_at": local(e.enqueued_at),
                "started_at": local(e.started_at),
                "finished_at": local(e.finished_at),
                "duration": duration(e.started_at, e.finished_at),
            }
            for e in self.items
        ]

    def capped(self, status: TaskResultStatus) -> bool:
        """Whether the count of ``status`` stopped at ``count_limit`` (there may be more)."""
        return self.count_limit is not None and self.status_counts[status] >= self.count_limit

    def shown_count(self, status: TaskResultStatus | None = None) -> str:
        """The count of ``status`` (None: all) as shown: '1,234', or '1,000+' when
        capped (a total that adds a capped count is '2,345+': at least that many)."""
        chosen = [status] if status is not None else STATUSES
        count = sum(self.status_counts[s] for s in chosen)
        return f"{count:,}+" if any(self.capped(s) for s in chosen) else f"{count:,}"

    def context(self) -> dict[str, Any]:
        """The list's part of the template context."""
        shown_total = self.shown_count(self.filters.status)
        return {
            "rows": self.rows(),
            "backend": self.backend,
            "filter_groups": self.filter_groups(),
            "status_counts": [(s, self.shown_count(s)) for s in STATUSES],
            "total": self.shown_count(),
            "shown_total": shown_total,
            "shown_total_label": "task execution" if shown_total == "1" else "task executions",
            "count_note": (
                f"Counts stop at {self.count_limit:,}: a Firestore count is billed "
                f"1 read per 1,000 executions it counts."
                if any(self.capped(s) for s in STATUSES)
                else ""
            ),
            "query": self.query,
            "page_number": len(self.trail) + 1 if self.cursor else 1,
            "next_url": self.next_url(),
            "previous_url": self.previous_url(),
            "first_url": self.link() if self.cursor else None,
        }
