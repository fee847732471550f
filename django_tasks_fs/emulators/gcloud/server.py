"""``GoogleCloudEmulator``: Cloud Tasks, Cloud Scheduler and Cloud Run Jobs on one gRPC port.

Usable in-process (a context manager, for pytest), by hand with
``python -m django_tasks_fs.emulators.gcloud``, or with the Firestore emulator through
``manage.py tasks_emulators``. Clients connect with an insecure channel to
:attr:`~GoogleCloudEmulator.grpc_host`; apps verify the OIDC tokens it sends against
:attr:`~GoogleCloudEmulator.certs_url`.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from concurrent import futures
from pathlib import Path
from typing import Self

import grpc

from ..service import Service, ensure_port_free
from .admin_http import CERTS_PATH, AdminServer
from .faults import FaultInjector
from .oidc import TokenIssuer
from .operations import OperationBook
from .run_executor import DEFAULT_KILL_GRACE, ProcessExecutor
from .run_service import CloudRunService
from .run_state import RunBook
from .scheduler_runner import JobBook, SchedulerClock
from .scheduler_service import CloudSchedulerService
from .tasks_dispatch import DEFAULT_WORKERS, TaskDispatcher
from .tasks_service import CloudTasksService
from .tasks_state import TaskBook

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
#: Cloud Tasks refuses a task name for about an hour after the task ended.
DEFAULT_TASK_DEDUP_WINDOW = 3600.0
RPC_WORKERS = 32


class GoogleCloudEmulator(Service):
    """The emulated Google Cloud APIs, with their background delivery threads.

    Parameters:
        port, http_port: the gRPC and the HTTP (certs, faults) ports; 0 picks free ones.
        cwd, env: working directory and extra environment of Cloud Run job processes.
        entrypoint: argv prefix for job containers without a ``command`` (the image's
            ENTRYPOINT, e.g. ``[sys.executable, "manage.py"]``).
        log_dir: where job process output goes (one file per execution); by default a
            temporary folder, removed by :meth:`stop`.
        seconds_cron: also accept 6-field crons with seconds first (tests only).
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        http_port: int = 0,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        entrypoint: Sequence[str] = (),
        log_dir: str | Path | None = None,
        seconds_cron: bool = False,
        task_dedup_window: float = DEFAULT_TASK_DEDUP_WINDOW,
        delivery_workers: int = DEFAULT_WORKERS,
        kill_grace: float = DEFAULT_KILL_GRACE,
    ) -> None:
        self.host = host
        self._port = port
        self._http_port = http_port
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self.log_dir = self._log_dir or Path(tempfile.gettempdir())  #: set by start()
        self.faults = FaultInjector()  #: arm failures with ``faults.fail_next(...)``
        self.issuer: TokenIssuer | None = None
        self.executor = ProcessExecutor(
            cwd=Path(cwd) if cwd is not None else Path.cwd(),
            env=dict(env or {}),
            entrypoint=entrypoint,
            kill_grace=kill_grace,
        )
        self._seconds_cron = seconds_cron
        self._dedup_window = task_dedup_window
        self._workers = delivery_workers
        self._grpc: grpc.Server | None = None
        self._admin: AdminServer | None = None
        self._dispatcher: TaskDispatcher | None = None
        self._runner: SchedulerClock | None = None
        self._run_book: RunBook | None = None
        self.grpc_port = 0

    @property
    def grpc_host(self) -> str:
        """``host:port`` for ``grpc.insecure_channel``."""
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        if self._admin is None:
            raise RuntimeError("The emulator is not started.")
        return self._admin.url

    @property
    def certs_url(self) -> str:
        """Where ``google.oauth2.id_token.verify_token`` finds the signing certificates."""
        return self.http_url + CERTS_PATH

    def start(self) -> Self:
        """Generate the signing key, bind the ports and start the background threads."""
        if self._log_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="gcloud-emulator-")
            self.log_dir = Path(self._tmp.name)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        issuer = self.issuer = TokenIssuer()
        task_book = TaskBook(dedup_window=self._dedup_window)
        self._dispatcher = TaskDispatcher(task_book, issuer, workers=self._workers)
        job_book = JobBook(seconds_cron=self._seconds_cron)
        self._runner = SchedulerClock(job_book, issuer)
        operations = OperationBook()
        self._run_book = RunBook(
            operations=operations, executor=self.executor, log_dir=self.log_dir
        )
        handlers = [
            CloudTasksService(task_book).handler(self.faults),
            CloudSchedulerService(job_book, self._runner).handler(self.faults),
            *CloudRunService(self._run_book).handlers(self.faults),
            operations.handler(self.faults),
        ]
        server = grpc.server(
            futures.ThreadPoolExecutor(RPC_WORKERS, thread_name_prefix="emulator-grpc"),
            options=[("grpc.so_reuseport", 0)],
        )
        server.add_generic_rpc_handlers(tuple(handlers))
        try:
            self.grpc_port = server.add_insecure_port(f"{self.host}:{self._port}")
            self._admin = AdminServer(
                host=self.host, port=self._http_port, issuer=issuer, faults=self.faults
            )
        except (RuntimeError, OSError):
            server.stop(grace=None)
            self._busy_port()  # the likely cause: tell which port
            raise
        server.start()
        self._grpc = server
        self._admin.start()
        self._dispatcher.start()
        self._runner.start()
        logger.info("gcloud emulator started grpc=%s certs=%s", self.grpc_host, self.certs_url)
        return self

    def _busy_port(self) -> None:
        """Raise PortInUse for the first of our fixed ports that someone else holds."""
        for port in (self._port, self._http_port):
            if port:
                ensure_port_free(self.host, port, what="Google Cloud emulator")

    def stop(self) -> None:
        """Stop serving, stop delivering, and kill running job processes."""
        if self._grpc is not None:
            self._grpc.stop(grace=None)
            self._grpc = None
        if self._dispatcher is not None:
            self._dispatcher.stop()
            self._dispatcher = None
        if self._runner is not None:
            self._runner.stop()
            self._runner = None
        if self._run_book is not None:
            self._run_book.stop()
            self._run_book = None
        if self._admin is not None:
            self._admin.stop()
            self._admin = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
