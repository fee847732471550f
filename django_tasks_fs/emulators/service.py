"""What every local emulator shares: a start/stop lifecycle and ports that must be free."""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Self

from .errors import PortInUse

LOCALHOST = "127.0.0.1"


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


def free_port(host: str = LOCALHOST) -> int:
    """A port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_port_free(host: str, port: int, *, what: str, option: str = "") -> None:
    """Raise PortInUse when ``host:port`` cannot be listened on (someone else has it).

    Checked before starting, so that a busy port is refused with a clear message
    instead of reaching someone else's server. ``option`` names the setting that
    changes the port, for the message.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: a port whose last connection is in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            change = f" with {option}" if option else ""
            raise PortInUse(
                f"The {what} cannot listen on {host}:{port}: {exc.strerror or exc}. "
                f"Another program (an emulator from an earlier run?) is using port {port!r}; "
                f"stop it (see: lsof -i :{port}) or choose another port{change}.",
                host=host,
                port=port,
            ) from None
