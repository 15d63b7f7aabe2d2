"""Connecting with asyncssh: an SSH connection, its SFTP sessions, and what each server's reads mean.

Failures raise :class:`SFTPConnectError` saying what to fix (``_error_map`` words them).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncssh

from ._error_map import connect_error
from ._errors import SFTPConnectError
from ._settings import ConnectionSettings, default_ciphers

__all__ = ["OpenedConnection", "SessionRefused", "open_connection", "open_session", "reads_whole_files"]

#: keepalives let a silently dead connection (a NAT or firewall dropping state) fail on its own
KEEPALIVE_INTERVAL = 30.0


class SessionRefused(SFTPConnectError):
    """The server would not open another channel on an established connection."""


class _Client(asyncssh.SSHClient):
    """Records the host key a server presented when it was not trusted; reports connection loss."""

    def __init__(self, on_lost: Callable[[Exception | None], None] | None) -> None:
        self.presented_host_key: asyncssh.SSHKey | None = None
        self.on_lost = on_lost

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        # Only called for keys that are not trusted: keep it for the error message, trust nothing.
        self.presented_host_key = key
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.on_lost is not None:
            self.on_lost(exc)


@dataclass
class OpenedConnection:
    ssh: asyncssh.SSHClientConnection
    sftp: asyncssh.SFTPClient


async def open_connection(
    settings: ConnectionSettings, on_lost: Callable[[Exception | None], None] | None = None
) -> OpenedConnection:
    """Connect, log in and start one SFTP session; failures raise :class:`SFTPConnectError`.

    ``on_lost`` is called (on the event loop) when the connection closes for any reason.
    """
    client = _Client(None)
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
        sftp = await open_session(settings, ssh)
    except BaseException:
        ssh.abort()
        raise
    client.on_lost = on_lost
    if ssh.is_closed() and on_lost is not None:  # lost between the handshake and now
        on_lost(None)
    return OpenedConnection(ssh, sftp)


async def open_session(
    settings: ConnectionSettings, ssh: asyncssh.SSHClientConnection
) -> asyncssh.SFTPClient:
    """Open one more SFTP session (an SSH channel running the sftp subsystem) on ``ssh``."""
    try:
        sftp = await asyncio.wait_for(ssh.start_sftp_client(), settings.connect_timeout)
    except asyncssh.ChannelOpenError as exc:
        # Propagated as is: the pool tells "this connection has enough sessions" (OpenSSH's
        # MaxSessions) apart from a broken connection.
        raise SessionRefused(
            f"{settings.describe()}: the server refused to open another SFTP session on a connection "
            f"({exc.reason or exc}); OpenSSH allows MaxSessions (default 10) per connection",
            conn_id=settings.conn_id,
            transient=True,
        ) from exc
    except Exception as exc:
        raise connect_error(settings, exc, None, opening_session=True) from exc
    if _reads_whole_files(ssh, sftp):
        _WHOLE_READ_SESSIONS.add(sftp)
    return sftp


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
