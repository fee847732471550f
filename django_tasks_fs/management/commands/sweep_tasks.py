"""``manage.py sweep_tasks``: dispatch executions left PENDING by a crash or an API error."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.tasks import task_backends

from ...backends.google_cloud import GoogleCloudBackend
from ...dispatching import DEFAULT_GRACE, sweep


class Command(BaseCommand):
    help = "Dispatch executions whose dispatch to Google Cloud never happened."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--backend", action="append", dest="backends", default=[], metavar="ALIAS"
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=DEFAULT_GRACE.total_seconds(),
            help="Seconds an execution must have been PENDING (default 60).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        backends = [b for b in task_backends.all() if isinstance(b, GoogleCloudBackend)]
        if options["backends"]:
            wanted = set(options["backends"])
            unknown = wanted - {b.alias for b in backends}
            if unknown:
                raise CommandError(f"Not Google Cloud backends: {', '.join(sorted(unknown))}.")
            backends = [b for b in backends if b.alias in wanted]
        for backend in backends:
            count = sweep(backend, grace=timedelta(seconds=options["grace"]))
            self.stdout.write(f"{backend.alias}: dispatched {count}")
