"""Both emulators for a project on a laptop: the official Firestore emulator and our
Google Cloud emulator, on fixed ports, started and stopped together.

``manage.py tasks_emulators`` and ``python -m django_tasks_fs.emulators`` run this;
see docs/howto/local-development.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Self

from ..gcp.clients import EMULATOR_ENV
from .errors import EmulatorFailed
from .firestore import DEFAULT_PORT as DEFAULT_FIRESTORE_PORT
from .firestore import FirestoreEmulator
from .service import LOCALHOST, Service, ensure_port_free

if TYPE_CHECKING:
    from .gcloud.server import GoogleCloudEmulator

#: Fixed ports, so that settings can name them (tests pass free ones): the Google Cloud
#: emulator's gRPC API, and its HTTP side, whose certs URL goes in ``oidc_certs_url``.
DEFAULT_GCLOUD_PORT = 8123
DEFAULT_GCLOUD_HTTP_PORT = 8124
FIRESTORE_ENV = "FIRESTORE_EMULATOR_HOST"
#: Seconds between checks that both emulators are still alive.
WATCH_INTERVAL = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class Ports:
    """Where the emulators listen on 127.0.0.1, and the option that changes each."""

    firestore: int = DEFAULT_FIRESTORE_PORT
    gcloud: int = DEFAULT_GCLOUD_PORT
    gcloud_http: int = DEFAULT_GCLOUD_HTTP_PORT

    def check_free(self) -> None:
        """Raise PortInUse, naming the option to change, for the first busy port."""
        for port, what, option in (
            (self.firestore, "Firestore emulator", "--firestore-port"),
            (self.gcloud, "Google Cloud emulator (gRPC)", "--gcloud-port"),
            (self.gcloud_http, "Google Cloud emulator (OIDC certs)", "--gcloud-http-port"),
        ):
            if port:
                ensure_port_free(LOCALHOST, port, what=what, option=option)


@dataclass(kw_only=True)
class LocalEmulators(Service):
    """The two emulators; job containers of Cloud Run Jobs run in ``job_cwd``."""

    ports: Ports = field(default_factory=Ports)
    log_dir: Path
    job_cwd: Path = field(default_factory=Path.cwd)
    firestore: FirestoreEmulator | None = field(default=None, init=False)
    gcloud: GoogleCloudEmulator | None = field(default=None, init=False)

    @classmethod
    def in_temp_dir(cls, *, ports: Ports, job_cwd: Path) -> LocalEmulators:
        """Logs in a new temporary folder, kept after stop() so they can be read."""
        log_dir = Path(tempfile.mkdtemp(prefix="django-tasks-fs-emulators-"))
        return cls(ports=ports, log_dir=log_dir, job_cwd=job_cwd)

    @property
    def environment(self) -> dict[str, str]:
        """What a process of the project needs to reach both emulators."""
        if self.firestore is None or self.gcloud is None:
            raise RuntimeError("The emulators are not started.")
        return {FIRESTORE_ENV: self.firestore.host, EMULATOR_ENV: self.gcloud.grpc_host}

    @property
    def certs_url(self) -> str:
        """The ``oidc_certs_url`` of the backends: where the emulator's keys are."""
        if self.gcloud is None:
            raise RuntimeError("The emulators are not started.")
        return self.gcloud.certs_url

    def start(self) -> Self:
        """Refuse busy ports, then start Firestore and the Google Cloud emulator."""
        self.ports.check_free()
        # Imported here: without the emulators extra, the message says how to get it.
        from .gcloud.server import GoogleCloudEmulator

        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.firestore = FirestoreEmulator(
                port=self.ports.firestore, log_path=self.log_dir / "firestore.log"
            ).start()
            self.gcloud = GoogleCloudEmulator(
                port=self.ports.gcloud,
                http_port=self.ports.gcloud_http,
                cwd=self.job_cwd,
                env=self._job_environment(),
                log_dir=self.log_dir / "jobs",
            ).start()
            # Known only now when the port was 0 (a free one).
            self.gcloud.executor.env[EMULATOR_ENV] = self.gcloud.grpc_host
        except BaseException:
            self.stop()
            raise
        return self

    def _job_environment(self) -> dict[str, str]:
        """Added to the environment of Cloud Run job processes (``execute_task``)."""
        assert self.firestore is not None
        # The job's "python" is the interpreter running this, even from an inactive venv.
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        return {
            FIRESTORE_ENV: self.firestore.host,
            "PATH": path,
        }

    def wait(self) -> NoReturn:
        """Wait for a signal (see signals.py); raise EmulatorFailed if Firestore dies."""
        assert self.firestore is not None
        while self.firestore.is_running():
            time.sleep(WATCH_INTERVAL)
        raise EmulatorFailed(
            f"The Firestore emulator exited unexpectedly; see {self.firestore.log_path}:\n"
            f"{self.firestore.read_log()[-2000:]}"
        )

    def stop(self) -> None:
        """Stop both (Java included); the logs stay in ``log_dir``."""
        if self.gcloud is not None:
            self.gcloud.stop()
            self.gcloud = None
        if self.firestore is not None:
            self.firestore.stop()
            self.firestore = None
