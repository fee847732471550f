"""Start and stop the official Cloud Firestore emulator (a Java program from the gcloud SDK).

Used by the test suite, the demo and by hand::

    uv run python -m emulator.firestore   # in a checkout; prints the FIRESTORE_EMULATOR_HOST

The emulator is found, in order, from ``$FIRESTORE_EMULATOR_JAR``, the gcloud SDK
(``gcloud info``) and the usual install folders. There is no fallback to a fake: when
it cannot be found, :class:`EmulatorNotFound` says how to install it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

DEFAULT_STARTUP_TIMEOUT = 60.0
KNOWN_SDK_ROOTS = (
    "/usr/lib/google-cloud-sdk",
    "/usr/share/google-cloud-sdk",
    "/opt/google-cloud-sdk",
    str(Path.home() / "google-cloud-sdk"),
)
JAR_RELATIVE_PATH = Path("platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")
MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
INSTALL_HINT = (
    "The official Cloud Firestore emulator was not found. Install it with one of:\n"
    "  gcloud components install cloud-firestore-emulator\n"
    "  apt-get install google-cloud-cli-firestore-emulator   (Debian/Ubuntu, Google's apt repo)\n"
    "It also needs Java 11+ ('apt-get install default-jre-headless'). Or point "
    "$FIRESTORE_EMULATOR_JAR at cloud-firestore-emulator.jar."
)


class EmulatorNotFound(RuntimeError):
    """The official Firestore emulator (or Java) is not installed."""


class EmulatorFailed(RuntimeError):
    """The emulator process exited or did not answer in time."""


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
    java = os.environ.get("JAVA") or shutil.which("java")
    if java is None:
        raise EmulatorNotFound(f"Java was not found on PATH.\n{INSTALL_HINT}")
    return java


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """Something started in the background and stopped after use:
    ``with Service() as running: ...`` calls ``start()``, then ``stop()``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class FirestoreEmulator(Service):
    """One running emulator process on 127.0.0.1; use as a context manager."""

    port: int = 0
    log_path: Path | None = None
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    @property
    def host(self) -> str:
        """The value for FIRESTORE_EMULATOR_HOST."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start the emulator and wait until it answers HTTP requests."""
        jar = find_emulator_jar()
        java = find_java()
        if not self.port:
            self.port = _free_port()
        if self.log_path is None:
            self.log_path = Path(tempfile.mkdtemp(prefix="firestore-emulator-")) / "emulator.log"
        # The emulator's output goes to a file: an unread pipe fills up and hangs requests.
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                java,
                "-Duser.language=en",
                "-cp",
                str(jar),
                MAIN_CLASS,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise EmulatorFailed(
                    f"The Firestore emulator exited with code {self.process.returncode}; "
                    f"see {self.log_path}:\n{self.read_log()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"http://{self.host}/", timeout=2) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        self.stop()
        raise EmulatorFailed(
            f"The Firestore emulator did not answer within {self.startup_timeout:.0f}s; "
            f"see {self.log_path}."
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
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


def main(argv: list[str] | None = None) -> int:
    """Run the emulator in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description="Run the official Firestore emulator locally.")
    parser.add_argument("--port", type=int, default=8086, help="port on 127.0.0.1 (default 8086)")
    parser.add_argument("--log", type=Path, default=None, help="log file (default: a temp file)")
    args = parser.parse_args(argv)
    try:
        emulator = FirestoreEmulator(port=args.port, log_path=args.log).start()
    except (EmulatorNotFound, EmulatorFailed) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Firestore emulator ready; log: {emulator.log_path}")
    print(f"export FIRESTORE_EMULATOR_HOST={emulator.host}", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
