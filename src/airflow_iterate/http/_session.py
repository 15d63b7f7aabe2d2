"""The holder of one client's aiohttp session: it opens it on first use, owns it, and closes it.

Opening reads the Airflow connection (once, in a thread: the SDK is synchronous), builds the TLS
context (in a thread: it reads the CA bundle), then creates one ``aiohttp.ClientSession`` over one
``TCPConnector``: every request of every item goes through that connector, which keeps idle
connections alive for reuse (HTTP/1.1 keep-alive, one request at a time per connection, no
pipelining) and never opens more than ``max_connections_per_host`` to one host (requests beyond
wait for a free one, first come first served). Concurrent first requests share one opening; a
failed opening is not kept (the next request tries again: a connection defined wrong is reported
each time, a transient failure may pass).

States: ``NEW`` -> ``OPENING`` -> ``READY`` -> ``CLOSED`` (from any state; final).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from ._errors import HTTPClientClosedError
from ._redact import Masker
from ._settings import ConnectionSettings, load_settings, ssl_context

__all__ = ["Opened", "SessionHolder", "SessionLimits"]

log = logging.getLogger("airflow_iterate.http")


class State(enum.Enum):
    NEW = "new"
    OPENING = "opening"
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True)
class SessionLimits:
    """The connector's bounds (validated by the client)."""

    max_connections_per_host: int
    max_connections: int
    keepalive_timeout: float


@dataclass(frozen=True)
class Opened:
    """A ready session and what every request needs from the connection, computed once."""

    session: aiohttp.ClientSession
    settings: ConnectionSettings
    #: headers (credentials included) for requests to the connection's origin
    headers: dict[str, str]
    mask: Masker
    timeout: aiohttp.ClientTimeout


class SessionHolder:
    """Owns one aiohttp session for one client (see the module's docstring)."""

    def __init__(self, conn_id: str, connection: Any, limits: SessionLimits) -> None:
        self.conn_id = conn_id
        self._connection = connection
        self._limits = limits
        self.state = State.NEW
        self._opened: Opened | None = None
        self._opening: asyncio.Task[Opened] | None = None
        #: the settings once read (also after the session closed, for messages)
        self.settings: ConnectionSettings | None = None

    @property
    def opened(self) -> Opened | None:
        """The session when READY (the hot path reads this, nothing else)."""
        return self._opened

    async def open(self) -> Opened:
        """The session, opened on first use; concurrent callers share one opening."""
        if self._opened is not None:
            return self._opened
        if self.state is State.CLOSED:
            raise HTTPClientClosedError(f"the HTTPClient for {self.conn_id!r} is closed")
        if self._opening is None or self._opening.done():
            self.state = State.OPENING
            self._opening = asyncio.ensure_future(self._open())
            self._opening.add_done_callback(_retrieve)
        try:
            opened = await asyncio.shield(self._opening)
        except BaseException:
            if self.state is State.OPENING and self._opening.done():
                self.state = State.NEW
            raise
        if self.state is State.CLOSED:  # closed while it opened
            await opened.session.close()
            raise HTTPClientClosedError(f"the HTTPClient for {self.conn_id!r} is closed")
        self._opened = opened
        self.state = State.READY
        return opened

    async def _open(self) -> Opened:
        settings = await load_settings(
            None if self._connection is not None else self.conn_id, self._connection
        )
        self.settings = settings
        tls = await asyncio.to_thread(ssl_context, settings)
        limits = self._limits
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections,
            limit_per_host=limits.max_connections_per_host,
            keepalive_timeout=limits.keepalive_timeout,
            ssl=tls,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            trust_env=settings.trust_env,
            raise_for_status=False,
            # Waiting for a free connection is not a timeout: with more items in flight than
            # connections most requests wait for one. Opening one and each read of the answer are.
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=None,
                sock_connect=settings.connect_timeout,
                sock_read=settings.read_timeout,
            ),
        )
        return Opened(
            session=session,
            settings=settings,
            headers=settings.request_headers(),
            mask=Masker(settings.secrets()),
            timeout=session.timeout,
        )

    async def aclose(self) -> None:
        """Close the session and its connections. Idempotent."""
        self.state = State.CLOSED
        opened, self._opened = self._opened, None
        opening = self._opening
        if opened is None and opening is not None and opening.done() and not opening.cancelled():
            if opening.exception() is None:
                opened = opening.result()
        elif opening is not None and not opening.done():
            opening.cancel()
        if opened is not None:
            await opened.session.close()


def _retrieve(task: asyncio.Future[Any]) -> None:
    # Whoever awaited it saw the error; this keeps asyncio from reporting it as never retrieved.
    if not task.cancelled():
        task.exception()
