"""Every pagination style to the last page, one page requested at a time, and listings that never end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from devtools.delay_proxy import DelayProxy
from devtools.http_server import HTTPTestServer

from airflow_iterate.http import (
    Cursor,
    HTTPClient,
    HTTPClientUsageError,
    HTTPPaginationError,
    LinkHeader,
    OffsetLimit,
    PageNumber,
    paginate,
    paginate_pages,
)

from ._util import run
from .conftest import RECORDS

STYLES: list[tuple[str, str, Any, str | None, dict[str, Any]]] = [
    ("link", "list/link", LinkHeader(), None, {"per_page": 64}),
    ("cursor", "list/cursor", Cursor("meta.next_cursor"), "data", {"limit": 70}),
    ("next-url", "list/cursor", Cursor("meta.next", param=None), "data", {"limit": 70}),
    ("offset-total", "list/offset", OffsetLimit(limit=90, total="total"), "items", {}),
    ("offset-short-page", "list/offset", OffsetLimit(limit=90), "items", {}),
    ("page-count", "list/page", PageNumber(per_page=80, total_pages="total_pages"), "results", {}),
    ("page-until-empty", "list/page", PageNumber(), "results", {"per_page": 80}),
]


@pytest.mark.parametrize(("name", "url", "style", "items", "params"), STYLES, ids=[s[0] for s in STYLES])
def test_every_style_lists_every_record_once_to_the_last_page(
    http_server: HTTPTestServer,
    make_proxy: Callable[..., DelayProxy],
    make_connection: Callable[..., str],
    name: str,
    url: str,
    style: Any,
    items: str | None,
    params: dict[str, Any],
) -> None:
    proxy = make_proxy(http_server, delay=0.002)
    conn_id = make_connection(http_server, via=proxy)

    async def main() -> list[int]:
        async with HTTPClient(conn_id) as client:
            return [item["id"] async for item in paginate(client, url, style, items=items, params=params)]

    assert run(main()) == list(range(1, RECORDS + 1))
    requested = http_server.requests(f"/{url}")
    per_page = next(iter(params.values()), None) or getattr(style, "limit", None) or style.per_page
    pages = -(-RECORDS // per_page)
    # one request per page; styles that only learn the end from an empty or short page ask once more
    assert pages <= len(requested) <= pages + 1, [r.path for r in requested]


def test_pages_come_one_at_a_time_and_stopping_early_asks_no_more(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server)

    async def main() -> None:
        async with HTTPClient(conn_id) as client:
            pages = paginate_pages(
                client, "list/cursor", Cursor("meta.next_cursor"), items="data", params={"limit": 10}
            )
            first = await pages.__anext__()
            assert (first.number, len(first.items), first.response.status) == (1, 10, 200)
            assert len(http_server.requests("/list/cursor")) == 1  # nothing fetched ahead
            second = await pages.__anext__()
            assert second.items[0]["id"] == 11
            await pages.aclose()
            limited = [p.number async for p in paginate_pages(client, "list/link", LinkHeader(), max_pages=3)]
            assert limited == [1, 2, 3]

    run(main())
    assert len(http_server.requests("/list/cursor")) == 2
    assert len(http_server.requests("/list/link")) == 3


def test_a_listing_that_repeats_itself_is_an_error_not_a_loop(
    http_server: HTTPTestServer, make_connection: Callable[..., str]
) -> None:
    conn_id = make_connection(http_server)

    async def main() -> None:
        async with HTTPClient(conn_id) as client:
            # the server ignores this parameter: every page is the first one, with the same cursor
            style = Cursor("meta.next_cursor", param="not_the_cursor")
            with pytest.raises(HTTPPaginationError, match="does not end: page 2 points back"):
                [item async for item in paginate(client, "list/cursor", style, items="data")]
            with pytest.raises(HTTPPaginationError, match="'meta' in the body is a dict, not a list"):
                [
                    item
                    async for item in paginate(
                        client, "list/cursor", Cursor("meta.next_cursor"), items="meta"
                    )
                ]
            with pytest.raises(HTTPPaginationError, match="name the list with items="):
                [item async for item in paginate(client, "list/offset", OffsetLimit())]
            with pytest.raises(HTTPClientUsageError, match="style must be"):
                [item async for item in paginate(client, "list/offset", "offset")]  # type: ignore[arg-type]

    run(main())
    assert len(http_server.requests("/list/cursor?not_the_cursor")) == 1
