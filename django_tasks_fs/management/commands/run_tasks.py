"""``manage.py run_tasks``: the local worker for ProcessBackend."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...backends.process import ProcessBackend
from ...registry import select_backends
from ...worker.logs import configure_logging
from ...worker.loop import Worker, WorkerSettings
from ..errors import firestore_errors

VERBOSITY_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


class Command(BaseCommand):
    help = "Run tasks enqueued on ProcessBackend backends (state in Firestore)."
    #: Only this library's system checks, plus each served backend's own (in handle()):
    #: a worker serves no HTTP and runs no migrations, and Django's other checks (URLs,
    #: templates, the migration autodetector) were a third of its start-up beyond its
    #: floor (docs/benchmarks.md). ``manage.py check`` still runs them all.
    requires_system_checks = ["django_tasks_fs"]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--backend",
            action="append",
            dest="backends",
            default=[],
            metavar="ALIAS",
            help="Backend alias to serve (repeatable; default: every ProcessBackend).",
        )
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            default=[],
            metavar="NAME",
            help="Queue to serve (repeatable; default: every queue).",
        )
        parser.add_argument("--max-workers", type=int, default=None, help="Concurrent attempts.")
        parser.add_argument(
            "--poll-interval", type=float, default=None, help="Seconds between polls."
        )
        parser.add_argument(
            "--batch-size", type=int, default=None, help="Executions fetched per poll."
        )
        parser.add_argument(
            "--once", action="store_true", help="Poll once, run what was found, exit."
        )
        parser.add_argument(
            "--burst", action="store_true", help="Run until nothing is ready or running, then exit."
        )
        parser.add_argument(
            "--catch-up",
            action="store_true",
            help="Fire the newest cron slot missed while no worker ran.",
        )
        parser.add_argument(
            "--shutdown-grace",
            type=float,
            default=None,
            help="Seconds running tasks get to finish after the first SIGINT/SIGTERM.",
        )
        parser.add_argument(
            "--health-port",
            type=int,
            default=None,
            metavar="PORT",
            help="Serve /healthz (liveness) and /metrics (Prometheus) on this port.",
        )

    @firestore_errors()
    def handle(self, *args: Any, **options: Any) -> None:
        backends = select_backends(options["backends"], ProcessBackend)
        if not backends:
            raise CommandError("No ProcessBackend is configured in TASKS.")
        for backend in backends:
            backend.ensure_configured()
        problems = [m for b in backends for m in b.check() if m.is_serious()]
        if problems:
            raise CommandError("\n".join(str(m) for m in problems))
        level = VERBOSITY_LEVELS.get(options["verbosity"], logging.DEBUG)
        configure_logging(level)
        configs = [b.config for b in backends]
        max_workers = options["max_workers"] or max(c.max_workers for c in configs)
        if max_workers < 1:
            raise CommandError("--max-workers must be at least 1.")
        port = options["health_port"]
        if port is not None and not 0 <= port <= 65535:
            raise CommandError(f"--health-port must be a port number, not {port}.")
        settings = WorkerSettings(
            backends=backends,
            queues=options["queues"] or None,
            max_workers=max_workers,
            poll_interval=options["poll_interval"] or min(c.poll_interval_seconds for c in configs),
            batch_size=options["batch_size"] or max(c.effective_batch_size for c in configs),
            once=options["once"],
            burst=options["burst"],
            catch_up=options["catch_up"],
            shutdown_grace=(
                options["shutdown_grace"]
                if options["shutdown_grace"] is not None
                else max(c.shutdown_grace_seconds for c in configs)
            ),
            log_level=level,
            health_port=options["health_port"],
        )
        try:
            worker = Worker(settings)
        except (ValueError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        health = ""
        if settings.health_port is not None:
            try:
                health = f" health_port={worker.serve_health()}"
            except OSError as exc:
                raise CommandError(
                    f"--health-port {settings.health_port}: cannot listen ({exc.strerror or exc})."
                ) from None
        worker.install_signal_handlers()
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"run_tasks: backends={','.join(b.alias for b in backends)} "
                f"max_workers={settings.max_workers} batch_size={settings.batch_size} "
                f"poll_interval={settings.poll_interval}s{health}"
            )
        stats = worker.run()
        if options["verbosity"] >= 1:
            outcomes = ", ".join(f"{k}={v}" for k, v in sorted(stats.outcomes.items())) or "none"
            self.stdout.write(
                f"run_tasks: stopped after {stats.finished} attempt(s): {outcomes}; "
                f"worker processes started: {stats.processes_started}"
            )
        if worker.gave_up:
            raise CommandError(worker.gave_up)
