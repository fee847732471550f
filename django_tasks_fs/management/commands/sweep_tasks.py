"""``manage.py sweep_tasks``: dispatch executions left PENDING, re-dispatch abandoned ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...backends.google_cloud import GoogleCloudBackend
from ...dispatching import DEFAULT_GRACE, DEFAULT_STALE, sweep
from ...registry import select_backends
from ..errors import firestore_errors


class Command(BaseCommand):
    help = (
        "Dispatch executions whose dispatch to Google Cloud never happened, and hand "
        "abandoned ones (dead worker, deliveries run out) to Google Cloud again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--backend", action="append", dest="backends", default=[], metavar="ALIAS"
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=DEFAULT_GRACE.total_seconds(),
            help="Seconds an execution must have been PENDING, or its lease expired (default 60).",
        )
        parser.add_argument(
            "--stale",
            type=float,
            default=DEFAULT_STALE.total_seconds(),
            help="Seconds after which a dispatched, unfinished execution is sent again (default 900).",
        )

    @firestore_errors()
    def handle(self, *args: Any, **options: Any) -> None:
        for backend in select_backends(options["backends"], GoogleCloudBackend):
            report = sweep(
                backend,
                grace=timedelta(seconds=options["grace"]),
                stale=timedelta(seconds=options["stale"]),
            )
            self.stdout.write(
                f"{backend.alias}: dispatched {report.dispatched}, "
                f"re-dispatched {report.redispatched}"
            )
