"""Which of the exceptions in ``_errors`` a failure becomes, with a message saying what to fix.

Kept next to the exception tree, as one place to read how asyncssh's, the socket layer's and the
server's errors are reported: a failure to connect becomes an :class:`SFTPConnectError` naming
the connection id and the setting to change; a failed file operation becomes the
:class:`SFTPTransferError` subclass that means the same thing as a builtin (not found, permission,
connection lost), naming the operation, the file and the connection id.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Literal

import asyncssh

from .._core import is_permanent_error
from ._errors import (
    SFTPConnectError,
    SFTPConnectionLostError,
    SFTPFileNotFoundError,
    SFTPPermissionError,
    SFTPTransferError,
)
from ._settings import DEFAULT_KNOWN_HOSTS, ConnectionSettings

__all__ = [
    "FailureKind",
    "connect_error",
    "failure",
    "is_transport_error",
    "transfer_error",
]


class _UnusableFile(Exception):
    """A file that cannot be transferred as it is (not a regular file, changed while it was read, a
    local link in the way); the message says what, :func:`transfer_error` names the file.

    Not an ``OSError`` nor an SFTP error: leaving a borrowed client with it says nothing about the
    connection, which stays in use. Permanent unless ``permanent=False`` (a file that changed while
    it was read is complete on a later attempt).
    """

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.iterate_permanent = permanent


_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    asyncssh.DisconnectError,  # includes ConnectionLost
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,
    asyncssh.SFTPBadMessage,
    SFTPConnectionLostError,
)


def is_transport_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the SSH connection or SFTP session it came from is unusable."""
    return isinstance(exc, _TRANSPORT_ERRORS)


# -- connecting -------------------------------------------------------------------------------------


def connect_error(
    settings: ConnectionSettings,
    exc: BaseException,
    presented_host_key: asyncssh.SSHKey | None,
    *,
    opening_session: bool = False,
) -> SFTPConnectError:
    """An :class:`SFTPConnectError` for an asyncssh connection failure."""
    if isinstance(exc, SFTPConnectError):
        return exc
    kind: FailureKind
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        kind = "host_key"
    elif isinstance(exc, asyncssh.PermissionDenied):
        kind = "login"
    elif isinstance(exc, socket.gaierror):
        kind = "resolve"
    elif isinstance(exc, ConnectionRefusedError):
        kind = "refused"
    elif isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        kind = "timeout"
    elif isinstance(exc, (asyncssh.ConnectionLost, ConnectionError)):
        kind = "dropped"
    elif isinstance(exc, asyncssh.DisconnectError):
        kind = "dropped" if exc.code == asyncssh.DISC_CONNECTION_LOST else "handshake"
    elif isinstance(exc, asyncssh.SFTPError):
        kind = "subsystem"
    elif isinstance(exc, OSError):
        kind = "network"
    else:
        kind = "other"
    return failure(settings, kind, exc, presented_host_key, opening_session=opening_session)


FailureKind = Literal[
    "host_key",
    "login",
    "resolve",
    "refused",
    "timeout",
    "dropped",
    "handshake",
    "subsystem",
    "network",
    "other",
]


def failure(
    settings: ConnectionSettings,
    kind: FailureKind,
    exc: BaseException,
    presented_host_key: asyncssh.SSHKey | None = None,
    *,
    opening_session: bool = False,
) -> SFTPConnectError:
    """An :class:`SFTPConnectError` saying what went wrong and what to change (any SSH library)."""
    where = settings.describe()
    conn_id = settings.conn_id
    if kind == "host_key":
        return SFTPConnectError(
            _host_key_message(settings, presented_host_key, exc), conn_id=conn_id, permanent=True
        )
    if kind == "login":
        return SFTPConnectError(
            f"{where}: the server refused the login of user {settings.username!r} with "
            f"{settings.credentials()}; check the connection's login and its `private_key` / "
            "`key_file` extra or password, and that the key is in the server's authorized_keys",
            conn_id=conn_id,
            permanent=True,
        )
    if kind == "resolve":
        return SFTPConnectError(
            f"{where}: cannot resolve the host name {settings.host!r} ({exc}); fix the connection's host",
            conn_id=conn_id,
        )
    if kind == "refused":
        return SFTPConnectError(
            f"{where}: connection refused by {settings.address}; is the SFTP server running, and are "
            "the connection's host and port right?",
            conn_id=conn_id,
            transient=True,
        )
    if kind == "timeout":
        step = "opening the SFTP session" if opening_session else "connecting"
        return SFTPConnectError(
            f"{where}: timed out after {settings.connect_timeout:g}s {step}; check that "
            f"{settings.address} is reachable, or raise the `conn_timeout` extra",
            conn_id=conn_id,
            transient=True,
        )
    if kind == "dropped":
        step = "the SFTP session start" if opening_session else "the SSH handshake"
        return SFTPConnectError(
            f"{where}: the server closed the connection during {step} ({exc or type(exc).__name__}); "
            "it may be restarting or limiting concurrent connection attempts (OpenSSH MaxStartups)",
            conn_id=conn_id,
            transient=True,
            overload=True,
        )
    if kind == "handshake":
        return SFTPConnectError(f"{where}: the server ended the SSH handshake: {exc}", conn_id=conn_id)
    if kind == "subsystem":
        return SFTPConnectError(
            f"{where}: the server would not start an SFTP session: {exc}; is its sftp subsystem enabled?",
            conn_id=conn_id,
        )
    if kind == "network":
        return SFTPConnectError(
            f"{where}: cannot connect to {settings.address}: {exc}", conn_id=conn_id, transient=True
        )
    return SFTPConnectError(f"{where}: cannot connect: {type(exc).__name__}: {exc}", conn_id=conn_id)


def _host_key_message(
    settings: ConnectionSettings, presented: asyncssh.SSHKey | None, exc: BaseException
) -> str:
    where = settings.describe()
    shown = (
        f"{presented.get_algorithm()} host key {presented.get_fingerprint()}"
        if presented is not None
        else f"host key ({exc})"
    )
    if settings.host_key is not None:
        return (
            f"{where}: the server's {shown} does not match the `host_key` extra "
            f"({settings.host_key.get_algorithm()} {settings.host_key.get_fingerprint()}). If the "
            "server's key was replaced on purpose, put its new public key in `host_key`; otherwise "
            "the connection may be intercepted"
        )
    source = settings.known_hosts or DEFAULT_KNOWN_HOSTS
    if settings.lists_host():
        name = settings.host if settings.port == 22 else f"[{settings.host}]:{settings.port}"
        override = (
            " (`no_host_key_check` accepts unlisted hosts only, as with SSHHook; "
            "`allow_host_key_change: true` would accept any key)"
            if settings.no_host_key_check
            else ""
        )
        return (
            f"{where}: the server's {shown} is not the key {source} lists for this host{override}. "
            "If the server's key was replaced on purpose, replace its line in that file "
            f"(`ssh-keygen -R '{name}' -f {source}`, then add the new "
            "key, verified out of band); otherwise the connection may be intercepted"
        )
    return (
        f"{where}: the server's {shown} is not trusted: it is not listed in {source}. Set "
        "the connection's `host_key` extra to the server's public key ('<type> <base64>', e.g. from "
        f"`ssh-keyscan -p {settings.port} {settings.host}`, verified out of band), add it to "
        f"{source}, or turn checking off with the `no_host_key_check` extra (insecure)"
    )


# -- file operations --------------------------------------------------------------------------------


def transfer_error(exc: BaseException, operation: str, path: str, conn_id: str) -> SFTPTransferError:
    """Wrap an SFTP or transport error into the :class:`SFTPTransferError` that names the file."""
    if isinstance(exc, SFTPTransferError):
        return exc
    cls: type[SFTPTransferError]
    if isinstance(exc, (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath)):
        cls, what = SFTPFileNotFoundError, "no such file or directory"
    elif isinstance(exc, asyncssh.SFTPPermissionDenied):
        cls, what = SFTPPermissionError, f"permission denied by the server ({exc.reason or exc})"
    elif is_transport_error(exc) or isinstance(exc, (ConnectionError, asyncio.TimeoutError)):
        cls, what = SFTPConnectionLostError, f"the connection broke ({type(exc).__name__}: {exc}); retry it"
    elif isinstance(exc, _UnusableFile):
        cls, what = SFTPTransferError, str(exc)
    elif isinstance(exc, asyncssh.SFTPError):
        cls, what = SFTPTransferError, f"the server answered: {exc.reason or exc} ({type(exc).__name__})"
    else:
        cls, what = SFTPTransferError, f"{type(exc).__name__}: {exc}"
    error = cls(
        f"{operation} of {path!r} over SFTP connection {conn_id!r} failed: {what}",
        operation=operation,
        path=path,
        conn_id=conn_id,
        # The subclasses say whether they are permanent; the base class means what it wraps means
        # (the server's "operation unsupported": permanent; a file that changed while read: not).
        permanent=is_permanent_error(exc) if cls is SFTPTransferError else None,
    )
    error.__cause__ = exc
    return error
