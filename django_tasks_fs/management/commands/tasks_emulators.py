"""``manage.py tasks_emulators``: the Firestore and Google Cloud emulators for this project,
with the Cloud Tasks queues and Cloud Run jobs of ``TASKS`` created in them."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...emulators import cli
from ...emulators.errors import EmulatorError
from ...emulators.local import LocalEmulators
from ...emulators.provisioning import provision
from ...registry import firestore_backends


class Command(BaseCommand):
    help = (
        "Run the official Firestore emulator and the local Google Cloud emulator (Cloud "
        "Tasks, Cloud Scheduler, Cloud Run Jobs), create the queues and jobs TASKS names, "
        "print the settings to use, and stop everything on Ctrl-C or SIGTERM."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        settings = cli.Settings.from_options(options)
        try:
            cli.run(settings, self._say, provision=self._provision(settings))
        except EmulatorError as exc:
            raise CommandError(str(exc)) from None

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()  # whoever reads a pipe sees "running" at once

    def _provision(self, settings: cli.Settings) -> cli.Provision:
        def create_what_tasks_names(emulators: LocalEmulators) -> list[str]:
            return provision(emulators, firestore_backends(), max_attempts=settings.max_attempts)

        return create_what_tasks_names
