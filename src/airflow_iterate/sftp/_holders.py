"""The holders of an :class:`SFTPPool`: one per SSH connection, one per SFTP session on it.

After asyncpg's ``PoolConnectionHolder``: each holder has an explicit state and opens, checks,
retires and closes itself; its counters change only in its own methods. The pool chooses among
them, queues the borrowers and decides when to grow.

* :class:`ConnectionHolder` holds one SSH connection and its SFTP sessions (SSH channels running
  the sftp subsystem; at most ``sessions_per_connection``, and never more than the server allows:
  a refused channel lowers the connection's limit, as OpenSSH's ``MaxSessions`` would require).
  CONNECTING, then READY; DRAINING once past ``max_lifetime`` (no new borrowers, closed when the
  last leaves); CLOSED when dropped as broken, idle too long, drained or the pool closes.
* :class:`SessionHolder` holds one SFTP session (an ``asyncssh.SFTPClient`` and the
  :class:`~._requests.Requests` the transfer helpers make on it) and counts its borrowers, at most
  ``borrowers_per_session`` at a time. READY, CHECKING while it answers a health check (lent to
  nobody meanwhile), CLOSED with its connection.

Health: a connection whose transport closes is dropped at once (asyncssh reports it); a session
idle for ``health_check_after`` seconds answers one SFTP round trip before it is lent again; a
borrower leaving with a transport error drops its connection, one leaving with an SFTP status
error (no such file, permission denied, ...) keeps it, and one leaving with another ``OSError``
(could be local, could be the link) gets the connection checked rather than closed under the
other borrowers multiplexed on it; so does a cancelled borrower (typically a caller's timeout)
whose session has answered nobody for a second. A session under check is lent to nobody, so a
hung connection stops taking new work within ``health_check_timeout``. Connections are closed
after ``idle_timeout`` seconds unused and retired after ``max_lifetime`` seconds.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import asyncssh

from ._connect import Connector, _SessionRefused, open_session
from ._error_map import is_transport_error
from ._errors import SFTPPoolError
from ._requests import Requests
from ._settings import ConnectionSettings
from ._statistics import Counters

__all__ = ["CLOSE_TIMEOUT", "ConnectionHolder", "ConnectionState", "Owner", "SessionHolder", "SessionState"]

log = logging.getLogger("airflow_iterate.sftp")

#: a borrower cancelled on a session that has not answered anyone for this long gets it checked
QUIET_BEFORE_CHECK = 1.0
#: how long a closing connection may take to say goodbye before it is aborted
CLOSE_TIMEOUT = 5.0


class ConnectionState(enum.Enum):
    CONNECTING = "connecting"
    READY = "ready"
    #: past ``max_lifetime``: lent to nobody new, closed when its last borrower leaves
    DRAINING = "draining"
    CLOSED = "closed"


class SessionState(enum.Enum):
    READY = "ready"
    #: answering a health check: lent to nobody until it has
    CHECKING = "checking"
    CLOSED = "closed"


class Owner(Protocol):
    """What the holders need from their pool."""

    conn_id: str
    health_check_timeout: float
    _counters: Counters

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` in a task the pool owns (cancelled when it closes)."""

    def _dispatch(self) -> None:
        """Something changed: hand free slots to the waiters, open what they still need."""

    def _forget(self, conn: ConnectionHolder) -> None:
        """``conn`` closed: drop it (the pool still waits for its ``closing`` when it closes)."""


class SessionHolder:
    """One SFTP session: lent to up to ``borrowers_per_session`` borrowers at once."""

    __slots__ = (
        "_check",
        "_just_verified",
        "borrowers",
        "conn",
        "requests",
        "served",
        "sftp",
        "state",
        "verified_at",
    )

    def __init__(self, conn: ConnectionHolder, requests: Requests, now: float) -> None:
        self.conn = conn
        self.requests = requests
        self.sftp: asyncssh.SFTPClient = requests.sftp
        self.state = SessionState.READY
        self.borrowers = 0
        self.served = 0
        #: when the session last proved to work (opened, an operation answered, a health check)
        self.verified_at = now
        # Proved to work and not lent since: the next borrower needs no check, however old.
        self._just_verified = True
        self._check: asyncio.Task[None] | None = None

    def needs_check(self, now: float, after: float) -> bool:
        """Whether the session has been idle too long to be lent unchecked."""
        return self.borrowers == 0 and now - self.verified_at >= after and not self._just_verified

    def reserve(self) -> bool:
        """Lend the session to one more borrower; true when it served an earlier one."""
        self.borrowers += 1
        self._just_verified = False
        self.conn.lent()
        self.served += 1
        return self.served > 1

    def release(self, exc: BaseException | None, now: float, *, used: bool = True) -> None:
        """A borrower leaves, with the exception that ended its block if any.

        ``used`` is false for a slot given back unused (its borrower gave up before resuming):
        that says nothing about the session's health.
        """
        self.borrowers -= 1
        self.conn.returned(now)
        if self.state is not SessionState.CLOSED and used:
            if exc is None or (isinstance(exc, asyncssh.SFTPError) and not is_transport_error(exc)):
                self.verified_at = now
            elif is_transport_error(exc):
                self.conn.discard(f"{type(exc).__name__}: {exc}")
            elif isinstance(exc, (OSError, asyncio.TimeoutError)) and not isinstance(exc, SFTPPoolError):
                # Could be the link (a reset, a timeout) or a local file: ask the session.
                self.start_check()
            elif isinstance(exc, asyncio.CancelledError) and now - self.verified_at > QUIET_BEFORE_CHECK:
                # Often a caller's timeout around a hung operation. A session that keeps answering
                # others needs no check; one that has been silent this long might be hung.
                self.start_check()
        self.conn.close_if_drained()

    def start_check(self) -> None:
        """Lend the session to nobody until it has answered one SFTP round trip."""
        if self.state is SessionState.READY:
            self.state = SessionState.CHECKING
            self._check = self.conn.owner._spawn(self._health_check())

    def close(self, current: asyncio.Task[Any] | None) -> None:
        """Mark the session closed with its connection; a health check under way is cancelled,
        unless it is ``current``, the task doing the closing."""
        self.state = SessionState.CLOSED
        if self._check is not None and self._check is not current:
            self._check.cancel()

    async def _health_check(self) -> None:
        owner = self.conn.owner
        owner._counters.health_checks += 1
        try:
            await asyncio.wait_for(self.sftp.realpath("."), owner.health_check_timeout)
        except asyncio.CancelledError:
            self._check_ended()
            raise
        except Exception as exc:
            self._check_ended()
            self.conn.discard(f"health check failed: {type(exc).__name__}: {exc}")
        else:
            self._check_ended()
            self.verified_at = asyncio.get_running_loop().time()
            self._just_verified = True
        owner._dispatch()

    def _check_ended(self) -> None:
        self._check = None
        if self.state is SessionState.CHECKING:
            self.state = SessionState.READY


class ConnectionHolder:
    """One SSH connection and the SFTP sessions opened on it."""

    __slots__ = (
        "borrowers",
        "closing",
        "created",
        "idle_since",
        "max_sessions",
        "number",
        "opening_sessions",
        "owner",
        "sessions",
        "ssh",
        "state",
    )

    def __init__(self, owner: Owner, number: int, max_sessions: int) -> None:
        self.owner = owner
        self.number = number
        self.state = ConnectionState.CONNECTING
        self.ssh: asyncssh.SSHClientConnection | None = None
        self.sessions: list[SessionHolder] = []
        self.opening_sessions = 0
        self.max_sessions = max_sessions
        self.borrowers = 0
        self.created = 0.0
        self.idle_since = 0.0
        #: waits for the server to acknowledge the close (aborts after ``CLOSE_TIMEOUT``)
        self.closing: asyncio.Task[None] | None = None

    @property
    def lendable(self) -> bool:
        return self.state is ConnectionState.READY

    @property
    def busy(self) -> bool:
        """Borrowed, opening a session or checking one: not to be closed for idleness or age."""
        return bool(
            self.borrowers
            or self.opening_sessions
            or any(s.state is SessionState.CHECKING for s in self.sessions)
        )

    # -- opening --------------------------------------------------------------------------------

    async def connect(self, connector: Connector, *, retry: Callable[[], bool]) -> None:
        """Connect with its first session and become READY; raises ``SFTPConnectError``."""
        opened = await connector.connect(self.lost, retry=retry)
        now = asyncio.get_running_loop().time()
        self.ssh = opened.ssh
        self.created = self.idle_since = now
        self.sessions.append(SessionHolder(self, opened.session, now))
        self.state = ConnectionState.READY

    def room_for_session(self) -> bool:
        return len(self.sessions) + self.opening_sessions < self.max_sessions

    def expect_session(self) -> None:
        """Count a session about to be opened by :meth:`open_session`, before its task runs, so
        that the pool does not ask for more than the connection can take."""
        self.opening_sessions += 1

    async def open_session(self, settings: ConnectionSettings) -> None:
        """Open the session counted by :meth:`expect_session`."""
        assert self.ssh is not None
        try:
            session = await open_session(settings, self.ssh)
        except _SessionRefused as exc:
            # The server's MaxSessions: this connection has all the sessions it can get.
            self.max_sessions = max(1, len(self.sessions))
            log.info("%s; keeping %d session(s) on connection #%d", exc, self.max_sessions, self.number)
            return
        except Exception as exc:
            self.discard(f"opening a session failed: {exc}")
            return
        finally:
            self.opening_sessions -= 1
        if self.state is ConnectionState.CLOSED:
            session.sftp.exit()
        else:
            self.sessions.append(SessionHolder(self, session, asyncio.get_running_loop().time()))

    # -- lending --------------------------------------------------------------------------------

    def lent(self) -> None:
        self.borrowers += 1

    def returned(self, now: float) -> None:
        self.borrowers -= 1
        if self.borrowers == 0:
            self.idle_since = now

    # -- ageing ---------------------------------------------------------------------------------

    def next_expiry(self, now: float, idle_timeout: float | None, max_lifetime: float | None) -> float | None:
        """When :meth:`expire_if_due` may next have something to do; None: not before it changes."""
        times = []
        if self.state is ConnectionState.DRAINING and not self.busy:
            times.append(now)  # retired while a check or a session open kept it: close it now
        if max_lifetime is not None and self.state is not ConnectionState.DRAINING:
            times.append(self.created + max_lifetime)
        if idle_timeout is not None and self.borrowers == 0:
            times.append(self.idle_since + idle_timeout)
        return min(times, default=None)

    def expire_if_due(self, now: float, idle_timeout: float | None, max_lifetime: float | None) -> None:
        """Retire after ``max_lifetime``; close once unused for ``idle_timeout``, or drained."""
        if max_lifetime is not None and now - self.created >= max_lifetime:
            self.retire()
        if self.busy:
            return
        idle_expired = idle_timeout is not None and now - self.idle_since >= idle_timeout
        if self.state is ConnectionState.DRAINING or idle_expired:
            self.expire()

    def retire(self) -> None:
        if self.state is ConnectionState.READY:
            self.state = ConnectionState.DRAINING

    def close_if_drained(self) -> None:
        if self.state is ConnectionState.DRAINING and self.borrowers == 0:
            self.expire()

    # -- closing --------------------------------------------------------------------------------

    def lost(self, exc: Exception | None) -> None:
        """asyncssh's report that the connection closed, for any reason."""
        if self.state in (ConnectionState.READY, ConnectionState.DRAINING):
            self.discard(f"connection lost ({exc or 'closed by the server'})")
            self.owner._dispatch()

    def discard(self, reason: str) -> None:
        """Close a broken connection; its borrowers' operations fail."""
        if self.state is ConnectionState.CLOSED:
            return
        self.owner._counters.discarded += 1
        log.info("SFTPPool(%r): dropping connection #%d: %s", self.owner.conn_id, self.number, reason)
        self.close()

    def expire(self) -> None:
        self.owner._counters.expired += 1
        log.debug("SFTPPool(%r): closing connection #%d (idle or too old)", self.owner.conn_id, self.number)
        self.close()

    def close(self) -> None:
        if self.state is ConnectionState.CLOSED:
            return
        self.state = ConnectionState.CLOSED
        current = asyncio.current_task()
        for session in self.sessions:
            session.close(current)
        if self.ssh is not None:
            self.ssh.close()
            self.closing = asyncio.ensure_future(_wait_closed(self.ssh))
        self.owner._forget(self)

    def abort(self) -> None:
        """Drop a connection that opened after its pool closed."""
        self.state = ConnectionState.CLOSED
        if self.ssh is not None:
            self.ssh.abort()


async def _wait_closed(ssh: asyncssh.SSHClientConnection) -> None:
    try:
        await asyncio.wait_for(ssh.wait_closed(), CLOSE_TIMEOUT)
    except (asyncio.TimeoutError, OSError, asyncssh.Error):
        ssh.abort()
