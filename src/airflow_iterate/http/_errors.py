"""The exceptions of the HTTP integration.

Exception tree (all are :class:`airflow_iterate.IterateError`)::

    HTTPClientError                base class of everything below (named after HTTPClient: not
    │                              only HTTP's 4xx "client errors")
    ├── HTTPConfigError            the Airflow connection is not defined, or defined wrong (a bad
    │                              extra, an unreadable CA bundle); names the connection id and
    │                              the setting to fix; permanent
    ├── HTTPClientUsageError       wrong use: bad arguments, another event loop (also
    │                              RuntimeError); permanent
    ├── HTTPClientClosedError      the client was closed
    ├── HTTPPaginationError        a listing did not end (a cursor or next link repeated), or a
    │                              page was not what the pagination style expects
    └── HTTPRequestError           one request failed; names the method, the URL (credentials
        │                          masked), the item it ran for and the connection id
        ├── HTTPStatusError        the server answered an error status; ``status``, the start of
        │                          the body, ``retry_after``; permanent for a 4xx other than 408,
        │                          423, 425 and 429, as the core classifies HTTP errors
        ├── HTTPTransportError     no (whole) answer: refused, reset, dropped, truncated (also
        │   │                      ConnectionError); ``sent`` tells whether the request may have
        │   │                      reached the server
        │   └── HTTPTLSError       the TLS handshake failed: the server's certificate is not
        │                          trusted (permanent) or TLS itself failed
        ├── HTTPTimeoutError       no answer in time (also TimeoutError)
        └── HTTPDownloadError      a streamed body could not be written where asked (a link in the
                                   way: permanent; a local I/O error)

Every error pickles with its attributes (executors carry exceptions between processes).
``iterate_permanent`` tells ``.iterate()`` whether an item's retry can help (see
``airflow_iterate._core._permanence``).
"""

from __future__ import annotations

from typing import Any

from .._core import IterateError
from .._core._overload import OVERLOAD_STATUSES as OVERLOAD_HTTP_STATUSES
from .._core._permanence import TRANSIENT_HTTP_STATUSES

__all__ = [
    "HTTPClientClosedError",
    "HTTPClientError",
    "HTTPClientUsageError",
    "HTTPConfigError",
    "HTTPDownloadError",
    "HTTPPaginationError",
    "HTTPRequestError",
    "HTTPStatusError",
    "HTTPTLSError",
    "HTTPTimeoutError",
    "HTTPTransportError",
]


class HTTPClientError(IterateError):
    """Base class of the HTTP integration's errors."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from the message and the attributes, whatever the subclass's constructor takes.
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


class HTTPConfigError(HTTPClientError):
    """The Airflow connection cannot be used as it is defined; the message says what to fix."""

    iterate_permanent = True

    def __init__(self, message: str, *, conn_id: str) -> None:
        super().__init__(message)
        self.conn_id = conn_id


class HTTPClientUsageError(HTTPClientError, RuntimeError):
    """The client was used in a way it does not support (another event loop, bad arguments)."""

    iterate_permanent = True  # the same call is as wrong on the next attempt


class HTTPClientClosedError(HTTPClientError):
    """The client was closed: no request can be made with it any more."""


class HTTPPaginationError(HTTPClientError):
    """A paginated listing cannot go on: a page repeated a cursor or link, or did not have the
    shape its pagination style reads."""


class HTTPRequestError(HTTPClientError):
    """A request failed; ``method``, ``url`` (credentials masked), ``conn_id`` and ``item`` (the
    ``.iterate()`` item it ran for, or ``None``) say which one, ``attempts`` how often it was sent."""

    iterate_permanent: bool | None = None

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        conn_id: str,
        item: str | None = None,
        attempts: int = 1,
        permanent: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.conn_id = conn_id
        self.item = item
        self.attempts = attempts
        if permanent is not None:
            self.iterate_permanent = permanent


class HTTPStatusError(HTTPRequestError):
    """The server answered ``status``; ``body_start`` is the beginning of its answer (credentials
    masked), ``retry_after`` the seconds its ``Retry-After`` asked for (``None``: none).

    Permanent (not retried by ``.iterate()``) for a 4xx other than 408, 423, 425 and 429: asking
    again gets the same answer. Other statuses (5xx, 429, ...) are retried. A 429 or 503 is an
    overload signal for ``concurrency="auto"`` (``iterate_overload``), its ``Retry-After`` a pause.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        reason: str,
        body_start: str,
        retry_after: float | None = None,
        **request: Any,
    ) -> None:
        super().__init__(message, **request)
        self.status = status
        self.reason = reason
        self.body_start = body_start
        self.retry_after = retry_after
        self.iterate_overload = status in OVERLOAD_HTTP_STATUSES
        if "iterate_permanent" not in self.__dict__:
            self.iterate_permanent = 400 <= status < 500 and status not in TRANSIENT_HTTP_STATUSES


class HTTPTransportError(HTTPRequestError, ConnectionError):
    """No whole answer came: the connection was refused, reset, dropped or cut short.

    ``sent`` is false when the request surely never reached the server (refused, no route, the
    name did not resolve), so sending it again is safe for any method; true when it may have.
    """

    iterate_permanent = False

    def __init__(self, message: str, *, sent: bool, **request: Any) -> None:
        super().__init__(message, **request)
        self.sent = sent


class HTTPTLSError(HTTPTransportError):
    """The TLS handshake failed. Permanent when the server's certificate is not trusted (set the
    connection's ``verify`` extra to the CA bundle that signed it); retried otherwise."""


class HTTPTimeoutError(HTTPRequestError, TimeoutError):
    """No answer (or no further byte of it) within the request's timeout."""

    iterate_permanent = False


class HTTPDownloadError(HTTPRequestError):
    """A body could not be written to its target; ``target`` names it. Permanent when a link or a
    name in the way refuses it; a local I/O error is retried."""

    def __init__(self, message: str, *, target: str, **request: Any) -> None:
        super().__init__(message, **request)
        self.target = target


def _rebuild(cls: type[HTTPClientError], message: str, state: dict[str, Any]) -> HTTPClientError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error
