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
* the pool itself queues the borrowers, picks a session for each, grows, runs the timer that
  expires connections, and counts.

Capacity grows only under demand: a borrower that finds no free slot queues (FIFO) and the pool
opens a session on an existing connection, or a new connection (at most ``max_parallel_connects``
handshakes at a time, up to ``max_connections``), only when the queue is longer than what is
already being opened. Freed slots go straight to the oldest waiter, so nobody is overtaken.

Connections and sessions are opened, health-checked and closed by tasks the pool owns, never in
a borrower's task: a borrower cancelled at any point only leaves the queue or gives its slot
back, so cancellation cannot leak a slot or a half-open connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import itertools
import logging
import weakref
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Final

import asyncssh

from .._core._validate import optional_seconds, positive_int, seconds
from ._connect import Connector
from ._errors import SFTPAcquireTimeout, SFTPConnectError, SFTPPoolClosedError, SFTPPoolUsageError
from ._holders import CLOSE_TIMEOUT, ConnectionHolder, SessionHolder, SessionState
from ._statistics import Counters, PoolStatistics

__all__ = ["SFTPPool"]

log = logging.getLogger("airflow_iterate.sftp")

DEFAULT_CONN_ID = "sftp_default"
#: after a failed connection attempt while other connections work, wait this long (doubling up
#: to the maximum) before trying to add one again
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 30.0
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


# Pools created by SFTPPool.shared(), per event loop; an entry goes away with its loop.
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SFTPPool]] = (
    weakref.WeakKeyDictionary()
)


class SFTPPool:
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
        connect) before :class:`SFTPAcquireTimeout`; ``None`` waits forever. ``pool.client()``
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
        self._connector = Connector(self.conn_id, connection, no_host_key_check=no_host_key_check)

        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):  # created outside a loop: bound on first use
            self._loop = asyncio.get_running_loop()
        self._shared_options: dict[str, Any] = {}
        self._connections: list[ConnectionHolder] = []
        self._waiters: collections.deque[asyncio.Future[SessionHolder]] = collections.deque()
        self._workers: set[asyncio.Task[Any]] = set()
        self._closers: set[asyncio.Task[Any]] = set()
        self._numbers = itertools.count(1)
        self._opening_connections = 0
        self._opening_sessions = 0
        self._in_use = 0
        self._closed = False
        self._backoff = 0.0
        self._backoff_until = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._counters = Counters()

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
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise SFTPPoolUsageError("SFTPPool.shared() must be called from async code") from None
        pools = _SHARED.setdefault(loop, {})
        pool = pools.get(conn_id)
        if pool is not None and not pool._closed:
            if options and options != pool._shared_options:
                raise SFTPPoolUsageError(
                    f"the shared SFTPPool for {conn_id!r} on this event loop was created with options "
                    f"{pool._shared_options!r}, not {options!r}; pass the same options everywhere"
                )
            return pool
        pool = cls(conn_id, **options)
        pool._shared_options = dict(options)
        pools[conn_id] = pool
        pool._keeper = loop.create_task(_close_when_loop_ends(pool), name=f"SFTPPool({conn_id!r}) keeper")
        return pool

    def client(self, *, timeout: float | None = _DEFAULT) -> _ClientContext:
        """Borrow a client for an ``async with`` block: ``async with pool.client() as sftp: ...``.

        The ``asyncssh.SFTPClient`` is shared with other borrowers; do not close or exit it.
        Errors leaving the block decide the connection's fate (see the module docstring).

        :param timeout: seconds to wait for a client; defaults to the pool's ``acquire_timeout``.
        """
        return _ClientContext(self, self.acquire_timeout if timeout is _DEFAULT else timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> PoolStatistics:
        connections = list(self._connections)
        counters = self._counters
        return PoolStatistics(
            conn_id=self.conn_id,
            connections=len(connections),
            sessions=sum(len(c.sessions) for c in connections),
            opening=self._opening_connections + self._opening_sessions,
            in_use=self._in_use,
            idle=sum(1 for c in connections if c.borrowers == 0),
            waiting=len(self._waiters),
            opened=counters.opened,
            reused=counters.reused,
            discarded=counters.discarded,
            expired=counters.expired,
            waits=counters.waits,
            acquired=counters.acquired,
            health_checks=counters.health_checks,
            connect_failures=self._connector.failures,
        )

    async def aclose(self) -> None:
        """Close every connection; waiting borrowers get :class:`SFTPPoolClosedError`. Idempotent."""
        if self._loop is not None:
            self._check_loop()
        if not self._closed:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._in_use:
                log.warning(
                    "SFTPPool(%r) closed while %d borrower(s) still hold a client; their operations fail",
                    self.conn_id,
                    self._in_use,
                )
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(SFTPPoolClosedError(f"the SFTPPool for {self.conn_id!r} was closed"))
            for conn in list(self._connections):
                conn.close()
            current = asyncio.current_task()
            for task in self._workers:
                if task is not current:
                    task.cancel()
            self._connector.cancel()
            if self._keeper is not None and self._keeper is not current:
                self._keeper.cancel()
        pending = [t for t in (*self._workers, *self._closers) if t is not asyncio.current_task()]
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_TIMEOUT)

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

    # -- acquire / release ------------------------------------------------------------------------

    def _check_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise SFTPPoolUsageError(
                f"the SFTPPool for {self.conn_id!r} belongs to the event loop it was first used on and "
                "cannot be used from another one; create a pool per event loop (SFTPPool.shared() does)"
            )
        return loop

    async def _acquire(self, timeout: float | None) -> SessionHolder:
        if self._closed:
            raise SFTPPoolClosedError(f"the SFTPPool for {self.conn_id!r} is closed")
        loop = self._check_loop()
        if not self._waiters:
            session = self._pick(loop.time())
            if session is not None:
                self._reserve(session)
                self._counters.acquired += 1
                return session
        deadline = None if timeout is None else loop.time() + timeout
        self._counters.waits += 1
        retrying = False
        while True:
            waiter: asyncio.Future[SessionHolder] = loop.create_future()
            if retrying:
                self._waiters.appendleft(waiter)  # keeps its turn
            else:
                self._waiters.append(waiter)
            self._dispatch()
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                done, _ = await asyncio.wait((waiter,), timeout=remaining)
            except BaseException:
                self._abandon(waiter)
                raise
            if not done:
                self._abandon(waiter)
                raise self._timeout_error(timeout)
            session = waiter.result()  # raises what the pool failed the waiter with
            if session.state is not SessionState.CLOSED:
                self._counters.acquired += 1
                return session
            # The session broke between being handed over and this task resuming: try again.
            self._release(session, None, used=False)
            retrying = True

    def _abandon(self, waiter: asyncio.Future[SessionHolder]) -> None:
        """A waiter gives up (cancelled or timed out): leave the queue, or pass on its slot."""
        if waiter.done():
            if not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result(), None, used=False)
            return
        waiter.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def _pick(self, now: float) -> SessionHolder | None:
        best: SessionHolder | None = None
        limit = self.borrowers_per_session
        for conn in self._connections:
            if not conn.lendable:
                continue
            for session in conn.sessions:
                if session.state is not SessionState.READY or session.borrowers >= limit:
                    continue
                if session.needs_check(now, self.health_check_after):
                    session.start_check()
                    continue
                if best is None or session.borrowers < best.borrowers:
                    best = session
        return best

    def _reserve(self, session: SessionHolder) -> None:
        self._in_use += 1
        if session.reserve():
            self._counters.reused += 1

    def _release(self, session: SessionHolder, exc: BaseException | None, *, used: bool = True) -> None:
        self._in_use -= 1
        assert self._loop is not None
        session.release(exc, self._loop.time(), used=used)
        self._dispatch()

    def _timeout_error(self, timeout: float | None) -> SFTPAcquireTimeout:
        s = self.statistics()
        message = (
            f"timed out after {timeout:g}s waiting for an SFTP client of connection {self.conn_id!r}: "
            f"{s.in_use} borrower(s) on {s.connections} connection(s) (max_connections="
            f"{self.max_connections}, {self.borrowers_per_session} borrowers per session), "
            f"{s.waiting} still waiting"
        )
        if self._connector.last_error is not None:
            message += f"; the last connection attempt failed: {self._connector.last_error}"
        return SFTPAcquireTimeout(
            message + "; raise acquire_timeout or max_connections, or lower the concurrency"
        )

    # -- capacity -------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Hand free slots to waiters in arrival order, then open what the rest need."""
        if self._closed:
            return
        assert self._loop is not None
        now = self._loop.time()
        while self._waiters:
            session = self._pick(now)
            if session is None:
                break
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self._reserve(session)
            waiter.set_result(session)
        if self._waiters:
            self._grow(now)
        self._schedule_maintenance(now)

    def _grow(self, now: float) -> None:
        per_session = self.borrowers_per_session
        coming = (self._opening_connections + self._opening_sessions) * per_session
        for conn in self._connections:
            for session in conn.sessions:
                if session.state is SessionState.CHECKING:
                    coming += per_session - session.borrowers
        unserved = len(self._waiters)
        working = [c for c in self._connections if c.lendable]
        if self._backoff_until > now and working:
            return  # a recent attempt failed; the working connections serve meanwhile
        while unserved > coming:
            roomy = next((c for c in working if c.room_for_session()), None)
            if roomy is not None:
                roomy.expect_session()
                self._opening_sessions += 1
                self._spawn(self._add_session(roomy))
            elif (
                len(self._connections) + self._opening_connections < self.max_connections
                and self._opening_connections < self.max_parallel_connects
            ):
                self._opening_connections += 1
                self._spawn(self._open_connection())
            else:
                return
            coming += per_session

    async def _open_connection(self) -> None:
        conn = ConnectionHolder(self, next(self._numbers), self.sessions_per_connection)
        try:
            await conn.connect(self._connector, retry=lambda: bool(self._waiters) and not self._closed)
        except SFTPConnectError as error:
            self._opening_connections -= 1
            self._connect_failed(error)
            return
        except BaseException:
            self._opening_connections -= 1
            raise
        self._opening_connections -= 1
        if self._closed:
            conn.abort()
            return
        self._connections.append(conn)
        self._counters.opened += 1
        self._backoff = 0.0
        self._backoff_until = 0.0
        log.debug("SFTPPool(%r): connection #%d open", self.conn_id, conn.number)
        if conn.ssh is not None and conn.ssh.is_closed():
            conn.lost(None)  # lost between the handshake and now, before anyone listened
        self._dispatch()

    def _connect_failed(self, error: SFTPConnectError) -> None:
        assert self._loop is not None
        if self._closed:
            return
        working = any(c.lendable for c in self._connections)
        if not working and not self._opening_connections:
            # Nothing else will serve the queue: every waiter learns why (its own copy, so that
            # concurrent raises do not share one traceback).
            waiters, self._waiters = self._waiters, collections.deque()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(_copy_error(error))
        else:
            self._backoff = min(max(self._backoff * 2, BACKOFF_INITIAL), BACKOFF_MAX)
            self._backoff_until = self._loop.time() + self._backoff
            log.warning("%s; adding connections again in %.1fs at the earliest", error, self._backoff)
        self._dispatch()

    async def _add_session(self, conn: ConnectionHolder) -> None:
        settings = self._connector.settings
        assert settings is not None
        try:
            await conn.open_session(settings)
        finally:
            self._opening_sessions -= 1
        self._dispatch()

    def _forget(self, conn: ConnectionHolder) -> None:
        with contextlib.suppress(ValueError):
            self._connections.remove(conn)
        if conn.closing is not None:
            self._closers.add(conn.closing)
            conn.closing.add_done_callback(self._closers.discard)

    # -- idle timeout and lifetime ----------------------------------------------------------------

    def _schedule_maintenance(self, now: float) -> None:
        expiries = (c.next_expiry(now, self.idle_timeout, self.max_lifetime) for c in self._connections)
        times = [t for t in expiries if t is not None]
        if self._waiters and self._backoff_until > now:
            times.append(self._backoff_until)
        due = min(times, default=None)
        if due is None or (self._timer_at is not None and self._timer_at <= due):
            return
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer_at = due
        self._timer = self._loop.call_at(due, self._maintain)

    def _maintain(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closed:
            return
        assert self._loop is not None
        now = self._loop.time()
        for conn in list(self._connections):
            conn.expire_if_due(now, self.idle_timeout, self.max_lifetime)
        self._dispatch()

    # -- tasks ----------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._workers.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._workers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("SFTPPool(%r): internal task failed", self.conn_id, exc_info=task.exception())


async def _close_when_loop_ends(pool: SFTPPool) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        # asyncio.run() cancels leftover tasks before closing the loop: close the pool then.
        await pool.aclose()


def _copy_error(error: SFTPConnectError) -> SFTPConnectError:
    clone = copy.copy(error)
    clone.__cause__ = error.__cause__
    return clone
