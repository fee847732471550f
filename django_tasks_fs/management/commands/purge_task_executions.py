"""``manage.py purge_task_executions``: delete old finished executions (no TTL policy needed)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.tasks import TaskResultStatus

from ...registry import select_backends
from ..errors import firestore_errors

FINISHED = (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)


class Command(BaseCommand):
    help = "Delete finished task executions older than --older-than days, in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=14.0,
            metavar="DAYS",
            help="Age in days of the finish time (default 14).",
        )
        parser.add_argument(
            "--status",
            action="append",
            dest="statuses",
            default=[],
            choices=[str(s) for s in FINISHED],
            help="Only this status (repeatable).",
        )
        parser.add_argument(
            "--backend", action="append", dest="backends", default=[], metavar="ALIAS"
        )
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--dry-run", action="store_true", help="Count, delete nothing.")

    @firestore_errors()
    def handle(self, *args: Any, **options: Any) -> None:
        if options["older_than"] < 0:
            raise CommandError("--older-than must be >= 0 days.")
        if not 1 <= options["batch_size"] <= 500:
            raise CommandError("--batch-size must be between 1 and 500.")
        backends = select_backends(options["backends"])
        statuses = [TaskResultStatus(s) for s in options["statuses"]] or list(FINISHED)
        total = 0
        for backend in backends:
            store = backend.executions
            cutoff = store.clock.now() - timedelta(days=options["older_than"])
            for status in statuses:
                if options["dry_run"]:
                    count = store.count_finished_before(
                        backend=backend.alias, status=status, before=cutoff
                    )
                    total += count
                    self.stdout.write(f"{backend.alias} {status}: would delete {count}")
                    continue
                while ids := store.finished_before(
                    backend=backend.alias, status=status, before=cutoff, limit=options["batch_size"]
                ):
                    total += store.delete_many(ids)
                    self.stdout.write(
                        f"{backend.alias} {status}: deleted {len(ids)} (total {total})"
                    )
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(f"{verb} {total} execution(s).")
