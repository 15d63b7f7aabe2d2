"""Which errors are permanent: trying the same item again cannot succeed, so it is not retried.

An item's retries are for what passes by itself: a connection reset, a timeout, a server
restarting, throttling. A missing file, a refused permission, a refused login or an HTTP 404 are
answered the same way however often they are asked, and retrying them only delays the failure
(``item_retries=5`` with the default delays spends a minute per missing file). The runner
retries a permanent error only with ``item_retry_permanent=True``.

:func:`is_permanent_error` decides, in this order:

1. An ``iterate_permanent`` attribute (a bool) on the exception or its class wins: an integration
   that knows its errors says so (the SFTP integration's not-found, permission and login errors
   are permanent, its lost connections are not), and so can a DAG author's own exception.
2. Builtins whose meaning does not change between attempts: :class:`FileNotFoundError`,
   :class:`PermissionError`, :class:`IsADirectoryError`, :class:`NotADirectoryError` (an
   ``OSError`` built with one of their errnos is one of them), :class:`NotImplementedError` (code
   saying it does not do this) and :class:`ModuleNotFoundError` (the environment lacks a module).
3. Well-known libraries' errors, recognised by their class's module and name so that none of them
   is imported here: asyncssh's SFTP errors with a status that no retry changes (no such file or
   path, permission denied, not a directory, is a directory, invalid name, link loop, operation
   unsupported, unknown owner or group), its refused login (``PermissionDenied``), untrusted host
   key, illegal user name and unusable keys; paramiko's ``AuthenticationException`` and
   ``BadHostKeyException``; and HTTP errors with a 4xx status (httpx ``HTTPStatusError``,
   requests ``HTTPError``, aiohttp ``ClientResponseError``, urllib ``HTTPError``) except 408
   Request Timeout, 423 Locked, 425 Too Early and 429 Too Many Requests, which mean "later".

Everything else is transient, on purpose:

* ``ValueError``, ``TypeError``, ``KeyError``, ``UnicodeDecodeError`` and the like are often bugs,
  but just as often the parse of a truncated or garbled response (a ``KeyError`` from a JSON
  document cut short, a ``ValueError`` from half an XML file), which the next attempt gets whole.
* ``FileExistsError``: concurrent items creating the same directory race ("exists? no. create:
  exists!"), and the retry sees it there and goes on.
* Other ``OSError``s (a full disk, too many open files, a broken pipe), 5xx answers, timeouts.

``__cause__`` is not followed: wrapping an error is a statement about it (``raise NotReadyYet
from FileNotFoundError(...)`` asks for a retry). An integration that wraps errors without changing
their meaning sets ``iterate_permanent`` on its own exception, as the SFTP integration does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["PERMANENT_BUILTINS", "TRANSIENT_HTTP_STATUSES", "is_permanent_class", "is_permanent_error"]

#: builtin exceptions that mean the same on every attempt
PERMANENT_BUILTINS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    NotImplementedError,
    ModuleNotFoundError,
)

#: 4xx statuses that ask the client to come back later
TRANSIENT_HTTP_STATUSES = frozenset({408, 423, 425, 429})

#: asyncssh SFTP status codes (asyncssh.constants FX_*) that no retry changes
_PERMANENT_SFTP_CODES = frozenset(
    {
        2,  # FX_NO_SUCH_FILE
        3,  # FX_PERMISSION_DENIED
        8,  # FX_OP_UNSUPPORTED
        10,  # FX_NO_SUCH_PATH
        12,  # FX_WRITE_PROTECT
        16,  # FX_UNKNOWN_PRINCIPAL
        19,  # FX_NOT_A_DIRECTORY
        20,  # FX_INVALID_FILENAME
        21,  # FX_LINK_LOOP
        24,  # FX_FILE_IS_A_DIRECTORY
        29,  # FX_OWNER_INVALID
        30,  # FX_GROUP_INVALID
    }
)

#: (top-level package, class name) of library errors that are permanent whatever their attributes
_PERMANENT_LIBRARY_CLASSES = frozenset(
    {
        ("asyncssh", "PermissionDenied"),  # no authentication method left: the login was refused
        ("asyncssh", "HostKeyNotVerifiable"),
        ("asyncssh", "IllegalUserName"),
        ("asyncssh", "KeyImportError"),
        ("asyncssh", "KeyEncryptionError"),  # a wrong passphrase
        ("paramiko", "AuthenticationException"),  # and its subclasses (BadAuthenticationType, ...)
        ("paramiko", "BadHostKeyException"),
    }
)

#: (top-level package, class name) of HTTP errors -> how to read their status
_HTTP_ERRORS: dict[tuple[str, str], Callable[[Any], object]] = {
    ("httpx", "HTTPStatusError"): lambda exc: exc.response.status_code,
    ("requests", "HTTPError"): lambda exc: exc.response.status_code,
    ("aiohttp", "ClientResponseError"): lambda exc: exc.status,
    ("urllib", "HTTPError"): lambda exc: exc.code,
}


def is_permanent_error(exc: BaseException) -> bool:
    """Whether retrying what raised ``exc`` cannot succeed (see the module's docstring)."""
    flag = getattr(exc, "iterate_permanent", None)
    if isinstance(flag, bool):
        return flag
    if isinstance(exc, PERMANENT_BUILTINS):
        return True
    for key in _class_keys(type(exc)):
        if key in _PERMANENT_LIBRARY_CLASSES:
            return True
        if key == ("asyncssh", "SFTPError"):
            return getattr(exc, "code", None) in _PERMANENT_SFTP_CODES
        status_of = _HTTP_ERRORS.get(key)
        if status_of is not None:
            return _permanent_status(exc, status_of)
    return False


def is_permanent_class(cls: type[BaseException]) -> bool:
    """Whether every instance of ``cls`` is a permanent error (whatever its attributes say), as
    far as the class alone tells: used to refuse ``item_retry_on`` classes that are never retried."""
    flag = getattr(cls, "iterate_permanent", None)
    if isinstance(flag, bool):
        return flag
    if issubclass(cls, PERMANENT_BUILTINS):
        return True
    return any(key in _PERMANENT_LIBRARY_CLASSES for key in _class_keys(cls))


def _class_keys(cls: type[BaseException]) -> list[tuple[str, str]]:
    return [(str(k.__module__).partition(".")[0], k.__name__) for k in cls.__mro__]


def _permanent_status(exc: BaseException, status_of: Callable[[Any], object]) -> bool:
    try:
        status = status_of(exc)
    except Exception:  # no response attached (requests allows that): nothing to go by
        return False
    if isinstance(status, bool) or not isinstance(status, int):
        return False
    return 400 <= status < 500 and status not in TRANSIENT_HTTP_STATUSES
