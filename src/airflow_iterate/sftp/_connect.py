"""Connecting with asyncssh: an SSH connection, its SFTP sessions, and what each server's reads mean.

Every session is opened ready for the transfer helpers: its writes batched and its requests made
through :class:`~._requests.Requests`.

Failures raise :class:`SFTPConnectError` saying what to fix (``_error_map`` words them).
:class:`Connector` is a pool's way to connect: it reads the Airflow connection once for all
attempts and tries transient failures again.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncssh

from ._error_map import connect_error
from ._errors import SFTPConnectError
from ._requests import SFTP_VERSION, Requests
from ._settings import ConnectionSettings, default_ciphers, load_settings

__all__ = [
    "Connector",
    "OpenedConnection",
    "open_connection",
    "open_session",
    "reads_whole_files",
]

log = logging.getLogger("airflow_iterate.sftp")

#: keepalives let a silently dead connection (a NAT or firewall dropping state) fail on its own
KEEPALIVE_INTERVAL = 30.0
#: how many times a transient connection failure (refused, reset, timed out) is retried before
#: the waiting borrowers are told, and the pauses in between
CONNECT_ATTEMPTS = 3
CONNECT_RETRY_DELAYS = (0.25, 1.0)


class _SessionRefused(SFTPConnectError):
    """The server would not open another channel on an established connection."""


class _Client(asyncssh.SSHClient):
    """Records the host key a server presented when it was not trusted; reports connection loss.

    With ``no_host_key_check`` (``settings.known_hosts_when_unchecked()`` set) it accepts the key
    of a host the known_hosts file does not list; a host listed there with another key is
    refused, as ``SSHHook`` does.
    """

    def __init__(
        self, on_lost: Callable[[Exception | None], None] | None, settings: ConnectionSettings | None = None
    ) -> None:
        self.presented_host_key: asyncssh.SSHKey | None = None
        self.on_lost = on_lost
        self._settings = settings

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        # Only called for keys that are not trusted: keep it for the error message.
        self.presented_host_key = key
        settings = self._settings
        if settings is not None and settings.known_hosts_when_unchecked() is not None:
            return not settings.lists_host(addr)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.on_lost is not None:
            self.on_lost(exc)


@dataclass
class OpenedConnection:
    ssh: asyncssh.SSHClientConnection
    #: its first SFTP session
    session: Requests

    @property
    def sftp(self) -> asyncssh.SFTPClient:
        return self.session.sftp


async def open_connection(
    settings: ConnectionSettings, on_lost: Callable[[Exception | None], None] | None = None
) -> OpenedConnection:
    """Connect, log in and start one SFTP session; failures raise :class:`SFTPConnectError`.

    ``on_lost`` is called (on the event loop) when the connection closes for any reason.
    """
    client = _Client(None, settings)
    options = asyncssh.SSHClientConnectionOptions(
        username=settings.username,
        password=settings.password,
        client_keys=_client_keys(settings),
        known_hosts=settings.known_hosts_arg(),
        connect_timeout=settings.connect_timeout,
        keepalive_interval=KEEPALIVE_INTERVAL,
        encryption_algs=list(settings.ciphers or default_ciphers()),
    )
    try:
        ssh = await asyncssh.connect(
            settings.host, settings.port, client_factory=lambda: client, options=options
        )
    except Exception as exc:
        raise connect_error(settings, exc, client.presented_host_key) from exc
    try:
        session = await open_session(settings, ssh)
    except BaseException:
        ssh.abort()
        raise
    client.on_lost = on_lost
    if ssh.is_closed() and on_lost is not None:  # lost between the handshake and now
        on_lost(None)
    return OpenedConnection(ssh, session)


async def open_session(settings: ConnectionSettings, ssh: asyncssh.SSHClientConnection) -> Requests:
    """Open one more SFTP session (an SSH channel running the sftp subsystem) on ``ssh``."""
    try:
        sftp = await asyncio.wait_for(
            ssh.start_sftp_client(sftp_version=SFTP_VERSION), settings.connect_timeout
        )
    except asyncssh.ChannelOpenError as exc:
        # Propagated as is: the pool tells "this connection has enough sessions" (OpenSSH's
        # MaxSessions) apart from a broken connection.
        raise _SessionRefused(
            f"{settings.describe()}: the server refused to open another SFTP session on a connection "
            f"({exc.reason or exc}); OpenSSH allows MaxSessions (default 10) per connection",
            conn_id=settings.conn_id,
            transient=True,
            overload=True,
        ) from exc
    except Exception as exc:
        raise connect_error(settings, exc, None, opening_session=True) from exc
    whole_reads = _reads_whole_files(ssh, sftp)
    if whole_reads:
        _WHOLE_READ_SESSIONS.add(sftp)
    try:
        return Requests(sftp, whole_reads=whole_reads)
    except BaseException:
        sftp.exit()
        raise


# Sessions whose server answers a read of a regular file with everything up to the length asked for.
_WHOLE_READ_SESSIONS: weakref.WeakSet[asyncssh.SFTPClient] = weakref.WeakSet()


def _reads_whole_files(ssh: asyncssh.SSHClientConnection, sftp: asyncssh.SFTPClient) -> bool:
    # OpenSSH's sftp-server serves a read with one read(2) of at most its announced maximum read
    # length, so a shorter answer is the end of the file. Other servers may answer less than asked
    # anywhere in a file, and OpenSSH releases without the limits extension capped reads
    # without saying so; neither qualifies. The extension is not public in asyncssh: without it, the
    # attribute lookup fails safe.
    server = str(ssh.get_extra_info("server_version") or "")
    handler = getattr(sftp, "_handler", None)
    return server.startswith("SSH-2.0-OpenSSH_") and getattr(handler, "_supports_limits", False) is True


def reads_whole_files(sftp: asyncssh.SFTPClient) -> bool:
    """Whether a read shorter than asked for, at any offset, means the file ended there."""
    return sftp in _WHOLE_READ_SESSIONS


def _client_keys(settings: ConnectionSettings) -> Any:
    if settings.client_key is not None:
        return [settings.client_key]
    # () lets asyncssh use ~/.ssh keys and the agent, as the provider does; None disables keys.
    return () if settings.look_for_keys else None


class Connector:
    """Opens the connections of one pool: one read of the Airflow connection, transient failures retried.

    :param conn_id: the connection id, read through the Airflow SDK unless ``connection`` is given.
    :param connection: an already fetched Airflow ``Connection``.
    """

    def __init__(self, conn_id: str, connection: Any, *, no_host_key_check: bool | None) -> None:
        self.conn_id = conn_id
        self._connection_object = connection
        self._no_host_key_check = no_host_key_check
        #: the settings once read; sessions are opened with the ones their connection used
        self.settings: ConnectionSettings | None = None
        self._settings_task: asyncio.Task[ConnectionSettings] | None = None
        #: failed attempts over the pool's life, and the last one's error (None after a success)
        self.failures = 0
        self.last_error: SFTPConnectError | None = None

    async def connect(
        self, on_lost: Callable[[Exception | None], None], *, retry: Callable[[], bool]
    ) -> OpenedConnection:
        """:func:`open_connection`, trying a transient failure again (``CONNECT_ATTEMPTS`` in all)
        while ``retry()`` says the connection is still wanted; raises the last failure."""
        attempt = 0
        while True:
            attempt += 1
            try:
                settings = await self._get_settings()
                opened = await open_connection(settings, on_lost)
            except Exception as exc:
                error = exc if isinstance(exc, SFTPConnectError) else self._unexpected(exc)
                self.failures += 1
                self.last_error = error
                if error.transient and attempt < CONNECT_ATTEMPTS and retry():
                    delay = CONNECT_RETRY_DELAYS[min(attempt, len(CONNECT_RETRY_DELAYS)) - 1]
                    log.info("%s; retrying in %.2fs", error, delay)
                    await asyncio.sleep(delay)
                    continue
            else:
                self.last_error = None
                return opened
            raise error

    def cancel(self) -> None:
        """Stop a read of the Airflow connection in progress (the pool is closing)."""
        if self._settings_task is not None:
            self._settings_task.cancel()

    async def _get_settings(self) -> ConnectionSettings:
        if self.settings is not None:
            return self.settings
        if self._settings_task is None or self._settings_task.done():
            # One read of the Airflow connection, shared by concurrent connection attempts; a
            # failed read is not kept, the next attempt reads again.
            self._settings_task = asyncio.ensure_future(
                load_settings(
                    None if self._connection_object is not None else self.conn_id,
                    self._connection_object,
                    no_host_key_check=self._no_host_key_check,
                )
            )
            self._settings_task.add_done_callback(_retrieve)
        settings = await asyncio.shield(self._settings_task)
        self.settings = settings
        return settings

    def _unexpected(self, exc: Exception) -> SFTPConnectError:
        if self.settings is None:
            return SFTPConnectError(
                f"SFTP connection {self.conn_id!r}: cannot read the connection: {type(exc).__name__}: {exc}",
                conn_id=self.conn_id,
            )
        return connect_error(self.settings, exc, None)


def _retrieve(task: asyncio.Future[Any]) -> None:
    # Whoever awaited it saw the error; this keeps asyncio from reporting it as never retrieved.
    if not task.cancelled():
        task.exception()
