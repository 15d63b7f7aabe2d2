"""What a request returns: :class:`HTTPResponse` (read whole) and :class:`HTTPStream` (read as it comes)."""

from __future__ import annotations

import json as _json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

__all__ = ["HTTPResponse", "HTTPStream", "parse_links"]


class HTTPResponse:
    """A response read whole (read-only). Error statuses are raised as ``HTTPStatusError`` unless
    the call (or the connection's ``check_response`` extra) asked for them back."""

    __slots__ = ("attempts", "content", "headers", "method", "reason", "status", "url")

    def __init__(
        self,
        method: str,
        url: str,
        status: int,
        reason: str,
        headers: Mapping[str, str],
        content: bytes,
        attempts: int = 1,
    ) -> None:
        self.method = method
        #: the URL that answered (after redirects)
        self.url = url
        self.status = status
        self.reason = reason
        #: case-insensitive; a name may repeat (``headers.getall("Set-Cookie")``)
        self.headers = headers
        self.content = content
        #: times the request was sent (retries + 1)
        self.attempts = attempts

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def text(self) -> str:
        """The body decoded with the charset the server named (UTF-8 otherwise)."""
        return self.content.decode(_charset(self.headers), errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self.content)

    @property
    def links(self) -> dict[str, str]:
        """The ``Link`` header's targets by relation (``{"next": "https://..."}``), RFC 8288."""
        return parse_links(self.headers.get("Link", ""))

    def __repr__(self) -> str:
        return f"<HTTPResponse {self.method} {self.status} {self.reason}, {len(self.content)} bytes>"


class HTTPStream:
    """A response whose body is read as it arrives: ``async for chunk in stream.iter_chunks()``.

    Given by ``async with client.stream(...) as stream``; the connection goes back to the pool
    when the block ends (a body not read to its end closes the connection instead).
    """

    __slots__ = ("_response", "attempts", "method", "url")

    def __init__(self, method: str, url: str, response: aiohttp.ClientResponse, attempts: int) -> None:
        self.method = method
        self.url = url
        self._response = response
        self.attempts = attempts

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def reason(self) -> str:
        return self._response.reason or ""

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def content_length(self) -> int | None:
        """The ``Content-Length`` the server announced, if any."""
        return self._response.content_length

    async def iter_chunks(self, size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """The body in chunks of at most ``size`` bytes, as they arrive (never more in memory)."""
        content = self._response.content
        while True:
            chunk = await content.read(size)
            if not chunk:
                return
            yield chunk

    async def read(self) -> bytes:
        """The rest of the body at once (for small bodies)."""
        return await self._response.read()

    def __repr__(self) -> str:
        return f"<HTTPStream {self.method} {self.status}>"


def _charset(headers: Mapping[str, str]) -> str:
    content_type = headers.get("Content-Type", "")
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"') or "utf-8"
    return "utf-8"


def parse_links(header: str) -> dict[str, str]:
    """``<url>; rel="next", <url2>; rel="last"`` -> ``{"next": url, "last": url2}`` (first wins)."""
    links: dict[str, str] = {}
    for part in _split_links(header):
        target, _, params = part.partition(">")
        target = target.strip().lstrip("<").strip()
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "rel":
                for rel in value.strip().strip('"').split():
                    links.setdefault(rel.lower(), target)
    return links


def _split_links(header: str) -> list[str]:
    # Commas separate links, but may also appear inside <...> or a quoted parameter.
    parts: list[str] = []
    current: list[str] = []
    in_url = in_quotes = False
    for char in header:
        if char == "<" and not in_quotes:
            in_url = True
        elif char == ">" and not in_quotes:
            in_url = False
        elif char == '"' and not in_url:
            in_quotes = not in_quotes
        if char == "," and not in_url and not in_quotes:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]
