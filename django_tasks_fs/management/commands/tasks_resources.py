"""``manage.py tasks_resources plan|apply``: the declared queue and job settings
(``queue_settings`` / ``job_settings`` in TASKS OPTIONS) against the live resources."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...backends.google_cloud import GoogleCloudBackend
from ...gcp.drift import show
from ...gcp.errors import GoogleCloudError
from ...gcp.reconcile import Action, Step, Wanted, apply, plan, summary
from ...registry import select_backends
from ..errors import firestore_errors

#: Seconds one Google Cloud call may take, retries included.
DEFAULT_TIMEOUT = 10.0
#: ``plan --exit-code``: something would change (as ``terraform plan -detailed-exitcode``).
DRIFT = 2


class Command(BaseCommand):
    help = (
        "Compare the Cloud Tasks queues and Cloud Run jobs of the Google Cloud backends "
        "with the settings TASKS declares (plan), or make them match (apply)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["plan", "apply"])
        parser.add_argument(
            "--backend",
            action="append",
            dest="backends",
            default=[],
            metavar="ALIAS",
            help="Only this backend (repeatable; default: every Google Cloud backend).",
        )
        parser.add_argument(
            "--exit-code",
            action="store_true",
            help=f"plan: exit {DRIFT} when something would change (0 when nothing would).",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            help=f"Seconds each Google Cloud call may take (default {DEFAULT_TIMEOUT:g}).",
        )

    @firestore_errors()
    def handle(self, *args: Any, **options: Any) -> None:
        backends = select_backends(options["backends"], GoogleCloudBackend)
        if not backends:
            self.stdout.write(
                "TASKS has no CloudTasksBackend or CloudRunJobsBackend: nothing to do."
            )
            return
        timeout = options["timeout"]
        try:
            steps = plan(collect(backends), timeout=timeout)
        except GoogleCloudError as exc:
            raise CommandError(str(exc)) from None
        for step in steps:
            for line in step.lines():
                self.stdout.write(line)
        pending = [s for s in steps if s.action != Action.NONE]
        if not pending:
            self.stdout.write("No changes: the live queues and jobs match TASKS.")
            return
        if options["action"] == "plan":
            self.stdout.write(f"Plan: {summary(steps)}")
            if options["exit_code"]:
                raise CommandError(
                    f"{len(pending)} resource(s) differ from TASKS.", returncode=DRIFT
                )
            return
        self._apply(pending, backends, timeout=timeout)

    def _apply(
        self, pending: list[Step], backends: list[GoogleCloudBackend], *, timeout: float
    ) -> None:
        missing = []
        for step in pending:
            if step.action == Action.MISSING:
                missing.append(step)
                continue
            try:
                apply(step, timeout=timeout)
            except GoogleCloudError as exc:
                raise CommandError(str(exc)) from None
            for backend in backends:
                if backend.alias in step.wanted.aliases:
                    backend.forget_max_attempts(step.resource.name)
            done = "created" if step.action == Action.CREATE else "updated"
            self.stdout.write(f"{done} {step.resource.kind} {step.resource.path}")
        if missing:
            names = "\n".join(f"- {s.resource.path}: {s.resource.fix}" for s in missing)
            raise CommandError(f"Not created (a Cloud Run job needs its image):\n{names}")
        self.stdout.write("Apply complete: the live queues and jobs match TASKS.")


def collect(backends: list[GoogleCloudBackend]) -> list[Wanted]:
    """Each resource once, with the settings its backends declare; CommandError if a
    backend is misconfigured or two backends declare one field of a resource differently."""
    found: dict[str, Wanted] = {}
    for backend in backends:
        if backend.problems:
            details = "\n".join(f"- {p.message} {p.hint}" for p in backend.problems)
            raise CommandError(
                f"TASKS[{backend.alias!r}] is misconfigured (see 'manage.py check'):\n{details}"
            )
        for resource, settings in backend.declared_resources():
            known = found.get(resource.path)
            if known is None:
                found[resource.path] = Wanted(
                    resource=resource, settings=settings, aliases=(backend.alias,)
                )
                continue
            for path, value in settings.items():
                if path in known.settings and known.settings[path] != value:
                    raise CommandError(
                        f"The {resource.kind} {resource.path} is declared differently by "
                        f"TASKS[{known.aliases[-1]!r}] and TASKS[{backend.alias!r}] ({path}: "
                        f"{show(known.settings[path])} and {show(value)}): declare it the "
                        "same in both, or in one of them only."
                    )
            found[resource.path] = Wanted(
                resource=resource,
                settings={**known.settings, **settings},
                aliases=(*known.aliases, backend.alias),
            )
    return list(found.values())
