"""``manage.py firestore_indexes``: print firestore.indexes.json (composite indexes,
exemptions, TTL) for the configured backends, or the equivalent gcloud commands."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...backends.base import FirestoreBackend
from ...exceptions import UnknownBackend
from ...registry import select_backends
from ...store.indexes import gcloud_commands, index_document


class Command(BaseCommand):
    help = (
        "Print the Firestore composite indexes, single-field index exemptions and TTL "
        "policies the library needs, for "
        "`firebase deploy --only firestore:indexes`; with --gcloud, the gcloud commands that "
        "create them in each backend's database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--backend", action="append", dest="backends", default=[], metavar="ALIAS"
        )
        parser.add_argument(
            "--gcloud",
            action="store_true",
            help="Print `gcloud firestore` commands (with each backend's --database and "
            "--project) instead of firestore.indexes.json.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backends = select_backends(options["backends"])
        except UnknownBackend as exc:
            raise CommandError(str(exc)) from None
        if options["gcloud"]:
            self.stdout.write("\n".join(self._commands(backends)))
            return
        merged: dict[str, list[Any]] = {"indexes": [], "fieldOverrides": []}
        seen: set[str] = set()
        for backend in backends:
            document = index_document(backend.config.store_settings())
            for key in merged:
                for entry in document[key]:
                    marker = json.dumps(entry, sort_keys=True)
                    if marker not in seen:
                        seen.add(marker)
                        merged[key].append(entry)
        self.stdout.write(json.dumps(merged, indent=2))

    def _commands(self, backends: list[FirestoreBackend]) -> list[str]:
        """Each backend's commands, for its own database; a repeat printed once."""
        commands: dict[str, None] = {}
        for backend in backends:
            settings = backend.config.store_settings()
            for command in gcloud_commands(
                index_document(settings), database=settings.database, project=settings.project
            ):
                commands.setdefault(command)
        return list(commands)
