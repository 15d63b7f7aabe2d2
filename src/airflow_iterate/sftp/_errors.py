"""The exceptions of the SFTP integration.

Exception tree (all are :class:`airflow_iterate.IterateError`)::

    SFTPPoolError                  base class of everything below
    ├── SFTPConnectError           cannot connect: connection id not defined, server unreachable,
    │                              login refused, host key not trusted or changed, bad key in the
    │                              connection; the message names the connection id and what to fix
    │                              (``transient``: it may pass by itself; ``iterate_permanent``: a
    │                              configuration error no retry fixes)
    ├── SFTPAcquireTimeoutError    no client became free within ``acquire_timeout`` (also
    │                              TimeoutError; ``SFTPAcquireTimeout`` is its deprecated name)
    ├── SFTPPoolClosedError        the pool was closed
    ├── SFTPPoolUsageError         wrong use: another event loop, bad arguments (also RuntimeError)
    └── SFTPTransferError          one file operation failed; names the operation, the file and the
        │                          connection id; the server's or transport's error is ``__cause__``
        ├── SFTPFileNotFoundError   no such file or directory (also FileNotFoundError)
        ├── SFTPPermissionError     the server refused access (also PermissionError)
        └── SFTPConnectionLostError the connection broke mid-operation; retrying is safe (also
                                    ConnectionError)

``iterate_permanent`` tells ``.iterate()`` whether an item's retry can help (see
``airflow_iterate._core._permanence``): true for a missing file, a refused permission, a refused
login, an untrusted host key and a connection defined wrong; false for a lost connection and a file
that changed while it was read. An :class:`SFTPTransferError` of the base class carries the verdict
on the error it wraps (``__cause__``).
"""

from __future__ import annotations

from .._core import IterateError

__all__ = [
    "SFTPAcquireTimeoutError",
    "SFTPConnectError",
    "SFTPConnectionLostError",
    "SFTPFileNotFoundError",
    "SFTPPermissionError",
    "SFTPPoolClosedError",
    "SFTPPoolError",
    "SFTPPoolUsageError",
    "SFTPTransferError",
]


class SFTPPoolError(IterateError):
    """Base class of the SFTP integration's errors."""


class SFTPConnectError(SFTPPoolError):
    """Opening an SSH/SFTP connection failed; the message says which connection id and what to fix.

    ``transient`` is true for failures that may pass by themselves (refused, timed out, reset,
    the server dropping a connection at start-up as ``MaxStartups`` does) and false otherwise.
    ``iterate_permanent`` is true for configuration errors that no retry fixes (unknown connection
    id, login refused, untrusted host key, bad key): ``.iterate()`` does not retry an item for
    them. What is neither (a handshake the server ended, an unknown failure) is retried.
    """

    def __init__(
        self,
        message: str,
        *,
        conn_id: str,
        transient: bool = False,
        permanent: bool = False,
        overload: bool = False,
    ) -> None:
        super().__init__(message)
        self.conn_id = conn_id
        self.transient = transient
        self.iterate_permanent = permanent
        #: the server shed the connection under load (a handshake dropped as OpenSSH's MaxStartups
        #: does, a session refused): ``concurrency="auto"`` backs off instead of failing the item
        self.iterate_overload = overload

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_connect_error,
            (str(self), self.conn_id, self.transient, self.iterate_permanent, self.iterate_overload),
        )


class SFTPAcquireTimeoutError(SFTPPoolError, TimeoutError):
    """No SFTP client became free within the pool's ``acquire_timeout``."""


class SFTPPoolClosedError(SFTPPoolError):
    """The pool was closed: no client can be borrowed from it any more."""


class SFTPPoolUsageError(SFTPPoolError, RuntimeError):
    """The pool was used in a way it does not support (another event loop, bad arguments)."""

    iterate_permanent = True  # the same call is as wrong on the next attempt


class SFTPTransferError(SFTPPoolError):
    """A file operation failed; ``operation``, ``path`` and ``conn_id`` say which one.

    The underlying error (an ``asyncssh.SFTPError``, a transport error, a local ``OSError``) is
    ``__cause__``. ``iterate_permanent`` says whether retrying can help: the subclasses know, and
    for this class :func:`transfer_error` passes the verdict on the error it wraps (``None``: not
    known, ``.iterate()`` then retries).
    """

    iterate_permanent: bool | None = None

    def __init__(
        self, message: str, *, operation: str, path: str, conn_id: str, permanent: bool | None = None
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.path = path
        self.conn_id = conn_id
        if permanent is not None:
            self.iterate_permanent = permanent

    def __reduce__(self) -> tuple[object, ...]:
        permanent = self.__dict__.get("iterate_permanent")
        return (
            _rebuild_transfer_error,
            (type(self), str(self), self.operation, self.path, self.conn_id, permanent),
        )


class SFTPFileNotFoundError(SFTPTransferError, FileNotFoundError):
    """The remote (or, for uploads, local) file or directory does not exist."""

    iterate_permanent = True


class SFTPPermissionError(SFTPTransferError, PermissionError):
    """The server refused the operation on this file."""

    iterate_permanent = True


class SFTPConnectionLostError(SFTPTransferError, ConnectionError):
    """The connection broke during the operation; nothing is known about its outcome, retry it."""

    iterate_permanent = False


def _rebuild_connect_error(
    message: str, conn_id: str, transient: bool, permanent: bool = False, overload: bool = False
) -> SFTPConnectError:
    return SFTPConnectError(
        message, conn_id=conn_id, transient=transient, permanent=permanent, overload=overload
    )


def _rebuild_transfer_error(
    cls: type[SFTPTransferError],
    message: str,
    operation: str,
    path: str,
    conn_id: str,
    permanent: bool | None = None,
) -> SFTPTransferError:
    return cls(message, operation=operation, path=path, conn_id=conn_id, permanent=permanent)
