"""Which errors mean "too much, slow down": the signals ``concurrency="auto"`` backs off on.

:func:`overload_signal` returns ``None`` for an ordinary error, else the pause the server asked
for in seconds (``0.0`` when it named none). In order:

1. an exception class listed in ``overload_on`` (the DAG author's own: "my client raises
   ``Throttled``");
2. an ``iterate_overload`` attribute (a bool) on the exception: integrations mark their errors
   (the SFTP integration's refused handshakes and channel opens, the HTTP integration's 429 and
   503), with the pause in a ``retry_after`` attribute (seconds);
3. HTTP errors of well-known clients with status 429 or 503, recognised by their class's module
   and name so that none is imported here (httpx ``HTTPStatusError``, requests ``HTTPError``,
   aiohttp ``ClientResponseError``, urllib ``HTTPError``), with their ``Retry-After`` header
   (seconds, or an HTTP date).
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Callable
from typing import Any

__all__ = ["OVERLOAD_STATUSES", "overload_signal", "parse_retry_after"]

#: HTTP statuses that say "too many requests" / "not now"
OVERLOAD_STATUSES = frozenset({429, 503})

#: (top-level package, class name) -> (status, headers) of an HTTP error
_HTTP_ERRORS: dict[tuple[str, str], Callable[[Any], tuple[object, Any]]] = {
    ("httpx", "HTTPStatusError"): lambda e: (e.response.status_code, e.response.headers),
    ("requests", "HTTPError"): lambda e: (e.response.status_code, e.response.headers),
    ("aiohttp", "ClientResponseError"): lambda e: (e.status, e.headers),
    ("urllib", "HTTPError"): lambda e: (e.code, e.headers),
}


def parse_retry_after(value: object, *, now: dt.datetime | None = None) -> float:
    """Seconds from a ``Retry-After`` value: a number of seconds or an HTTP date (0 if neither)."""
    if value is None:
        return 0.0
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def overload_signal(exc: BaseException, overload_on: tuple[type[BaseException], ...] = ()) -> float | None:
    """``None`` if ``exc`` is not an overload signal, else the pause asked for (seconds, may be 0)."""
    if overload_on and isinstance(exc, overload_on):
        return _seconds(getattr(exc, "retry_after", None))
    flag = getattr(exc, "iterate_overload", None)
    if isinstance(flag, bool):
        return _seconds(getattr(exc, "retry_after", None)) if flag else None
    for klass in type(exc).__mro__:
        read = _HTTP_ERRORS.get((str(klass.__module__).partition(".")[0], klass.__name__))
        if read is None:
            continue
        try:
            status, headers = read(exc)
        except Exception:  # no response attached
            return None
        if status not in OVERLOAD_STATUSES:
            return None
        try:
            retry_after = headers.get("Retry-After") if headers is not None else None
        except Exception:
            retry_after = None
        return parse_retry_after(retry_after)
    return None


def _seconds(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return max(0.0, float(value))
    return parse_retry_after(value)
