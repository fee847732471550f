"""Commands run as a user runs them: in the background, output in a file, stopped with
SIGTERM; and the Firestore emulator JVMs they leave (or must not leave) behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django_tasks_fs.emulators.firestore import MAIN_CLASS
from tests.conftest import wait_until


def firestore_jvms(port: int) -> list[int]:
    """Pids of running official Firestore emulators listening on ``port`` (any parent)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if (
            MAIN_CLASS.encode() in argv
            and b"--port" in argv
            and argv[argv.index(b"--port") + 1] == str(port).encode()
        ):
            found.append(int(entry.name))
    return found


class Background:
    """A command started in its own session, its output (stdout and stderr) in a file."""

    def __init__(self, argv: Sequence[str], log: Path, **popen: Any) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **popen,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, *, timeout: float = 90.0) -> None:
        """Poll until ``text`` is in the output; fail early if the command exits first."""

        def seen() -> bool:
            if text in self.output:
                return True
            if self.process.poll() is not None:
                raise AssertionError(
                    f"exited with {self.process.returncode} before printing {text!r}:\n"
                    f"{self.output[-4000:]}"
                )
            return False

        wait_until(seen, timeout=timeout)

    def terminate(self, *, timeout: float = 30.0) -> int:
        """SIGTERM the command (not its group: it must stop its children itself)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill_leftovers(self, *firestore_ports: int) -> None:
        """After the test: kill the command's session and the emulators on our ports."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for port in firestore_ports:  # a JVM in a session of its own, leaked by a bug
            for pid in firestore_jvms(port):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
