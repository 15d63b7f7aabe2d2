"""Paginated listings as async iterators: :func:`paginate` (items) and :func:`paginate_pages` (pages).

A page is requested only when the one before it has been consumed, so a listing of a million
records holds one page in memory, and stopping early (``break``, ``max_pages``) requests no more.
Inside one item::

    async for record in paginate(client, "records", Cursor("meta.next_cursor"), items="data"):
        ...

To feed ``.iterate()``, list what the items need (ids, URLs: small values) in an upstream task, and
let each item fetch its detail through ``HTTPClient.shared()``. The styles, as values:

* :class:`LinkHeader`: the next page's URL in a ``Link: <...>; rel="next"`` header (RFC 8288);
* :class:`Cursor`: a cursor at a path in the JSON body, sent back as a query parameter (or, with
  ``param=None``, the next page's URL at that path: ``{"next": "https://..."}``);
* :class:`OffsetLimit`: ``?offset=&limit=``, until the ``total`` at a path, or a short page;
* :class:`PageNumber`: ``?page=&per_page=``, until the page count at a path, or an empty page.

A listing that does not end (a cursor or link seen before) raises :class:`HTTPPaginationError`
instead of looping; every request goes through the client, with its retries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from ._errors import HTTPClientUsageError, HTTPPaginationError
from ._redact import redact_url
from ._response import HTTPResponse

if TYPE_CHECKING:
    from ._client import HTTPClient

__all__ = [
    "Cursor",
    "LinkHeader",
    "OffsetLimit",
    "Page",
    "PageNumber",
    "PaginationStyle",
    "paginate",
    "paginate_pages",
]


@dataclass(frozen=True)
class LinkHeader:
    """The next page is the ``Link`` header's target of relation ``rel`` (GitHub, GitLab, ...)."""

    rel: str = "next"


@dataclass(frozen=True)
class Cursor:
    """The next page's cursor is at ``path`` in the JSON body (``"meta.next_cursor"``; a missing,
    null or empty value ends the listing), sent back as the query parameter ``param``. With
    ``param=None`` the value at ``path`` is the next page's URL (``{"next": "https://..."}``)."""

    path: str
    param: str | None = "cursor"


@dataclass(frozen=True)
class OffsetLimit:
    """``?offset=<n>&limit=<limit>``, ``offset`` growing by the items each page had. The listing
    ends at the ``total`` found at that path of the body, or without one at a page shorter than
    ``limit``."""

    limit: int = 100
    total: str | None = None
    offset_param: str = "offset"
    limit_param: str = "limit"
    start: int = 0


@dataclass(frozen=True)
class PageNumber:
    """``?page=<n>[&per_page=<per_page>]`` from ``first``. The listing ends at the page count found
    at ``total_pages`` in the body, or without one at an empty page (or, with ``per_page``, a
    shorter one)."""

    per_page: int | None = None
    total_pages: str | None = None
    page_param: str = "page"
    per_page_param: str = "per_page"
    first: int = 1


PaginationStyle = LinkHeader | Cursor | OffsetLimit | PageNumber


@dataclass(frozen=True)
class Page:
    """One page of a listing."""

    #: 1 for the first page requested
    number: int
    items: list[Any]
    response: HTTPResponse


async def paginate(
    client: HTTPClient,
    url: str,
    style: PaginationStyle,
    *,
    items: str | None = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    max_pages: int | None = None,
) -> AsyncIterator[Any]:
    """Every item of a paginated listing, in order (see the module's docstring).

    :param url: the listing (relative to the connection's base URL, or absolute); its own query
        parameters go in ``params``, which every page repeats.
    :param style: how pages follow each other.
    :param items: where the page's list is in its JSON body (``"data"``, ``"result.items"``);
        ``None``: the body is the list.
    :param max_pages: stop after this many pages.
    """
    async for page in paginate_pages(
        client, url, style, items=items, params=params, headers=headers, max_pages=max_pages
    ):
        for item in page.items:
            yield item


async def paginate_pages(
    client: HTTPClient,
    url: str,
    style: PaginationStyle,
    *,
    items: str | None = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    max_pages: int | None = None,
) -> AsyncIterator[Page]:
    """Every page of a paginated listing, in order: :class:`Page` (its items and response)."""
    if not isinstance(style, (LinkHeader, Cursor, OffsetLimit, PageNumber)):
        raise HTTPClientUsageError(
            f"style must be LinkHeader(), Cursor(path), OffsetLimit() or PageNumber(), got {style!r}"
        )
    if max_pages is not None and max_pages < 1:
        raise HTTPClientUsageError(f"max_pages must be at least 1 (or None), got {max_pages!r}")
    base_params = dict(params or {})
    seen: set[str] = set()
    number = 0
    next_url: str | None = url
    page_params: dict[str, Any] = dict(base_params)
    offset = style.start if isinstance(style, OffsetLimit) else 0
    page_number = style.first if isinstance(style, PageNumber) else 0
    while next_url is not None and (max_pages is None or number < max_pages):
        if isinstance(style, OffsetLimit):
            page_params = {**base_params, style.offset_param: offset, style.limit_param: style.limit}
        elif isinstance(style, PageNumber):
            page_params = {**base_params, style.page_param: page_number}
            if style.per_page is not None:
                page_params[style.per_page_param] = style.per_page
        response = await client.get(next_url, params=page_params or None, headers=headers)
        number += 1
        body = _json(response)
        page_items = _items(body, items, response, number)
        yield Page(number, page_items, response)

        if isinstance(style, LinkHeader):
            target = response.links.get(style.rel.lower())
            next_url = None if not target else urljoin(response.url, target)
            page_params = {}  # the link is the whole next URL
            key = next_url
        elif isinstance(style, Cursor):
            cursor = _at(body, style.path)
            if cursor in (None, ""):
                next_url = None
                key = None
            elif style.param is None:
                next_url = urljoin(response.url, str(cursor))
                page_params = {}
                key = next_url
            else:
                page_params = {**base_params, style.param: cursor}
                key = str(cursor)
        elif isinstance(style, OffsetLimit):
            offset += len(page_items)
            total = _number(body, style.total, response) if style.total else None
            if (total is not None and offset >= total) or (total is None and len(page_items) < style.limit):
                next_url = None
            if not page_items:
                next_url = None
            key = None
        else:
            pages = _number(body, style.total_pages, response) if style.total_pages else None
            short = style.per_page is not None and len(page_items) < style.per_page
            if (pages is not None and page_number >= pages + style.first - 1) or not page_items or short:
                next_url = None
            page_number += 1
            key = None
        if key is not None:
            if key in seen:
                raise HTTPPaginationError(
                    f"the listing {redact_url(url)} does not end: page {number} points back to a page it "
                    f"already listed ({redact_url(key)})"
                )
            seen.add(key)


def _json(response: HTTPResponse) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise HTTPPaginationError(
            f"page of {redact_url(response.url)} is not JSON ({exc}); its pagination cannot be read"
        ) from None


def _at(document: Any, path: str | Sequence[str]) -> Any:
    """The value at a dotted ``path`` (``"meta.next_cursor"``, ``"data.0.id"``); ``None`` if absent."""
    keys = path.split(".") if isinstance(path, str) else list(path)
    value = document
    for key in keys:
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list) and key.lstrip("-").isdigit():
            index = int(key)
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def _items(body: Any, path: str | None, response: HTTPResponse, number: int) -> list[Any]:
    found = body if path is None else _at(body, path)
    if found is None and path is not None:
        return []
    if not isinstance(found, list):
        where = "the body" if path is None else f"{path!r} in the body"
        raise HTTPPaginationError(
            f"page {number} of {redact_url(response.url)}: {where} is a {type(found).__name__}, not a list"
            + ("; name the list with items=" if path is None else "")
        )
    return found


def _number(body: Any, path: str | None, response: HTTPResponse) -> int | None:
    if path is None:
        return None
    value = _at(body, path)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise HTTPPaginationError(
            f"{path!r} in a page of {redact_url(response.url)} is {value!r}, not a number"
        ) from None
