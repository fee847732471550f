"""A TCP proxy that can cut or slow the connection to a server, for chaos tests.

Put it between the clients and the Firestore emulator (the emulator keeps its data in
memory, so stopping it would lose everything; cutting the network does not)::

    with FirestoreEmulator() as firestore, FaultProxy(firestore.host) as proxy:
        os.environ["FIRESTORE_EMULATOR_HOST"] = proxy.host
        proxy.cut()            # new connections refused, live ones reset
        proxy.restore()        # Firestore is back
        proxy.latency = 0.2    # every chunk forwarded 200 ms late, both ways
        proxy.latency = 0.0

``cut(seconds)`` restores by itself after ``seconds``. The proxy runs an asyncio loop
in a daemon thread; its methods may be called from any thread.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
import sys
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Self, TypeVar

from django_tasks_fs.emulators.service import Service

T = TypeVar("T")

#: Bytes read from one side at a time.
CHUNK = 64 * 1024


@dataclass
class ProxyStats:
    """What the proxy has seen and done so far."""

    connections: int = 0  #: accepted and forwarded
    reset: int = 0  #: live connections reset by a cut
    cuts: int = 0
    bytes_forwarded: int = 0


class _Link:
    """One client connection and its upstream connection."""

    def __init__(
        self,
        client: asyncio.StreamWriter,
        upstream: asyncio.StreamWriter,
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.tasks: list[asyncio.Task[None]] = []

    def reset(self) -> None:
        """Close both sockets with an RST (SO_LINGER 0), as a dead network would look."""
        for writer in (self.client, self.upstream):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class FaultProxy(Service):
    """Forward ``127.0.0.1:port`` to ``upstream`` (``host:port``), with injectable faults."""

    def __init__(self, upstream: str, *, port: int = 0) -> None:
        host, _, upstream_port = upstream.rpartition(":")
        self.upstream_host = host or "127.0.0.1"
        self.upstream_port = int(upstream_port)
        self.port = port
        self.stats = ProxyStats()
        self._latency = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._restore_at: asyncio.TimerHandle | None = None
        self._cut = False

    # -- lifecycle -------------------------------------------------------------------

    @property
    def host(self) -> str:
        """``host:port`` for the clients (e.g. FIRESTORE_EMULATOR_HOST)."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start listening (in a background thread); return once connections are accepted."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        """Close every connection and the listener, and end the thread."""
        loop = self._loop
        if loop is None:
            return
        self._call(self._shutdown())
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()
        self._loop = None

    # -- faults ----------------------------------------------------------------------

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self, seconds: float | None = None) -> None:
        """Refuse new connections and reset the live ones; restore after ``seconds``."""
        self._call(self._do_cut(seconds))

    def restore(self) -> None:
        """Accept connections again (no-op if not cut)."""
        self._call(self._do_restore())

    @property
    def latency(self) -> float:
        """Seconds every forwarded chunk is held back, in both directions."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self._latency = seconds

    # -- inside the loop -------------------------------------------------------------

    def _call(self, coroutine: Awaitable[T]) -> T:
        assert self._loop is not None, "the proxy is not started"

        async def wrapper() -> T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout=30)

    async def _listen(self) -> None:
        # reuse_address: the same port is bound again after a cut (TIME_WAIT sockets).
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    def _close_listener(self) -> None:
        # close() stops listening at once; wait_closed() would wait for the live
        # connections too (Python 3.12), which a cut resets instead.
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _do_cut(self, seconds: float | None) -> None:
        if self._restore_at is not None:
            self._restore_at.cancel()
            self._restore_at = None
        if not self._cut:
            self._cut = True
            self.stats.cuts += 1
            self._close_listener()
        for link in list(self._links):
            link.reset()
            self.stats.reset += 1
        self._links.clear()
        if seconds is not None:
            loop = asyncio.get_running_loop()
            self._restore_at = loop.call_later(
                seconds, lambda: loop.create_task(self._do_restore())
            )

    async def _do_restore(self) -> None:
        if self._restore_at is not None:
            self._restore_at.cancel()
            self._restore_at = None
        if self._cut:
            await self._listen()
            self._cut = False

    async def _shutdown(self) -> None:
        self._close_listener()
        if self._restore_at is not None:
            self._restore_at.cancel()
        for link in list(self._links):
            link.reset()
        self._links.clear()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if others:
            _, pending = await asyncio.wait(others, timeout=5)
            for task in pending:
                task.cancel()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        self.stats.connections += 1
        link.tasks = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        try:
            await asyncio.gather(*link.tasks, return_exceptions=True)
        finally:
            self._links.discard(link)
            for side in (writer, up_writer):
                side.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction; chunks are held back by the latency in force when read,
        in order (the delays overlap: latency, not a bandwidth limit)."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(queue, writer))
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                await queue.put((time.monotonic() + self._latency, data))
        except (ConnectionError, OSError):
            pass
        finally:
            await queue.put((0.0, b""))
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await sender

    async def _send(
        self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        while True:
            due, data = await queue.get()
            if not data:
                with contextlib.suppress(ConnectionError, OSError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
            self.stats.bytes_forwarded += len(data)


def main(argv: list[str] | None = None) -> int:
    """Run a proxy in the foreground; type ``cut [SECONDS]``, ``restore``, ``latency MS``."""
    parser = argparse.ArgumentParser(description="TCP fault proxy (cut / slow a connection).")
    parser.add_argument("upstream", help="host:port to forward to")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: free)")
    args = parser.parse_args(argv)
    with FaultProxy(args.upstream, port=args.port) as proxy:
        print(f"forwarding {proxy.host} -> {args.upstream}", flush=True)
        for line in sys.stdin:
            command, *rest = line.split() or [""]
            if command == "cut":
                proxy.cut(float(rest[0]) if rest else None)
            elif command == "restore":
                proxy.restore()
            elif command == "latency":
                proxy.latency = float(rest[0]) / 1000 if rest else 0.0
            elif command:
                print("commands: cut [SECONDS] | restore | latency MS", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
