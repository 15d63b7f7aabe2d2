"""How an :class:`SFTPPool` lends its sessions: FIFO waiters, the choice of a session, growth, expiry.

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
from collections.abc import Coroutine
from typing import Any

from ._connect import Connector
from ._errors import SFTPAcquireTimeoutError, SFTPConnectError, SFTPPoolClosedError, SFTPPoolUsageError
from ._holders import CLOSE_TIMEOUT, ConnectionHolder, SessionHolder, SessionState
from ._statistics import Counters, PoolStatistics

__all__ = ["Lender"]

log = logging.getLogger("airflow_iterate.sftp")

#: after a failed connection attempt while other connections work, wait this long (doubling up
#: to the maximum) before trying to add one again
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 30.0


class Lender:
    """The machinery of :class:`SFTPPool` (its base class): lends sessions to borrowers, grows,
    expires connections on a timer, and counts. The holders see it as their
    :class:`~._holders.Owner`."""

    # The options it follows, set and checked by SFTPPool's constructor.
    conn_id: str
    max_connections: int
    sessions_per_connection: int
    borrowers_per_session: int
    max_parallel_connects: int
    idle_timeout: float | None
    max_lifetime: float | None
    health_check_after: float
    health_check_timeout: float

    def __init__(self, connector: Connector) -> None:
        self._connector = connector
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):  # created outside a loop: bound on first use
            self._loop = asyncio.get_running_loop()
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
        self._counters = Counters()

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

    def _shut(self) -> None:
        """Lend nothing more: fail the waiters, close every connection, stop the pool's tasks."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
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

    async def _settle(self) -> None:
        """Wait, ``CLOSE_TIMEOUT`` at most, for the pool's tasks and closing connections to end."""
        pending = [t for t in (*self._workers, *self._closers) if t is not asyncio.current_task()]
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_TIMEOUT)

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

    def _try_acquire(self) -> SessionHolder | None:
        """A session with room, reserved, when one is free and nobody queues; else None (then
        :meth:`_acquire` waits, or raises what it must). No coroutine, no future: the borrow of
        every transfer helper starts here."""
        loop = self._loop
        if self._closed or self._waiters or loop is None or asyncio.get_running_loop() is not loop:
            return None
        session = self._pick(loop.time())
        if session is not None:
            self._reserve(session)
            self._counters.acquired += 1
        return session

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
        if (
            self._waiters
            or exc is not None
            or session.conn.borrowers == 0
            or session.state is not SessionState.READY
            or not session.conn.lendable
        ):
            self._dispatch()
        # else nobody waits and nothing the expiry timer goes by changed (a connection's idle time
        # starts when its last borrower leaves): no need to look at every connection again

    def _timeout_error(self, timeout: float | None) -> SFTPAcquireTimeoutError:
        s = self.statistics()
        message = (
            f"timed out after {timeout:g}s waiting for an SFTP client of connection {self.conn_id!r}: "
            f"{s.in_use} borrower(s) on {s.connections} connection(s) (max_connections="
            f"{self.max_connections}, {self.borrowers_per_session} borrowers per session), "
            f"{s.waiting} still waiting"
        )
        if self._connector.last_error is not None:
            message += f"; the last connection attempt failed: {self._connector.last_error}"
        return SFTPAcquireTimeoutError(
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


def _copy_error(error: SFTPConnectError) -> SFTPConnectError:
    clone = copy.copy(error)
    clone.__cause__ = error.__cause__
    return clone
