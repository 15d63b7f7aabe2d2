"""The HTTP test server's ASGI applications: the API under test and the admin API that observes it.

Runs in the server's process (``python -m devtools.http_server``); ``devtools.http_server`` is the
tests' side. The API (every path below answers JSON unless said otherwise):

=============================  ===========================================================
``GET /records/{id}``          a record's detail, 2–10 KB (``devtools._http_data.record``)
``POST /records``              create a record (any JSON body); ``?delay_ms=`` answers late
``GET /list/link``             ``?page=&per_page=``: a JSON list, the next page in a
                               ``Link: <...>; rel="next"`` header (RFC 8288)
``GET /list/cursor``           ``?cursor=&limit=``: ``{"data": [...], "meta": {"next_cursor"}}``
``GET /list/offset``           ``?offset=&limit=``: ``{"items": [...], "total", ...}``
``GET /list/page``             ``?page=&per_page=``: ``{"results": [...], "page", "total_pages"}``
``* /flaky/{key}``             the first ``?fail=N`` requests for ``key`` answer ``?status=``
                               (503), with ``Retry-After: ?retry_after=`` if given; then 200
``* /status/{code}``           answers ``code``; ``?retry_after=`` adds the header,
                               ``?echo_headers=1`` puts the request's headers in the body
``* /slow``                    answers after ``?ms=`` milliseconds
``GET /large``                 ``?size=`` bytes of ``devtools._http_data.large_body``, streamed
``* /echo``                    the request as the server saw it (method, path, headers, body)
``GET /whoami``                how the request authenticated
=============================  ===========================================================

Before routing, every request is recorded (arrival time, method, path, connection, client),
then checked in this order: authentication (401) when the server has credentials, the client's
rate limit (429 with ``Retry-After``), the capacity (503 beyond ``capacity`` requests in flight),
then it waits the configured latency (``latency_ms`` plus ``latency_per_request_ms`` for each
other request in flight: latency grows with load).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import hashlib
import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, fields
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ._http_data import large_body, record_bytes, record_summary

__all__ = ["AdminApp", "ApiApp", "ServerSettings", "ServerState"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_BODY = 16 * 1024 * 1024
MAX_RECORDED = 500_000
DEFAULT_PAGE = 50
MAX_PAGE = 1000


@dataclass(frozen=True)
class ServerSettings:
    """The server's behaviour; every field but ``tls`` and ``keep_alive_timeout`` can change while
    it runs (``HTTPTestServer.configure``)."""

    #: records served (ids 1..records)
    records: int = 1000
    #: requests per second each client may make (``None``: no limit); a client is its
    #: ``X-Client-Id`` header, else its ``Authorization`` header, else its address
    rate_limit: float | None = None
    #: requests a client may make at once before its rate applies (the token bucket's size)
    burst: int = 10
    #: how a 429 says when to come back: ``"seconds"`` or ``"date"`` (an HTTP date)
    retry_after: str = "seconds"
    #: requests in flight beyond which the server answers 503 (``None``: no limit)
    capacity: int | None = None
    #: the ``Retry-After`` of those 503s, in seconds (``None``: no header)
    overload_retry_after: float | None = None
    #: added to every request's answer time
    latency_ms: float = 0.0
    #: added for each other request in flight when a request arrives: latency grows with load
    latency_per_request_ms: float = 0.0
    #: ``[user, password]``: every API request must authenticate (basic, or ``bearer_token``)
    basic_auth: tuple[str, str] | None = None
    bearer_token: str | None = None
    #: keep a record of every request (the benchmark may turn it off)
    record_requests: bool = True
    #: serve HTTPS with a certificate of a CA made at start
    tls: bool = False
    #: seconds an idle connection is kept open (uvicorn's default is 5)
    keep_alive_timeout: float = 5.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown server settings: {', '.join(sorted(unknown))}")
        if data.get("basic_auth") is not None:
            data = {**data, "basic_auth": tuple(data["basic_auth"])}
        return cls(**data)


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.updated = now


class ServerState:
    """Everything the API counts and the admin API reports; one per server process."""

    def __init__(self, settings: ServerSettings) -> None:
        self.initial = settings
        self.settings = settings
        #: open connections by peer address -> their number (numbers are never reused)
        self._connection_ids: dict[tuple[str, int], int] = {}
        self._next_connection = 0
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Back to the settings the server started with; counters and records cleared. Open
        connections stay open (and count as the new peak); requests in flight go on."""
        self.settings = self.initial
        self.requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_RECORDED)
        self.request_count = 0
        self.in_flight_peak = self.in_flight
        self.statuses: collections.Counter[int] = collections.Counter()
        self.connections_opened = 0
        self.connections_peak = len(self._connection_ids)
        self.buckets: dict[str, _Bucket] = {}
        self.flaky: collections.Counter[str] = collections.Counter()
        self.created = 0

    # -- connections (called by the server's protocol) ------------------------------------------

    def connection_made(self, peer: Any) -> None:
        self._next_connection += 1
        self.connections_opened += 1
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._connection_ids[(str(peer[0]), int(peer[1]))] = self._next_connection
        self.connections_peak = max(self.connections_peak, len(self._connection_ids))

    def connection_lost(self, peer: Any) -> None:
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._connection_ids.pop((str(peer[0]), int(peer[1])), None)

    def connection_of(self, client: Any) -> int | None:
        if not client:
            return None
        return self._connection_ids.get((str(client[0]), int(client[1])))

    # -- what the admin API shows ---------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "connections_opened": self.connections_opened,
            "connections_open": len(self._connection_ids),
            "connections_peak": self.connections_peak,
            "requests": self.request_count,
            "in_flight": self.in_flight,
            "in_flight_peak": self.in_flight_peak,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "created": self.created,
        }

    def configure(self, changes: dict[str, Any]) -> None:
        fixed = {"tls", "keep_alive_timeout"} & set(changes)
        if fixed:
            raise ValueError(f"{', '.join(sorted(fixed))} cannot change while the server runs")
        merged = ServerSettings.from_json({**self.settings.to_json(), **changes})
        self.settings = merged
        if "rate_limit" in changes or "burst" in changes:
            self.buckets.clear()

    # -- rate limit -----------------------------------------------------------------------------

    def wait_for_token(self, client: str, now: float) -> float:
        """0 if ``client`` may go now (a token is taken), else the seconds until it may."""
        rate = self.settings.rate_limit
        if rate is None:
            return 0.0
        burst = max(1, self.settings.burst)
        bucket = self.buckets.get(client)
        if bucket is None:
            bucket = self.buckets[client] = _Bucket(float(burst), now)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate


# -- small ASGI helpers ---------------------------------------------------------------------------


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


async def _respond(
    send: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    all_headers = [(b"content-length", str(len(body)).encode()), *(headers or [])]
    if body and not any(name == b"content-type" for name, _ in all_headers):
        all_headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise ValueError("request body too large")
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _int(query: dict[str, str], name: str, default: int, low: int = 0, high: int | None = None) -> int:
    try:
        value = int(query.get(name, default))
    except ValueError:
        raise _BadRequest(f"{name} must be an integer") from None
    if value < low or (high is not None and value > high):
        raise _BadRequest(f"{name} must be between {low} and {high}")
    return value


class _BadRequest(Exception):
    pass


def _retry_after_value(seconds: float, style: str) -> bytes:
    wait = max(1, math.ceil(seconds))
    if style == "date":
        return formatdate(math.ceil(time.time()) + wait, usegmt=True).encode()
    return str(wait).encode()


def _auth_of(header: str | None, settings: ServerSettings) -> tuple[str | None, bool]:
    """(how the request authenticated, for the record; whether that is accepted)."""
    required = settings.basic_auth is not None or settings.bearer_token is not None
    if not header:
        return None, not required
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "basic:?", False
        ok = settings.basic_auth is not None and (user, password) == tuple(settings.basic_auth)
        return f"basic:{user}" + ("" if ok else ":wrong"), ok or not required
    if scheme.lower() == "bearer":
        ok = settings.bearer_token is not None and value.strip() == settings.bearer_token
        return "bearer" + ("" if ok else ":wrong"), ok or not required
    return scheme.lower() or "?", not required


# -- the API --------------------------------------------------------------------------------------


class ApiApp:
    """The API the tests and the benchmark call (see the module's docstring)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        state = self.state
        settings = state.settings
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        path = scope["path"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        auth, authorized = _auth_of(headers.get("authorization"), settings)
        now = time.time()
        state.request_count += 1
        entry: dict[str, Any] | None = None
        if settings.record_requests:
            entry = {
                "seq": state.request_count,
                "time": now,
                "method": method,
                "path": path
                + ("?" + scope["query_string"].decode("latin-1") if scope["query_string"] else ""),
                "connection": state.connection_of(scope.get("client")),
                "client": headers.get("x-client-id"),
                "auth": auth,
                "http_version": scope.get("http_version"),
                "status": None,
            }
            state.requests.append(entry)
        state.in_flight += 1
        state.in_flight_peak = max(state.in_flight_peak, state.in_flight)
        status = 500
        try:
            status = await self._handle(scope, receive, send, method, path, query, headers, authorized, now)
        finally:
            state.in_flight -= 1
            state.statuses[status] += 1
            if entry is not None:
                entry["status"] = status

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        authorized: bool,
        now: float,
    ) -> int:
        state = self.state
        settings = state.settings
        if not authorized:
            await _respond(
                send,
                401,
                _json({"error": "unauthorized"}),
                [(b"www-authenticate", b'Basic realm="test", Bearer')],
            )
            return 401
        client = headers.get("x-client-id") or (
            "auth:" + hashlib.sha256(headers["authorization"].encode()).hexdigest()[:16]
            if "authorization" in headers
            else str((scope.get("client") or ("?",))[0])
        )
        wait = state.wait_for_token(client, now)
        if wait > 0:
            body = _json({"error": "rate limited", "retry_in": round(wait, 3)})
            await _respond(
                send, 429, body, [(b"retry-after", _retry_after_value(wait, settings.retry_after))]
            )
            return 429
        if settings.capacity is not None and state.in_flight > settings.capacity:
            extra = []
            if settings.overload_retry_after is not None:
                extra.append((b"retry-after", _retry_after_value(settings.overload_retry_after, "seconds")))
            await _respond(send, 503, _json({"error": "overloaded"}), extra)
            return 503
        delay = settings.latency_ms + settings.latency_per_request_ms * (state.in_flight - 1)
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        try:
            return await self._route(scope, receive, send, method, path, query, headers)
        except _BadRequest as exc:
            await _respond(send, 400, _json({"error": str(exc)}))
            return 400

    async def _route(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
    ) -> int:
        parts = [p for p in path.split("/") if p]
        records = self.state.settings.records
        if parts[:1] == ["records"]:
            if len(parts) == 1 and method == "POST":
                body = await _read_body(receive)
                delay = _int(query, "delay_ms", 0, 0, 600_000)
                if delay:
                    await asyncio.sleep(delay / 1000)
                self.state.created += 1
                answer = {"id": records + self.state.created, "received_bytes": len(body)}
                await _respond(send, 201, _json(answer))
                return 201
            if len(parts) == 2 and method in ("GET", "HEAD"):
                try:
                    record_id = int(parts[1])
                except ValueError:
                    record_id = -1
                if not 1 <= record_id <= records:
                    await _respond(send, 404, _json({"error": f"no record {parts[1]}"}))
                    return 404
                await _respond(send, 200, record_bytes(record_id))
                return 200
        if parts[:1] == ["list"] and len(parts) == 2 and method == "GET":
            return await self._list(send, parts[1], query, headers, scope)
        if parts[:1] == ["flaky"] and len(parts) == 2:
            await _read_body(receive)
            key = parts[1]
            self.state.flaky[key] += 1
            if self.state.flaky[key] <= _int(query, "fail", 1):
                status = _int(query, "status", 503, 100, 599)
                extra = []
                if "retry_after" in query:
                    extra.append((b"retry-after", query["retry_after"].encode("latin-1")))
                await _respond(send, status, _json({"error": "try again", "key": key}), extra)
                return status
            await _respond(send, 200, _json({"key": key, "attempts": self.state.flaky[key]}))
            return 200
        if parts[:1] == ["status"] and len(parts) == 2:
            await _read_body(receive)
            status = _int({"s": parts[1]}, "s", 500, 100, 599)
            answer: dict[str, Any] = {"error": f"status {status} as asked"}
            if query.get("echo_headers"):
                answer["headers"] = headers
            extra = []
            if "retry_after" in query:
                extra.append((b"retry-after", query["retry_after"].encode("latin-1")))
            await _respond(send, status, _json(answer), extra)
            return status
        if parts == ["slow"]:
            await _read_body(receive)
            await asyncio.sleep(_int(query, "ms", 100, 0, 600_000) / 1000)
            await _respond(send, 200, _json({"slept_ms": _int(query, "ms", 100, 0, 600_000)}))
            return 200
        if parts == ["large"] and method == "GET":
            size = _int(query, "size", 1024 * 1024, 0, 1 << 40)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-length", str(size).encode()),
                        (b"content-type", b"application/octet-stream"),
                    ],
                }
            )
            for block in large_body(size):
                await send({"type": "http.response.body", "body": block, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return 200
        if parts == ["echo"]:
            body = await _read_body(receive)
            answer = {
                "method": method,
                "path": path,
                "query": query,
                "headers": headers,
                "body_bytes": len(body),
                "body": body[:4096].decode("utf-8", "replace"),
                "http_version": scope.get("http_version"),
            }
            await _respond(send, 200, _json(answer))
            return 200
        if parts == ["whoami"]:
            auth, _ = _auth_of(headers.get("authorization"), self.state.settings)
            await _respond(send, 200, _json({"auth": auth}))
            return 200
        await _respond(send, 404, _json({"error": f"no route {method} {path}"}))
        return 404

    async def _list(
        self, send: Send, style: str, query: dict[str, str], headers: dict[str, str], scope: Scope
    ) -> int:
        total = self.state.settings.records
        if style in ("link", "page"):
            per_page = _int(query, "per_page", DEFAULT_PAGE, 1, MAX_PAGE)
            page = _int(query, "page", 1, 1)
            pages = max(1, math.ceil(total / per_page))
            start = (page - 1) * per_page
            items = [record_summary(i + 1) for i in range(start, min(start + per_page, total))]
            if style == "page":
                body = {"results": items, "page": page, "per_page": per_page, "total_pages": pages}
                await _respond(send, 200, _json(body))
                return 200
            base = f"{scope.get('scheme', 'http')}://{headers.get('host', '127.0.0.1')}/list/link"
            links = []
            if page < pages:
                links.append(f'<{base}?{urlencode({"page": page + 1, "per_page": per_page})}>; rel="next"')
            links.append(f'<{base}?{urlencode({"page": pages, "per_page": per_page})}>; rel="last"')
            await _respond(send, 200, _json(items), [(b"link", ", ".join(links).encode())])
            return 200
        if style == "cursor":
            limit = _int(query, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
            cursor = query.get("cursor")
            start = 0
            if cursor:
                try:
                    start = int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("after:"))
                except (ValueError, binascii.Error):
                    raise _BadRequest("invalid cursor") from None
            end = min(start + limit, total)
            next_cursor = base64.urlsafe_b64encode(f"after:{end}".encode()).decode() if end < total else None
            items = [record_summary(i + 1) for i in range(start, end)]
            await _respond(send, 200, _json({"data": items, "meta": {"next_cursor": next_cursor}}))
            return 200
        if style == "offset":
            limit = _int(query, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
            offset = _int(query, "offset", 0, 0)
            items = [record_summary(i + 1) for i in range(offset, min(offset + limit, total))]
            body = {"items": items, "total": total, "offset": offset, "limit": limit}
            await _respond(send, 200, _json(body))
            return 200
        await _respond(send, 404, _json({"error": f"no listing style {style!r}"}))
        return 404


# -- the admin API --------------------------------------------------------------------------------


class AdminApp:
    """``GET /stats``, ``GET /requests?since=<seq>``, ``POST /reset``, ``POST /configure`` (JSON)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        state = self.state
        method, path = scope["method"], scope["path"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        body = await _read_body(receive)
        if (method, path) == ("GET", "/stats"):
            await _respond(send, 200, _json(state.stats()))
        elif (method, path) == ("GET", "/requests"):
            since = int(query.get("since", 0))
            await _respond(send, 200, _json([r for r in state.requests if r["seq"] > since]))
        elif (method, path) == ("GET", "/settings"):
            await _respond(send, 200, _json(state.settings.to_json()))
        elif (method, path) == ("POST", "/reset"):
            state.reset()
            await _respond(send, 200, _json(state.stats()))
        elif (method, path) == ("POST", "/configure"):
            try:
                state.configure(json.loads(body or b"{}"))
            except (ValueError, TypeError) as exc:
                await _respond(send, 400, _json({"error": str(exc)}))
                return
            await _respond(send, 200, _json(state.settings.to_json()))
        else:
            await _respond(send, 404, _json({"error": f"no admin route {method} {path}"}))
