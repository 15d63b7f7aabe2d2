"""A TCP proxy that adds one-way latency and breaks connections on demand (kernel netem is unavailable).

It runs an asyncio loop in a background thread, so it keeps forwarding while a test blocks its own
loop or thread. Each chunk read is forwarded ``delay`` seconds after it arrived, in order; reading
never waits for that, so the delay adds latency without capping throughput (a 10 ms delay does not
mean one chunk per 10 ms).

Fault injection, from any thread:

* :meth:`cut` aborts every current connection (both sides see a reset), like a dropped link;
* :meth:`stall` stops forwarding on every current connection (bytes are held, nothing is closed),
  like a hung peer; :meth:`resume` lets the held bytes through.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

LOOPBACK = "127.0.0.1"
CHUNK = 256 * 1024
CONTROL_TIMEOUT = 10.0

T = TypeVar("T")

_EOF = object()


class _Pipe:
    """One direction of one proxied connection: read, hold for ``delay``, write in order."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        delay: Callable[[], float],
        link: _Link,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._delay = delay
        self._link = link
        self._queue: collections.deque[tuple[float, object]] = collections.deque()
        self._wake = asyncio.Event()

    async def read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(CHUNK)
                self._queue.append((time.monotonic() + self._delay(), data or _EOF))
                self._wake.set()
                if not data:
                    return
        except (ConnectionError, OSError):
            self._queue.append((time.monotonic(), _EOF))
            self._wake.set()

    async def write_loop(self) -> None:
        try:
            while True:
                while not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                await self._link.flowing.wait()
                due, data = self._queue[0]
                pause = due - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                    continue  # re-check: the link may have stalled meanwhile
                self._queue.popleft()
                if data is _EOF:
                    if self._writer.can_write_eof():
                        self._writer.write_eof()
                    return
                assert isinstance(data, bytes)
                self._writer.write(data)
                await self._writer.drain()
        except (ConnectionError, OSError):
            pass


class _Link:
    """A client connection and its upstream connection."""

    def __init__(self) -> None:
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.writers: list[asyncio.StreamWriter] = []

    def abort(self) -> None:
        self.flowing.set()  # held bytes would otherwise keep a writer waiting forever
        for writer in self.writers:
            transport = writer.transport
            if not transport.is_closing():
                transport.abort()


class DelayProxy:
    """Forwards 127.0.0.1:``port`` to ``target``, ``up_delay`` / ``down_delay`` seconds each way."""

    def __init__(self, target_host: str, target_port: int, *, delay: float = 0.0) -> None:
        self.target = (target_host, target_port)
        #: client -> server and server -> client one-way delays, in seconds
        self.up_delay = delay
        self.down_delay = delay
        self.host = LOOPBACK
        self.port = 0
        self.accepted = 0
        self._links: set[_Link] = set()
        self._stall_new = False
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="delay-proxy", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> DelayProxy:
        self._thread.start()
        self._server = self._call(self._start_server())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CONTROL_TIMEOUT)
        self._loop.close()

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fault injection ------------------------------------------------------------------------

    @property
    def active(self) -> int:
        return self._call(self._count())

    def cut(self) -> int:
        """Abort every current connection; returns how many were cut."""
        return self._call(self._cut())

    def stall(self, *, new_connections: bool = False) -> None:
        """Hold all bytes of current connections (and, optionally, of new ones) until :meth:`resume`."""
        self._call(self._set_flowing(False, new_connections))

    def resume(self) -> None:
        self._call(self._set_flowing(True, False))

    # -- internals ------------------------------------------------------------------------------

    def _call(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self._loop).result(CONTROL_TIMEOUT)

    async def _start_server(self) -> asyncio.Server:
        return await asyncio.start_server(self._handle, self.host, 0)

    async def _count(self) -> int:
        return len(self._links)

    async def _cut(self) -> int:
        links = list(self._links)
        for link in links:
            link.abort()
        return len(links)

    async def _set_flowing(self, flowing: bool, new_connections: bool) -> None:
        self._stall_new = new_connections and not flowing
        for link in self._links:
            if flowing:
                link.flowing.set()
            else:
                link.flowing.clear()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link()
        if self._stall_new:
            link.flowing.clear()
        link.writers.append(client_writer)
        self._links.add(link)
        try:
            try:
                server_reader, server_writer = await asyncio.open_connection(*self.target)
            except OSError:
                return
            link.writers.append(server_writer)
            up = _Pipe(client_reader, server_writer, lambda: self.up_delay, link)
            down = _Pipe(server_reader, client_writer, lambda: self.down_delay, link)
            await asyncio.gather(up.read_loop(), up.write_loop(), down.read_loop(), down.write_loop())
        except asyncio.CancelledError:
            # Only at shutdown. Ending normally keeps asyncio's stream server from logging the
            # cancelled handler as an error.
            pass
        finally:
            self._links.discard(link)
            for writer in link.writers:
                writer.close()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
