"""``manage.py tasks_check``: exit non-zero when a backlog is too large or waits too long.

For cron-style monitoring (a Cloud Scheduler job, a Kubernetes CronJob, Nagios): one
line per backend (and queue), ``OK`` or ``FAIL``; exit status 0 when every threshold
holds, 1 when one is exceeded, 3 when Firestore cannot be reached.

Bounded cost, whatever the size of the collection: per backend and queue, one count
aggregation capped at ``--max-backlog`` + 1 (Firestore bills 1 read per 1,000 index
entries counted, so at most ``max_backlog / 1000 + 1`` reads) and one ready query of
limit 1 (1 read): the execution the workers take next, by the worker's own index;
plus, in a new process, 1 read of Firestore's time (the age is in server time).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.tasks import TaskResultStatus

from ...backends.base import FirestoreBackend
from ...registry import select_backends
from ...store.executions.queries import ExecutionFilter
from ..errors import firestore_errors

EXIT_OK = 0
EXIT_EXCEEDED = 1
EXIT_UNAVAILABLE = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Backlog:
    """What one backend (and queue) has waiting."""

    ready: int | None  #: READY executions, counted up to the cap (None: not counted)
    capped: bool  #: there are more than ``ready``
    waiting: float | None  #: seconds the next execution in line has been due (None: none)


def measure(backend: FirestoreBackend, queue: str | None, *, count_limit: int | None) -> Backlog:
    """Count READY executions (up to ``count_limit``) and age the one due first."""
    store = backend.executions
    ready = capped = None
    if count_limit is not None:
        filters = ExecutionFilter(
            status=TaskResultStatus.READY, backend=backend.alias, queue_name=queue
        )
        ready = store.count(filters, limit=count_limit + 1)
        capped = ready > count_limit
        ready = min(ready, count_limit + 1)
    head = store.ready(backend=backend.alias, queues=[queue] if queue else None, limit=1)
    waiting = None
    if head:
        waiting = max(0.0, (store.clock.now() - head[0].run_after).total_seconds())
    return Backlog(ready=ready, capped=bool(capped), waiting=waiting)


class Command(BaseCommand):
    help = (
        "Check backlog thresholds: exit 1 when more than --max-backlog executions are "
        "READY or the next one in line has waited more than --max-age seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-backlog",
            type=int,
            default=None,
            metavar="N",
            help="Most READY executions allowed per backend (and queue).",
        )
        parser.add_argument(
            "--max-age",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Longest the next execution in line may have been due.",
        )
        parser.add_argument(
            "--backend", action="append", dest="backends", default=[], metavar="ALIAS"
        )
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            default=[],
            metavar="NAME",
            help="Check this queue on its own (repeatable; default: each backend as a whole).",
        )

    @firestore_errors(unavailable=EXIT_UNAVAILABLE)
    def handle(self, *args: Any, **options: Any) -> None:
        max_backlog, max_age = options["max_backlog"], options["max_age"]
        if max_backlog is not None and max_backlog < 0:
            raise CommandError("--max-backlog must be >= 0.")
        if max_age is not None and max_age < 0:
            raise CommandError("--max-age must be >= 0 seconds.")
        exceeded = False
        for backend in select_backends(options["backends"]):
            for queue in options["queues"] or [None]:
                found = measure(backend, queue, count_limit=max_backlog)
                problems = []
                if max_backlog is not None and found.capped:
                    problems.append(f"more than {max_backlog} READY")
                if max_age is not None and found.waiting is not None and found.waiting > max_age:
                    problems.append(f"next in line due {found.waiting:.0f}s ago (> {max_age:g}s)")
                exceeded = exceeded or bool(problems)
                self.stdout.write(self._line(backend.alias, queue, found, problems))
        if exceeded:
            sys.exit(EXIT_EXCEEDED)

    def _line(self, alias: str, queue: str | None, found: Backlog, problems: list[str]) -> str:
        where = f"backend={alias} queue={queue or '*'}"
        ready = "" if found.ready is None else f" ready={found.ready}{'+' if found.capped else ''}"
        waiting = "none due" if found.waiting is None else f"{found.waiting:.1f}s"
        state = f"FAIL {where}: {'; '.join(problems)}" if problems else f"OK {where}"
        return f"tasks_check: {state}{ready} waiting={waiting}"
