"""HTTPClient: one pooled, configured HTTP client per task run, shared by every item.

Built on aiohttp (the library the http provider's ``HttpAsyncHook`` uses), not on the hook's
``session()``: measured on the same server, the hook's request path costs about twice the CPU
of aiohttp's per request (``benchmarks/results/http_library.md``), and it lacks what items
need (a bound on connections per host, a CA bundle, ``Retry-After``, retries that know which
methods are safe to send again). The connection is read as the provider reads it
(``_settings``). httpx, the other candidate, measured an order of magnitude slower under
concurrency in the same runs.

Structure, after the SFTP integration's pool:

* :class:`~._session.SessionHolder` owns the aiohttp session and its connections (opening it on
  the first request with one read of the Airflow connection, closing it);
* :class:`HTTPClient` adds what items call: ``request()`` and the method shortcuts, ``stream()``,
  :meth:`HTTPClient.shared`, statistics, ``aclose()``; and the retry loop with the redirects, in
  one place for whole and streamed answers (:meth:`HTTPClient._exchange`), following a
  :class:`~._retry.RetryPolicy`;
* ``_error_map`` words the failures, ``_redact`` keeps credentials out of them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import urljoin

import aiohttp

from .._core import DEFAULT_ASYNC_CONCURRENCY, current_item
from .._core._validate import positive_int, seconds
from .._per_loop import PerLoop
from ._error_map import Failure, classify, status_error, transport_error
from ._errors import HTTPClientClosedError, HTTPClientUsageError, HTTPRequestError
from ._redact import redact_url
from ._response import HTTPResponse, HTTPStream
from ._retry import IDEMPOTENT_METHODS, RetryPolicy, parse_retry_after
from ._session import Opened, SessionHolder, SessionLimits
from ._settings import DEFAULT_CONN_ID, is_absolute, join_url, origin_of
from ._statistics import ClientStatistics

__all__ = ["HTTPClient"]

log = logging.getLogger("airflow_iterate.http")

#: connections to one host by default: as many as async items run at a time by default, so that
#: at the defaults no item waits for a connection
DEFAULT_CONNECTIONS_PER_HOST: Final = DEFAULT_ASYNC_CONCURRENCY
#: answers after which the whole client waits for the ``Retry-After`` (the limit is the client's)
_PAUSING_STATUSES = frozenset({429, 503})
#: seconds over which the requests held by a pause go out once it ends (less for a shorter pause)
_RESUME_SPREAD = 1.0
#: 429 pauses after which the client advises starting items slower (once)
_RATE_LIMIT_ADVICE_AFTER = 3
#: at most one INFO line per this many seconds about the server asking to wait
_PAUSE_LOG_INTERVAL = 30.0
#: answers whose Location is followed (when the connection's allow_redirects says so)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: a call's own headers that never follow a redirect to another origin
_CROSS_ORIGIN_DROPPED = frozenset({"authorization", "cookie", "proxy-authorization"})
#: bodies that can be sent twice (anything else, a stream, is sent once: no retry)
_RESENDABLE = (bytes, bytearray, str, dict, list, tuple, type(None))


class _Default:
    def __repr__(self) -> str:
        return "<client default>"


_DEFAULT: Final[Any] = _Default()


class _StreamContext:
    """``async with client.stream(...) as stream``: the answer, its body read in the block."""

    __slots__ = ("_args", "_client", "_response")

    def __init__(self, client: HTTPClient, args: dict[str, Any]) -> None:
        self._client = client
        self._args = args
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> HTTPStream:
        if self._response is not None:
            raise HTTPClientUsageError("this client.stream() context is in use; call client.stream() again")
        response, _, attempts, url = await self._client._exchange(read=False, **self._args)
        self._response = response
        return HTTPStream(self._args["method"], url, response, attempts)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        response, self._response = self._response, None
        if response is not None:
            # A body read to its end gives the connection back for reuse; one left unread closes it.
            response.release()
            self._client._in_flight -= 1


class HTTPClient:
    """An HTTP client for one Airflow ``http`` connection, shared by many concurrent items.

    ::

        async with HTTPClient("my_api") as client:
            record = (await client.get("records/7")).json()
            created = await client.post("records", json={"name": "x"})

    Relative URLs join the connection's base URL; credentials and the connection's header
    extras go to that origin only (an absolute URL elsewhere, a ``Link`` to another host, gets
    neither). Connections are pooled and kept alive; at most ``max_connections_per_host`` are open
    to one host, and requests beyond wait for a free one. Overload answers (429, 503) and
    connection failures are retried per ``retry`` (:class:`RetryPolicy`); a ``Retry-After`` holds
    every new request of the client until it passes. An error status raises
    :class:`HTTPStatusError` (unless ``check=False`` or the connection's ``check_response: false``).

    The client belongs to the event loop it is first used on: create one per task run
    (:meth:`shared` does that for ``.iterate()`` items) and close it (``async with`` or
    :meth:`aclose`).

    :param conn_id: the Airflow connection (type ``http``), read once, in a worker thread, on the
        first request.
    :param connection: an already fetched Airflow ``Connection`` to use instead of ``conn_id``.
    :param max_connections_per_host: connections to one host at most. The default, 128, is the
        default concurrency of async ``.iterate()`` items: every item in flight gets a connection of
        its own instead of queueing for one (lower it for a server that wants fewer).
    :param max_connections: connections in all, to every host (redirects, absolute URLs);
        default: ``max_connections_per_host``, so that a task never holds more connections than it
        runs requests at a time.
    :param retry: when and how requests are sent again (``RetryPolicy()`` by default;
        ``RetryPolicy(attempts=1)`` never retries).
    :param keepalive_timeout: seconds an idle connection is kept for reuse; below the 5 s many
        servers keep one (uvicorn, Node), so that a connection is not reused as the server closes it.
    :param timeout: seconds one attempt may take in all (``None``: no limit; the connection's
        ``timeout`` extra bounds connecting and each read of the answer).
    """

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        connection: Any = None,
        max_connections_per_host: int = DEFAULT_CONNECTIONS_PER_HOST,
        max_connections: int | None = None,
        retry: RetryPolicy | None = None,
        keepalive_timeout: float = 4.0,
        timeout: float | None = None,
    ) -> None:
        if connection is not None:
            fetched_id = getattr(connection, "conn_id", None)
            if conn_id is not None and fetched_id is not None and conn_id != fetched_id:
                raise HTTPClientUsageError(
                    f"conn_id {conn_id!r} and connection {fetched_id!r} disagree; pass one of them"
                )
            conn_id = conn_id or fetched_id or "<connection object>"
        self.conn_id: str = conn_id or DEFAULT_CONN_ID
        per_host = positive_int(
            "max_connections_per_host", max_connections_per_host, error=HTTPClientUsageError
        )
        total = (
            per_host
            if max_connections is None
            else positive_int("max_connections", max_connections, error=HTTPClientUsageError)
        )
        if total < per_host:
            raise HTTPClientUsageError(
                f"max_connections ({total}) must be at least max_connections_per_host ({per_host})"
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise HTTPClientUsageError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        self.retry = retry or RetryPolicy()
        self.timeout = (
            None
            if timeout is None
            else seconds("timeout", timeout, allow_zero=False, error=HTTPClientUsageError)
        )
        limits = SessionLimits(
            per_host,
            total,
            seconds("keepalive_timeout", keepalive_timeout, error=HTTPClientUsageError),
        )
        self.max_connections_per_host = per_host
        self._holder = SessionHolder(self.conn_id, connection, limits)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._rng = random.Random()
        # the pause every request waits for (loop time), after a 429 or 503 with Retry-After
        self._resume_at = 0.0
        self._pause_logged_at = -_PAUSE_LOG_INTERVAL
        self._pauses_unlogged = 0
        #: pauses for 429 so far (the advice to slow down is logged once, at the third)
        self._rate_limited = 0
        # totals (the event loop is the only writer)
        self._requests = self._attempts = self._retried = self._throttled = self._failed = 0
        self._in_flight = 0
        self._paused = 0.0

    # -- public ---------------------------------------------------------------------------------

    @classmethod
    def shared(cls, conn_id: str = DEFAULT_CONN_ID, **options: Any) -> HTTPClient:
        """The client for ``conn_id`` on the running event loop, created on first use.

        Made for ``.iterate()`` items: every item of a task run calls
        ``HTTPClient.shared("my_api")`` and gets the same client (the items share one event loop),
        so they share its connections. It closes itself when the loop shuts down
        (``asyncio.run`` cancels leftover tasks at its end), or earlier with :meth:`aclose`.
        ``options`` are the constructor's and apply when the client is created; asking again with
        different ones is an error.
        """

        def create() -> HTTPClient:
            client = cls(conn_id, **options)
            client._loop = asyncio.get_running_loop()
            return client

        return _SHARED.get(conn_id, options, create)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = _DEFAULT,
        check: bool | None = None,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> HTTPResponse:
        """Send a request and read its answer whole.

        :param url: relative (joined to the connection's base URL) or absolute.
        :param params: query parameters (a dict or pairs), added to those in ``url``.
        :param json: a body sent as JSON; ``data`` a body as it is (bytes, text, a dict as a form).
        :param headers: headers of this request, over the connection's.
        :param timeout: seconds this attempt may take in all (default: the client's).
        :param check: raise :class:`HTTPStatusError` for an error status (default: the
            connection's ``check_response``, true unless set).
        :param idempotent: whether sending it twice is safe (default: by its method); ``True``
            lets a ``POST`` with an idempotency key be retried after a broken connection.
        :param retry: this request's :class:`RetryPolicy` (default: the client's).
        """
        response, body, attempts, final_url = await self._exchange(
            method=method,
            url=url,
            params=params,
            json=json,
            data=data,
            headers=headers,
            timeout=timeout,
            check=check,
            idempotent=idempotent,
            retry=retry,
            read=True,
        )
        assert body is not None
        return HTTPResponse(
            response.method,
            final_url,
            response.status,
            response.reason or "",
            response.headers,
            body,
            attempts,
        )

    async def get(self, url: str, **kwargs: Any) -> HTTPResponse:
        """``request("GET", url, ...)``."""
        return await self.request("GET", url, **kwargs)

    async def get_json(self, url: str, **kwargs: Any) -> Any:
        """``GET`` the URL and parse its answer as JSON."""
        return (await self.request("GET", url, **kwargs)).json()

    async def head(self, url: str, **kwargs: Any) -> HTTPResponse:
        return await self.request("HEAD", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> HTTPResponse:
        """``request("POST", url, ...)``; not retried after a connection that broke once sent."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> HTTPResponse:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> HTTPResponse:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> HTTPResponse:
        return await self.request("DELETE", url, **kwargs)

    def stream(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = _DEFAULT,
        check: bool | None = None,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> _StreamContext:
        """A response to read as it arrives: ``async with client.stream("GET", url) as s:``.

        Retried like :meth:`request` until the answer starts; a failure while its body is read
        is raised to the reader (only the reader knows what it kept). The connection goes back to
        the pool when the block ends.
        """
        return _StreamContext(
            self,
            {
                "method": method,
                "url": url,
                "params": params,
                "json": json,
                "data": data,
                "headers": headers,
                "timeout": timeout,
                "check": check,
                "idempotent": idempotent,
                "retry": retry,
            },
        )

    def statistics(self) -> ClientStatistics:
        return ClientStatistics(
            conn_id=self.conn_id,
            max_connections_per_host=self.max_connections_per_host,
            requests=self._requests,
            attempts=self._attempts,
            retried=self._retried,
            throttled=self._throttled,
            failed=self._failed,
            in_flight=self._in_flight,
            paused=round(self._paused, 3),
        )

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Close every connection; later requests raise :class:`HTTPClientClosedError`. Idempotent."""
        if not self._closed:
            self._closed = True
            if self._in_flight:
                log.warning(
                    "HTTPClient(%r) closed while %d request(s) were in progress; they fail",
                    self.conn_id,
                    self._in_flight,
                )
            _SHARED.closing(self)
        await self._holder.aclose()

    async def __aenter__(self) -> HTTPClient:
        self._check_loop()
        if self._closed:
            raise HTTPClientClosedError(f"the HTTPClient for {self.conn_id!r} is closed")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self._in_flight} request(s) in flight"
        return f"<HTTPClient {self.conn_id!r}: {state}>"

    # -- the retry loop -------------------------------------------------------------------------

    async def _exchange(
        self,
        *,
        method: str,
        url: str,
        params: Any,
        json: Any,
        data: Any,
        headers: Mapping[str, str] | None,
        timeout: Any,
        check: bool | None,
        idempotent: bool | None,
        retry: RetryPolicy | None,
        read: bool,
    ) -> tuple[aiohttp.ClientResponse, bytes | None, int, str]:
        """Send until an answer is final; returns it (its body read when ``read``), the attempts
        made and the URL that answered. Unless ``read``, the caller releases the response and
        counts the request out of ``_in_flight``.

        Redirects are followed here, not by aiohttp, so that each hop gets the headers its origin
        may see: the connection's credentials and header extras only on the connection's origin,
        and no ``Authorization`` or ``Cookie`` of the call's own across origins.
        """
        opened = self._holder.opened
        if opened is None or self._loop is None:
            opened = await self._open()
        elif asyncio.get_running_loop() is not self._loop:
            self._check_loop()
        if self._closed:
            raise HTTPClientClosedError(f"the HTTPClient for {self.conn_id!r} is closed")
        method = method.upper()
        settings = opened.settings
        full_url = join_url(settings.base_url, url)
        request_headers = self._headers(
            opened, not is_absolute(url) or settings.same_origin(full_url), headers
        )
        policy = retry if retry is not None else self.retry
        safe = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        max_attempts = policy.attempts if isinstance(data, _RESENDABLE) else 1
        if timeout is _DEFAULT:
            timeout = self.timeout
        attempt_timeout = opened.timeout if timeout is None else _with_total(opened.timeout, timeout)
        follow = settings.allow_redirects
        self._requests += 1
        self._in_flight += 1
        handed_over = False
        try:
            attempt = failures = throttled = redirects = 0
            crossed_before = False
            while True:
                attempt += 1
                if self._resume_at:
                    await self._wait_for_resume()
                self._attempts += 1
                response: aiohttp.ClientResponse | None = None
                try:
                    response = await opened.session.request(
                        method,
                        full_url,
                        params=params,
                        json=json,
                        data=data,
                        headers=request_headers,
                        allow_redirects=False,
                        timeout=attempt_timeout,
                    )
                    status = response.status
                    redirect = follow and status in _REDIRECTS and "Location" in response.headers
                    body = await response.read() if read and not redirect else None
                except asyncio.CancelledError:
                    if response is not None:
                        response.close()
                    raise
                except Exception as exc:
                    if response is not None:
                        response.close()
                    failure = classify(exc)
                    if failure is None:
                        raise self._usage_error(exc, method, full_url, opened) from exc
                    failures += 1
                    if self._may_retry(failure, safe, policy) and failures < max_attempts:
                        delay = policy.backoff_delay(failures, self._rng)
                        self._note_retry(opened, method, full_url, failure.what, attempt, delay)
                        await asyncio.sleep(delay)
                        continue
                    self._failed += 1
                    raise transport_error(
                        exc,
                        failure,
                        method,
                        full_url,
                        conn_id=self.conn_id,
                        mask=opened.mask.with_url(full_url),
                        attempts=attempt,
                        timeout=settings.read_timeout,
                    ) from exc
                if redirect:
                    response.release()
                    redirects += 1
                    target = urljoin(full_url, response.headers["Location"])
                    if redirects > settings.max_redirects or not is_absolute(target):
                        self._failed += 1
                        raise self._redirect_error(opened, method, full_url, target, redirects)
                    if status == 303 or (status in (301, 302) and method == "POST"):
                        method, json, data = ("HEAD" if method == "HEAD" else "GET"), None, None
                        safe = True
                    crossed = origin_of(target) != origin_of(full_url)
                    request_headers = self._headers(
                        opened, settings.same_origin(target), headers, crossed=crossed or crossed_before
                    )
                    crossed_before = crossed_before or crossed
                    full_url, params = target, None
                    attempt -= 1  # a redirect is not another attempt
                    continue
                if status < 400:
                    handed_over = not read
                    return response, body, attempt, full_url
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if status in _PAUSING_STATUSES:
                    self._throttled += 1
                    if (
                        retry_after is not None
                        and retry_after <= policy.max_retry_after
                        and throttled < policy.max_throttled
                        and policy.retries_status(status, safe)
                        and max_attempts > 1
                    ):
                        # The server said when: wait for it (every request of the client does).
                        throttled += 1
                        response.release()
                        self._pause(opened, retry_after, status, response.reason or "")
                        self._note_retry(
                            opened, method, full_url, f"{status} {response.reason}", attempt, 0.0
                        )
                        continue
                waitable = retry_after is None or retry_after <= policy.max_retry_after
                if waitable and policy.retries_status(status, safe):
                    failures += 1
                    if failures < max_attempts:
                        response.release()
                        delay = (
                            retry_after
                            if retry_after is not None
                            else policy.backoff_delay(failures, self._rng)
                        )
                        self._note_retry(
                            opened, method, full_url, f"{status} {response.reason}", attempt, delay
                        )
                        await asyncio.sleep(delay)
                        continue
                if not (check if check is not None else settings.check_response):
                    handed_over = not read
                    return response, body, attempt, full_url
                if body is None:
                    try:
                        body = await response.content.read(4096)
                    except Exception:  # the error status says enough
                        body = b""
                response.release()
                self._failed += 1
                raise status_error(
                    method,
                    full_url,
                    status,
                    response.reason or "",
                    body,
                    conn_id=self.conn_id,
                    mask=opened.mask.with_url(full_url),
                    attempts=attempt,
                    retry_after=retry_after,
                )
        finally:
            if not handed_over:
                self._in_flight -= 1

    @staticmethod
    def _may_retry(failure: Failure, safe: bool, policy: RetryPolicy) -> bool:
        if failure.permanent:
            return False
        return failure.before_sending or safe or policy.retry_non_idempotent

    def _headers(
        self, opened: Opened, same_origin: bool, headers: Mapping[str, str] | None, *, crossed: bool = False
    ) -> dict[str, str] | None:
        """A request's headers: the connection's (credentials, header extras) when it goes to the
        connection's origin, then the call's own; after a redirect that ``crossed`` to another
        origin, without the call's ``Authorization``, ``Cookie`` and ``Proxy-Authorization`` (as
        aiohttp and requests do)."""
        if same_origin:
            return {**opened.headers, **headers} if headers else opened.headers
        if not headers:
            return None
        if crossed:
            return {k: v for k, v in headers.items() if k.lower() not in _CROSS_ORIGIN_DROPPED}
        return dict(headers)

    async def _open(self) -> Opened:
        if self._closed:
            raise HTTPClientClosedError(f"the HTTPClient for {self.conn_id!r} is closed")
        self._check_loop()
        return await self._holder.open()

    def _check_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise HTTPClientUsageError(
                f"this HTTPClient for {self.conn_id!r} belongs to another event loop; create one per "
                "event loop (HTTPClient.shared() does)"
            )

    def _redirect_error(
        self, opened: Opened, method: str, url: str, target: str, redirects: int
    ) -> HTTPRequestError:
        mask = opened.mask.with_url(url).with_url(target)
        item = current_item()
        for_item = f" (for {item})" if item else ""
        if redirects > opened.settings.max_redirects:
            what = f"more than {opened.settings.max_redirects} redirects (the `max_redirects` extra)"
        else:
            what = f"redirected to {redact_url(target)}, which is not an http(s) URL"
        return HTTPRequestError(
            mask(f"{method} {redact_url(url)} failed{for_item}: {what} [{self.conn_id}]"),
            method=method,
            url=mask(redact_url(url)),
            conn_id=self.conn_id,
            item=item,
            attempts=1,
            permanent=True,
        )

    def _usage_error(self, exc: Exception, method: str, url: str, opened: Opened) -> Exception:
        """The error for a failure that is not about getting an answer."""
        mask = opened.mask.with_url(url)
        shown = redact_url(url)
        if isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError, ValueError, TypeError)):
            return HTTPClientUsageError(
                mask(f"{method} {shown}: the request cannot be made: {type(exc).__name__}: {exc}")
            )
        if isinstance(exc, aiohttp.ClientError):
            item = current_item()
            for_item = f" (for {item})" if item else ""
            self._failed += 1
            return HTTPRequestError(
                mask(f"{method} {shown} failed{for_item}: {type(exc).__name__}: {exc} [{self.conn_id}]"),
                method=method,
                url=mask(shown),
                conn_id=self.conn_id,
                item=item,
            )
        return exc

    # -- waiting when the server asks -----------------------------------------------------------

    def _pause(self, opened: Opened, seconds: float, status: int, reason: str) -> None:
        """Hold every new request of the client for ``seconds`` (the server's limit is the client's)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        resume_at = now + seconds
        if resume_at <= self._resume_at:
            return
        self._resume_at = resume_at
        self._pauses_unlogged += 1
        if status == 429:
            self._rate_limited += 1
            if self._rate_limited == _RATE_LIMIT_ADVICE_AFTER:
                # Paused again and again: the client sends faster than the API allows, and every
                # pause holds all its requests (often a whole second). Once per client.
                log.warning(
                    "%s has asked this client to wait (429) %d times, each pause holding every request: "
                    "to stay below the API's rate limit, start the items slower "
                    "(.iterate(..., rate_limit='N/s')) or run fewer at a time",
                    opened.settings.describe(),
                    self._rate_limited,
                )
        if now - self._pause_logged_at >= _PAUSE_LOG_INTERVAL:
            also = (
                f" ({self._pauses_unlogged - 1} more since the last such line)"
                if self._pauses_unlogged > 1
                else ""
            )
            log.info(
                "%s answered %d %s, asking to wait %.3gs: new requests wait until then%s",
                opened.settings.describe(),
                status,
                reason,
                seconds,
                also,
            )
            self._pause_logged_at = now
            self._pauses_unlogged = 0

    async def _wait_for_resume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            remaining = self._resume_at - loop.time()
            if remaining <= 0:
                return
            # The held requests go out spread over as long again as the pause (at most
            # _RESUME_SPREAD): all at once they would be a burst the rate limit that asked for the
            # pause refuses again, and the client would pause again and again.
            pause = remaining + self._rng.random() * min(_RESUME_SPREAD, remaining)
            started = time.monotonic()
            await asyncio.sleep(pause)
            self._paused += time.monotonic() - started

    def _note_retry(
        self, opened: Opened, method: str, url: str, what: str, attempt: int, delay: float
    ) -> None:
        self._retried += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s",
                opened.mask.with_url(url)(
                    f"{method} {redact_url(url)}: {what}; attempt {attempt + 1} in {delay:.2f}s "
                    f"[{self.conn_id}]"
                ),
            )


def _with_total(base: aiohttp.ClientTimeout, total: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=total, connect=None, sock_connect=base.sock_connect, sock_read=base.sock_read
    )


def _describe(options: dict[str, Any]) -> str:
    """Options for a message: numbers and flags as they are; a connection by its id, never its
    repr (the SDK's shows the password and the extras)."""
    shown = []
    for name, value in sorted(options.items()):
        if value is None or isinstance(value, (bool, int, float)):
            shown.append(f"{name}={value!r}")
        elif name == "connection":
            shown.append(f"connection=<connection {getattr(value, 'conn_id', None)!r}>")
        elif isinstance(value, RetryPolicy):
            shown.append(f"{name}={value!r}")
        else:
            shown.append(f"{name}=<{type(value).__name__}>")
    return ", ".join(shown) or "none"


# The clients shared() made, per event loop and connection id.
_SHARED: PerLoop[HTTPClient] = PerLoop("HTTPClient", HTTPClientUsageError, _describe)
