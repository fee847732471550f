"""The one command that runs both emulators for a project, shared by
``manage.py tasks_emulators`` (which also creates what TASKS names) and
``python -m django_tasks_fs.emulators`` (no Django settings needed)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..gcp.clients import EMULATOR_ENV
from .errors import EmulatorError
from .local import FIRESTORE_ENV, LocalEmulators, Ports
from .signals import StopRequested, stop_on_signals

DEFAULT_MAX_ATTEMPTS = 3
READY = "Emulators running; Ctrl-C (or SIGTERM) stops them."

#: Called once the emulators run: creates what the project needs, returns lines to show.
Provision = Callable[[LocalEmulators], list[str]]
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The command line, parsed."""

    ports: Ports
    log_dir: Path | None  #: None: a new temporary folder
    job_cwd: Path
    max_attempts: int

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Settings:
        return cls(
            ports=Ports(
                firestore=options["firestore_port"],
                gcloud=options["gcloud_port"],
                gcloud_http=options["gcloud_http_port"],
            ),
            log_dir=options["log_dir"],
            job_cwd=options["job_cwd"] or Path.cwd(),
            max_attempts=options["max_attempts"],
        )


def _attempts(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value!r}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of both commands (Django's CommandParser is an ArgumentParser)."""
    defaults = Ports()
    parser.add_argument(
        "--firestore-port",
        type=int,
        default=defaults.firestore,
        help=f"Firestore emulator port on 127.0.0.1 (default {defaults.firestore}; 0: a free one)",
    )
    parser.add_argument(
        "--gcloud-port",
        type=int,
        default=defaults.gcloud,
        help=f"Google Cloud emulator gRPC port (default {defaults.gcloud}; 0: a free one)",
    )
    parser.add_argument(
        "--gcloud-http-port",
        type=int,
        default=defaults.gcloud_http,
        help=f"port of the OIDC certs URL (default {defaults.gcloud_http}; 0: a free one)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="folder for the Firestore log and Cloud Run job logs (default: a new temp folder)",
    )
    parser.add_argument(
        "--job-cwd",
        type=Path,
        default=None,
        help="folder Cloud Run job processes run in (default: the current folder)",
    )
    parser.add_argument(
        "--max-attempts",
        type=_attempts,
        default=DEFAULT_MAX_ATTEMPTS,
        help="attempts of the created queues and jobs (default %(default)s)",
    )


def run(settings: Settings, say: Say, provision: Provision | None = None) -> None:
    """Start, provision, print what to configure; return once stopped by Ctrl-C or SIGTERM.

    Raises EmulatorError (all stopped) when the emulators cannot start or one dies.
    """
    emulators = (
        LocalEmulators(ports=settings.ports, log_dir=settings.log_dir, job_cwd=settings.job_cwd)
        if settings.log_dir is not None
        else LocalEmulators.in_temp_dir(ports=settings.ports, job_cwd=settings.job_cwd)
    )
    try:
        with stop_on_signals(), emulators:
            lines = provision(emulators) if provision is not None else []
            _describe(emulators, lines, say)
            say(READY)
            emulators.wait()
    except StopRequested:
        say("Stopped.")


def _describe(emulators: LocalEmulators, lines: list[str], say: Say) -> None:
    env = emulators.environment
    say(f"Firestore emulator (official):  {env[FIRESTORE_ENV]}")
    say(
        f"Google Cloud emulator (Cloud Tasks, Cloud Scheduler, Cloud Run Jobs):  {env[EMULATOR_ENV]}"
    )
    say(f"Logs:  {emulators.log_dir}/  (firestore.log, jobs/)")
    for line in lines:
        say(line)
    say("")
    say("In every shell of the project (runserver, run_tasks, shell, pytest):")
    for name, value in env.items():
        say(f"  export {name}={value}")
    say("OPTIONS of CloudTasksBackend / CloudRunJobsBackend, locally:")
    say(f'  "oidc_certs_url": "{emulators.certs_url}",')
    say(
        '  "base_url": where runserver serves django_tasks_fs.urls, '
        'e.g. "http://127.0.0.1:8000/tasks/"'
    )
    say("")


__all__ = ["READY", "EmulatorError", "Provision", "Settings", "add_arguments", "run"]
