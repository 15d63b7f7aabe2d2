"""Which exception of ``_errors`` a failure becomes, with a message naming the request and what to do.

Kept next to the exception tree, as one place to read how aiohttp's errors and the server's answers
are reported. Every message names the method and the URL (credentials masked), the ``.iterate()``
item the request ran for, and what happened: the status and the start of the body, or the
transport failure; then the connection's known secrets are masked anywhere in it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from .._core import current_item
from ._errors import (
    HTTPRequestError,
    HTTPStatusError,
    HTTPTimeoutError,
    HTTPTLSError,
    HTTPTransportError,
)
from ._redact import redact_url

__all__ = ["BODY_START", "Failure", "classify", "status_error", "transport_error"]

#: characters of an error answer's body kept in the message
BODY_START = 300


@dataclass(frozen=True)
class Failure:
    """What a transport failure means for a retry."""

    #: the request surely never reached the server (safe to send again, whatever the method)
    before_sending: bool
    #: sending it again cannot help (an untrusted certificate)
    permanent: bool
    #: how to say it
    what: str


def classify(exc: BaseException) -> Failure | None:
    """How a failure to get an answer reads, or ``None`` if ``exc`` is not one (a bug, a usage error)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return Failure(True, True, f"the server's TLS certificate is not trusted ({exc.certificate_error})")
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return Failure(True, False, f"the TLS handshake failed ({exc})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Failure(True, False, f"cannot connect ({exc.os_error.__class__.__name__}: {exc.os_error})")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Failure(True, False, "no connection within the connect timeout")
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        return Failure(False, False, "no answer within the read timeout")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Failure(False, False, "the server closed the connection before answering")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Failure(False, False, f"the answer was cut short ({exc})")
    if isinstance(exc, (aiohttp.ClientOSError, ConnectionError)):
        return Failure(False, False, f"the connection broke ({type(exc).__name__}: {exc})")
    if isinstance(exc, aiohttp.ClientConnectionError):
        return Failure(False, False, f"the connection failed ({type(exc).__name__}: {exc})")
    if isinstance(exc, ssl.SSLError):
        return Failure(False, False, f"TLS failed ({exc})")
    return None


def _for_item(item: str | None) -> str:
    return f" (for {item})" if item else ""


def transport_error(
    exc: BaseException,
    failure: Failure,
    method: str,
    url: str,
    *,
    conn_id: str,
    mask: Callable[[str], str],
    attempts: int,
    timeout: float | None = None,
) -> HTTPRequestError:
    """The error for a request that got no (whole) answer."""
    item = current_item()
    shown = redact_url(url)
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    what = failure.what
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        what += (
            "; set the connection's `verify` extra to the CA bundle that signed it (it is verified "
            "against the system's CAs otherwise)"
        )
    message = mask(f"{method} {shown} failed{tries}{_for_item(item)}: {what} [{conn_id}]")
    common: dict[str, Any] = {
        "method": method,
        "url": mask(shown),
        "conn_id": conn_id,
        "item": item,
        "attempts": attempts,
    }
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)) and not failure.before_sending:
        if timeout is not None:
            message = message.replace("the read timeout", f"the read timeout ({timeout:g}s)")
        return HTTPTimeoutError(message, **common)
    if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)):
        return HTTPTLSError(message, sent=not failure.before_sending, permanent=failure.permanent, **common)
    return HTTPTransportError(message, sent=not failure.before_sending, **common)


def status_error(
    method: str,
    url: str,
    status: int,
    reason: str,
    body: bytes,
    *,
    conn_id: str,
    mask: Callable[[str], str],
    attempts: int,
    retry_after: float | None,
) -> HTTPStatusError:
    """The error for an answer with an error status."""
    item = current_item()
    shown = redact_url(url)
    start = " ".join(body[: BODY_START * 4].decode("utf-8", "replace").split())
    if len(start) > BODY_START:
        start = start[: BODY_START - 1] + "…"
    start = mask(start)
    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
    later = f"; it asked to retry after {retry_after:g}s" if retry_after is not None else ""
    message = mask(
        f"{method} {shown} answered {status} {reason}{tries}{_for_item(item)}{later}: "
        f"{start or '(empty body)'} [{conn_id}]"
    )
    return HTTPStatusError(
        message,
        status=status,
        reason=reason,
        body_start=start,
        retry_after=retry_after,
        method=method,
        url=mask(shown),
        conn_id=conn_id,
        item=item,
        attempts=attempts,
    )
