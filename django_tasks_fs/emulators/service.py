"""What every local emulator shares: a start/stop lifecycle and ports that must be free."""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

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


def parse_host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (an ``http://`` prefix allowed) as a pair; ValueError if it is not one."""
    parts = urlsplit(value if "//" in value else f"//{value}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("", "http") or not parts.hostname or port is None:
        raise ValueError(f"Not HOST:PORT: {value!r} (e.g. '127.0.0.1:8000').")
    return parts.hostname, port


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
            raise port_in_use(host, port, exc, what=what, option=option) from None


def port_in_use(host: str, port: int, exc: OSError, *, what: str, option: str = "") -> PortInUse:
    """The PortInUse error for a failed bind of ``host:port``, saying what to do."""
    change = f" with {option}" if option else ""
    return PortInUse(
        f"The {what} cannot listen on {host}:{port}: {exc.strerror or exc}. "
        f"Another program (an emulator from an earlier run?) is using port {port!r}; "
        f"stop it (see: lsof -i :{port}) or choose another port{change}.",
        host=host,
        port=port,
    )
