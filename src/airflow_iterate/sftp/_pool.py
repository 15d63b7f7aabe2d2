"""SFTPPool: many concurrent file operations multiplexed over a few SSH connections.

Why not one connection per borrower (what the sftp provider's ``SFTPClientPool`` does): SFTP tags
every request with an id and the server answers them as they complete, so one SFTP session carries
many operations at once. Measured with small files against OpenSSH 9.2 over 20 ms round trips: a
connection per file ~3 files/s, one connection doing one file at a time ~20, one session with 32
downloads in flight ~400, four with 128 in flight ~700. A connection per borrower pays an SSH
handshake each and runs into the server's ``MaxStartups`` long before that.

Structure (after asyncpg's pool: holders, an acquire context, FIFO waiters, per-connection health):

* a :class:`~._holders.ConnectionHolder` per SSH connection and a :class:`~._holders.SessionHolder`
  per SFTP session on it, each opening, checking, retiring and closing itself (``_holders``
  tells how, and when a connection is dropped or checked);
* :class:`_ClientContext` (``pool.client()``) borrows a slot on a session for the ``async with``
  block and hands the shared ``SFTPClient`` itself to the borrower;
* :class:`~._lending.Lender`, the pool's base class, queues the borrowers (FIFO), picks a session
  for each, grows under demand, runs the timer that expires connections, and counts;
* :class:`SFTPPool` adds what its users call: the options, :meth:`SFTPPool.shared`,
  ``pool.client()``, :meth:`SFTPPool.aclose`.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Final

import asyncssh

from .._core._validate import optional_seconds, positive_int, seconds
from .._per_loop import PerLoop
from ._connect import Connector
from ._errors import SFTPPoolClosedError, SFTPPoolUsageError
from ._holders import SessionHolder
from ._lending import Lender

__all__ = ["SFTPPool"]

log = logging.getLogger("airflow_iterate.sftp")

DEFAULT_CONN_ID = "sftp_default"
HEALTH_CHECK_TIMEOUT = 10.0


class _Default:
    def __repr__(self) -> str:
        return "<pool default>"


_DEFAULT: Final[Any] = _Default()


class _ClientContext:
    """``async with pool.client() as sftp``: one borrowed slot for the duration of the block."""

    __slots__ = ("_pool", "_session", "_timeout")

    def __init__(self, pool: SFTPPool, timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._session: SessionHolder | None = None

    async def __aenter__(self) -> asyncssh.SFTPClient:
        if self._session is not None:
            raise SFTPPoolUsageError("this pool.client() context is in use; call pool.client() again")
        self._session = await self._pool._acquire(self._timeout)
        return self._session.sftp

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            self._pool._release(session, exc)


class SFTPPool(Lender):
    """A pool of SFTP clients for one Airflow ``sftp`` connection, shared by many concurrent tasks.

    ::

        async with SFTPPool("my_sftp") as pool:
            async with pool.client() as sftp:  # an asyncssh.SFTPClient
                data = await sftp.open("/in/a.xml", "rb")...

    Each client is shared: up to ``borrowers_per_session`` borrowers use the same SFTP session at
    once, each with its own requests in flight. Connections open lazily, one handshake at a time
    (two at most), only when every open session is fully used. The pool belongs to the event loop
    it is first used on; create one per task run (:meth:`shared` does that for ``.iterate()``
    items) and close it (``async with`` or :meth:`aclose`).

    :param conn_id: the Airflow connection (type ``sftp``; ``ssh`` connections work too). It is
        read once, in a worker thread, when the first connection opens.
    :param connection: an already fetched Airflow ``Connection`` to use instead of ``conn_id``.
    :param max_connections: SSH connections at most.
    :param sessions_per_connection: SFTP sessions (SSH channels) per connection at most; each is a
        separate server process with OpenSSH, so more of them spread the server's work without
        more handshakes. OpenSSH allows ``MaxSessions`` (default 10).
    :param borrowers_per_session: borrowers sharing one SFTP session at once; each may have
        several requests in flight.
    :param acquire_timeout: seconds a borrower may wait for a client (including the time to
        connect) before :class:`SFTPAcquireTimeoutError`; ``None`` waits forever. ``pool.client()``
        can override it per call.
    :param idle_timeout: close a connection unused for this many seconds (``None``: never).
    :param max_lifetime: retire a connection this many seconds after it opened (``None``: never).
    :param health_check_after: a session idle this long answers one SFTP round trip before it is
        lent again.
    :param health_check_timeout: seconds that round trip may take before the connection is
        dropped as dead (a hung connection does not fail, it stalls).
    :param max_parallel_connects: SSH handshakes in progress at once at most; servers drop
        connections beyond ``MaxStartups`` unauthenticated ones (OpenSSH: 10).
    :param no_host_key_check: overrides the connection's ``no_host_key_check`` extra, as in the
        provider's hooks. Host keys are checked unless this or the extra turns it off.
    """

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        connection: Any = None,
        max_connections: int = 4,
        sessions_per_connection: int = 1,
        borrowers_per_session: int = 32,
        acquire_timeout: float | None = 60.0,
        idle_timeout: float | None = 120.0,
        max_lifetime: float | None = 3600.0,
        health_check_after: float = 10.0,
        health_check_timeout: float = HEALTH_CHECK_TIMEOUT,
        max_parallel_connects: int = 2,
        no_host_key_check: bool | None = None,
    ) -> None:
        if connection is not None:
            fetched_id = getattr(connection, "conn_id", None)
            if conn_id is not None and fetched_id is not None and conn_id != fetched_id:
                raise SFTPPoolUsageError(
                    f"conn_id {conn_id!r} and connection {fetched_id!r} disagree; pass one of them"
                )
            conn_id = conn_id or fetched_id or "<connection object>"
        self.conn_id: str = conn_id or DEFAULT_CONN_ID
        self.max_connections = positive_int("max_connections", max_connections, error=SFTPPoolUsageError)
        self.sessions_per_connection = positive_int(
            "sessions_per_connection", sessions_per_connection, error=SFTPPoolUsageError
        )
        self.borrowers_per_session = positive_int(
            "borrowers_per_session", borrowers_per_session, error=SFTPPoolUsageError
        )
        self.max_parallel_connects = positive_int(
            "max_parallel_connects", max_parallel_connects, error=SFTPPoolUsageError
        )
        self.acquire_timeout = optional_seconds("acquire_timeout", acquire_timeout, error=SFTPPoolUsageError)
        self.idle_timeout = optional_seconds("idle_timeout", idle_timeout, error=SFTPPoolUsageError)
        self.max_lifetime = optional_seconds("max_lifetime", max_lifetime, error=SFTPPoolUsageError)
        self.health_check_after = seconds("health_check_after", health_check_after, error=SFTPPoolUsageError)
        self.health_check_timeout = seconds(
            "health_check_timeout", health_check_timeout, error=SFTPPoolUsageError
        )
        super().__init__(Connector(self.conn_id, connection, no_host_key_check=no_host_key_check))

    # -- public ---------------------------------------------------------------------------------

    @classmethod
    def shared(cls, conn_id: str = DEFAULT_CONN_ID, **options: Any) -> SFTPPool:
        """The pool for ``conn_id`` on the running event loop, created on first use.

        Made for ``.iterate()`` items: every item of a task run calls ``SFTPPool.shared("my_sftp")``
        and gets the same pool, because the items share one event loop. The pool closes itself
        when the loop shuts down (``asyncio.run`` cancels leftover tasks at its end; the pool's
        closing runs then), or earlier with :meth:`aclose`. ``options`` are the constructor's and
        apply when the pool is created; asking again with different ones is an error.
        """
        return _SHARED.get(conn_id, options, lambda: cls(conn_id, **options))

    def client(self, *, timeout: float | None = _DEFAULT) -> _ClientContext:
        """Borrow a client for an ``async with`` block: ``async with pool.client() as sftp: ...``.

        The ``asyncssh.SFTPClient`` is shared with other borrowers; do not close or exit it.
        Errors leaving the block decide the connection's fate: a transport error drops it, an SFTP
        status error (no such file, ...) keeps it, another ``OSError`` gets it checked.

        :param timeout: seconds to wait for a client; defaults to the pool's ``acquire_timeout``.
        """
        return _ClientContext(self, self.acquire_timeout if timeout is _DEFAULT else timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Close every connection; waiting borrowers get :class:`SFTPPoolClosedError`. Idempotent."""
        if self._loop is not None:
            self._check_loop()
        if not self._closed:
            if self._in_use:
                log.warning(
                    "SFTPPool(%r) closed while %d borrower(s) still hold a client; their operations fail",
                    self.conn_id,
                    self._in_use,
                )
            self._shut()
            _SHARED.closing(self)
        await self._settle()

    async def __aenter__(self) -> SFTPPool:
        self._check_loop()
        if self._closed:
            raise SFTPPoolClosedError(f"the SFTPPool for {self.conn_id!r} is closed")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        s = self.statistics()
        state = "closed" if self._closed else f"{s.connections} connection(s), {s.in_use} in use"
        return f"<SFTPPool {self.conn_id!r}: {state}>"


def _describe(options: dict[str, Any]) -> str:
    """Options for a message: numbers and flags as they are; a connection by its id, never its
    repr (the SDK's shows the password and the extras, private key included)."""
    shown = []
    for name, value in sorted(options.items()):
        if value is None or isinstance(value, (bool, int, float)):
            shown.append(f"{name}={value!r}")
        elif name == "connection":
            shown.append(f"connection=<connection {getattr(value, 'conn_id', None)!r}>")
        else:
            shown.append(f"{name}=<{type(value).__name__}>")
    return ", ".join(shown) or "none"


# The pools shared() made, per event loop and connection id.
_SHARED: PerLoop[SFTPPool] = PerLoop("SFTPPool", SFTPPoolUsageError, _describe)
