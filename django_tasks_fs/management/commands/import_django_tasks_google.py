"""``manage.py import_django_tasks_google``: copy django-tasks-google's rows into Firestore."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from ...backends.base import FirestoreBackend
from ...migration import EXECUTIONS_TABLE, SCHEDULES_TABLE, import_rows
from ...registry import firestore_backends
from ..errors import firestore_errors


class Command(BaseCommand):
    help = (
        "Copy django-tasks-google's TaskExecution and ScheduledTask rows (from a SQL "
        "database configured in DATABASES) into Firestore. Idempotent; ids are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database", default="default", help="DATABASES alias holding the old tables."
        )
        parser.add_argument(
            "--map",
            action="append",
            dest="mapping",
            default=[],
            metavar="OLD=NEW",
            help="Old backend alias -> django_tasks_fs backend alias (repeatable; '*=NEW' for the rest). "
            "Default: the same alias.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Check and count, write nothing."
        )

    @firestore_errors()
    def handle(self, *args: Any, **options: Any) -> None:
        ours = firestore_backends()
        if not ours:
            raise CommandError("No django_tasks_fs backend is configured in TASKS.")
        mapping: dict[str, FirestoreBackend] = dict(ours)
        for item in options["mapping"]:
            old, _, new = item.partition("=")
            if not old or new not in ours:
                raise CommandError(
                    f"Invalid --map {item!r}: use OLD=NEW with NEW one of {', '.join(ours)}."
                )
            mapping[old] = ours[new]
        database = options["database"]
        if database not in connections:
            raise CommandError(f"Unknown database alias {database!r}.")
        tables = set(connections[database].introspection.table_names())
        missing = {EXECUTIONS_TABLE, SCHEDULES_TABLE} - tables
        if missing:
            raise CommandError(
                f"Tables not found in database {database!r}: {', '.join(sorted(missing))}."
            )
        report = import_rows(mapping, database=database, dry_run=options["dry_run"])
        verb = "Would import" if options["dry_run"] else "Imported"
        self.stdout.write(
            f"{verb} {report.imported} execution(s), {report.schedules} schedule(s); "
            f"{report.skipped} already present; {len(report.failed)} failed."
        )
        for failure in report.failed:
            self.stderr.write(f"  failed: {failure}")
        if report.failed:
            raise CommandError(f"{len(report.failed)} row(s) could not be imported (see above).")
