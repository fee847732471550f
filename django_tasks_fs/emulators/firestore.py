"""Start and stop the official Cloud Firestore emulator (a Java program from the gcloud SDK).

Used by ``manage.py tasks_emulators``, the pytest plugin, and by hand::

    python -m django_tasks_fs.emulators.firestore --port 8086

The emulator is found, in order, from ``$FIRESTORE_EMULATOR_JAR``, the gcloud SDK
(``gcloud info``) and the usual install folders. There is no fallback to a fake: when
it cannot be found, :class:`EmulatorNotFound` says how to install it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

from .errors import EmulatorError, EmulatorFailed, EmulatorNotFound, PortInUse
from .service import LOCALHOST, Service, ensure_port_free, free_port
from .signals import StopRequested, signals_deferred, stop_on_signals

DEFAULT_PORT = 8086
DEFAULT_STARTUP_TIMEOUT = 60.0
#: Free ports tried when the port is ours to choose (another program may take one first).
FREE_PORT_ATTEMPTS = 3
#: Seconds the emulator gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 10.0
KNOWN_SDK_ROOTS = (
    "/usr/lib/google-cloud-sdk",
    "/usr/share/google-cloud-sdk",
    "/opt/google-cloud-sdk",
    str(Path.home() / "google-cloud-sdk"),
)
JAR_RELATIVE_PATH = Path("platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")
MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
#: Logged by the emulator once it listens on its port: proof that *it* answers there.
READY_LINE = "Dev App Server is now running."
#: Logged when the port was taken after all (between our check and its bind).
BIND_FAILURE = "java.net.BindException"
INSTALL_HINT = (
    "The official Cloud Firestore emulator was not found. Install it with one of:\n"
    "  gcloud components install cloud-firestore-emulator\n"
    "  apt-get install google-cloud-cli-firestore-emulator   (Debian/Ubuntu, Google's apt repo)\n"
    "It also needs Java 11+ ('apt-get install default-jre-headless'). Or point "
    "$FIRESTORE_EMULATOR_JAR at cloud-firestore-emulator.jar."
)

__all__ = [
    "DEFAULT_PORT",
    "INSTALL_HINT",
    "EmulatorFailed",
    "EmulatorNotFound",
    "FirestoreEmulator",
    "PortInUse",
    "find_emulator_jar",
    "find_java",
    "main",
]


def _sdk_root_from_gcloud() -> str | None:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    try:
        out = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def find_emulator_jar() -> Path:
    """Return the path of the official emulator jar, or raise EmulatorNotFound."""
    explicit = os.environ.get("FIRESTORE_EMULATOR_JAR")
    if explicit:
        if Path(explicit).is_file():
            return Path(explicit)
        raise EmulatorNotFound(
            f"$FIRESTORE_EMULATOR_JAR={explicit!r} is not a file.\n{INSTALL_HINT}"
        )
    roots = [r for r in (_sdk_root_from_gcloud(), *KNOWN_SDK_ROOTS) if r]
    for root in roots:
        jar = Path(root) / JAR_RELATIVE_PATH
        if jar.is_file():
            return jar
    raise EmulatorNotFound(INSTALL_HINT)


def find_java() -> str:
    """Return the Java executable (``$JAVA``, else ``java`` on PATH), or raise EmulatorNotFound."""
    explicit = os.environ.get("JAVA")
    if explicit:
        if shutil.which(explicit) is None:
            raise EmulatorNotFound(
                f"$JAVA={explicit!r} is not an executable program.\n{INSTALL_HINT}"
            )
        return explicit
    java = shutil.which("java")
    if java is None:
        raise EmulatorNotFound(f"Java was not found on PATH.\n{INSTALL_HINT}")
    return java


@dataclass
class FirestoreEmulator(Service):
    """One running emulator process on 127.0.0.1; use as a context manager.

    ``port`` 0 picks a free port; a fixed port that is already taken is refused
    (PortInUse) rather than shared with whatever listens there.
    """

    port: int = 0
    log_path: Path | None = None
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    @property
    def host(self) -> str:
        """The value for FIRESTORE_EMULATOR_HOST."""
        return f"{LOCALHOST}:{self.port}"

    def start(self) -> Self:
        """Start the emulator and wait until it, and not some other server, answers."""
        jar = find_emulator_jar()
        java = find_java()
        if self.port:
            ensure_port_free(LOCALHOST, self.port, what="Firestore emulator")
            return self._launch(java, jar)
        # A free port we picked can be taken by another program before Java binds it:
        # then pick another.
        attempts_left = FREE_PORT_ATTEMPTS
        while True:
            self.port = free_port()
            try:
                return self._launch(java, jar)
            except PortInUse:
                attempts_left -= 1
                if not attempts_left:
                    raise

    def _launch(self, java: str, jar: Path) -> Self:
        if self.log_path is None:
            self.log_path = Path(tempfile.mkdtemp(prefix="firestore-emulator-")) / "emulator.log"
        # The emulator's output goes to a file: an unread pipe fills up and hangs requests.
        self._log = self.log_path.open("wb")
        command = [java, "-Duser.language=en", "-cp", str(jar), MAIN_CLASS]
        command += ["--host", LOCALHOST, "--port", str(self.port)]
        try:
            with signals_deferred():
                self.process = subprocess.Popen(
                    command,
                    stdout=self._log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    # Its own process group: stop() signals Java and anything it started.
                    start_new_session=True,
                )
            self._wait_until_ready()
        except BaseException:
            self.stop()  # Ctrl-C or a failure while starting: no Java left behind
            raise
        return self

    def is_running(self) -> bool:
        """True while the emulator process is alive."""
        return self.process is not None and self.process.poll() is None

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._raise_exited()
            # The log line and a live process prove that our emulator holds the port;
            # an HTTP answer alone could come from another server on it.
            if READY_LINE in self.read_log() and self._answers():
                return
            time.sleep(0.1)
        raise EmulatorFailed(
            f"The Firestore emulator did not start within {self.startup_timeout:.0f}s; "
            f"see {self.log_path}:\n{self.read_log()[-2000:]}"
        )

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}/", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _raise_exited(self) -> None:
        assert self.process is not None
        log = self.read_log()
        if BIND_FAILURE in log:
            raise PortInUse(
                f"The Firestore emulator could not listen on {self.host}: the port is "
                f"already in use. Stop the program using port {self.port!r} "
                f"(see: lsof -i :{self.port}) or choose another port.",
                host=LOCALHOST,
                port=self.port,
            )
        raise EmulatorFailed(
            f"The Firestore emulator exited with code {self.process.returncode}; "
            f"see {self.log_path}:\n{log[-2000:]}"
        )

    def read_log(self) -> str:
        """Return what the emulator has written so far."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def reset(self, project: str, database: str = "(default)") -> None:
        """Delete every document of one database through the emulator's REST endpoint."""
        url = f"http://{self.host}/emulator/v1/projects/{project}/databases/{database}/documents"
        request = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def stop(self) -> None:
        """Stop the emulator (SIGTERM, then SIGKILL) and close the log."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
            self._log = None


def main(argv: list[str] | None = None) -> int:
    """Run the emulator in the foreground until Ctrl-C or SIGTERM; then stop Java too."""
    parser = argparse.ArgumentParser(
        prog="python -m django_tasks_fs.emulators.firestore",
        description="Run the official Firestore emulator locally.",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})"
    )
    parser.add_argument("--log", type=Path, default=None, help="log file (default: a temp file)")
    args = parser.parse_args(argv)
    try:
        ensure_port_free(LOCALHOST, args.port, what="Firestore emulator", option="--port")
        with stop_on_signals(), FirestoreEmulator(port=args.port, log_path=args.log) as emulator:
            print(f"Firestore emulator ready; log: {emulator.log_path}")
            print(f"export FIRESTORE_EMULATOR_HOST={emulator.host}", flush=True)
            while emulator.is_running():
                time.sleep(0.5)
            print(f"The Firestore emulator exited; see {emulator.log_path}", file=sys.stderr)
            return 1
    except StopRequested:
        return 0
    except EmulatorError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
