"""``manage.py execute_task <id>``: run one attempt (the Cloud Run Jobs entrypoint).

Exit status: 0 when the execution is SUCCESSFUL; 1 when it is FAILED (so a failed task
looks red on Cloud Run); 75 (EX_TEMPFAIL) when another attempt should come (retryable
failure, a live lease elsewhere, handed back, Firestore unreachable within
``firestore_timeout_seconds``): Cloud Run retries any non-zero exit; 2 for an unknown
execution id.

``execute_task --fan-out``: a task of a fan-out's job execution (``enqueue_many()``,
see backends/fan_out.py) runs the member at its ``CLOUD_RUN_TASK_INDEX``, as above;
one it may not claim because it finished already (cancelled before it started, run by
an earlier resend) is skipped with exit status 0, so Cloud Run does not retry it.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.tasks import TaskResultStatus

from ...backends.base import FirestoreBackend
from ...backends.fan_out import FanOutError, member_of
from ...exceptions import ExecutionNotFound
from ...execution.attempt import Attempt
from ...execution.outcome import Outcome
from ...registry import get_backend, locate_execution
from ...store import TaskExecution
from ...store.errors import ClaimReason
from ...tracing import env_carrier
from ...worker.chunks import worker_name
from ...worker.logs import configure_logging
from ...worker.startup import report_started
from ..errors import firestore_errors

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_RETRY = 75
EXIT_UNKNOWN = 2
#: Why a fan-out's task skips its member: finished before it, or cancelled before it ran.
SKIPPED = frozenset({ClaimReason.FINISHED, ClaimReason.CANCELLED})


class Command(BaseCommand):
    help = "Run one attempt of a task execution (used as the Cloud Run Jobs command)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_id", nargs="?", default="")
        parser.add_argument("--backend", default="", help="Backend alias (default: found by id).")
        parser.add_argument(
            "--fan-out",
            action="store_true",
            help="Run this task's member of a fan-out (CLOUD_RUN_TASK_INDEX), not an id.",
        )

    @firestore_errors(unavailable=EXIT_RETRY)
    def handle(self, *args: Any, **options: Any) -> None:
        report_started()  # to run_tasks, when it started this process (cloud_run_jobs mode)
        # No time: Cloud Logging stamps each line of a Cloud Run job itself.
        configure_logging(logging.INFO, "%(levelname)s %(name)s %(message)s")
        execution_id = self._execution_id(options)
        attempt_env = os.environ.get("CLOUD_RUN_TASK_ATTEMPT", "0")
        if not attempt_env.isdigit():
            raise CommandError(
                f"CLOUD_RUN_TASK_ATTEMPT must be a whole number, not {attempt_env!r}."
            )
        try:
            backend, known = self._backend(options["backend"], execution_id)
        except ExecutionNotFound as exc:
            raise CommandError(str(exc), returncode=EXIT_UNKNOWN) from exc
        name = os.environ.get("CLOUD_RUN_EXECUTION") or worker_name()
        carrier = env_carrier(os.environ)  # TRACEPARENT / TRACESTATE from run_job
        # One read in all: the claim starts from the version found (and decides on the
        # server time that read brought), or reads it itself when --backend names it.
        result = Attempt(
            backend,
            execution_id,
            worker_id=name,
            known=known,
            trace_carrier=carrier,
            platform_names=backend.delivery_names(os.environ),
        ).run()
        if result.outcome == Outcome.REFUSED and result.execution is None:
            raise CommandError(
                f"No task execution {execution_id!r} on backend {backend.alias!r}.",
                returncode=EXIT_UNKNOWN,
            )
        status = result.execution.status if result.execution is not None else None
        detail = f"error={result.error}" if result.error else result.reason or ""
        self.stdout.write(f"execute_task {execution_id}: {result.outcome} {detail}".rstrip())
        if result.wants_retry:
            sys.exit(EXIT_RETRY)
        if options["fan_out"] and result.reason in SKIPPED:
            sys.exit(EXIT_SUCCEEDED)  # finished or cancelled already (module docstring)
        if status == TaskResultStatus.SUCCESSFUL:
            sys.exit(EXIT_SUCCEEDED)
        sys.exit(EXIT_FAILED)

    def _execution_id(self, options: dict[str, Any]) -> str:
        if options["fan_out"] == bool(options["execution_id"]):
            raise CommandError(
                "Give an execution id or --fan-out (not both).", returncode=EXIT_UNKNOWN
            )
        if not options["fan_out"]:
            return str(options["execution_id"])
        try:
            return member_of(os.environ)
        except FanOutError as exc:
            raise CommandError(str(exc), returncode=EXIT_UNKNOWN) from exc

    def _backend(
        self, alias: str, execution_id: str
    ) -> tuple[FirestoreBackend, TaskExecution | None]:
        return (get_backend(alias), None) if alias else locate_execution(execution_id)
