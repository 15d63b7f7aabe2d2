"""The approaches that run in a plain process: each GETs records 1..N, parses every body as JSON
and returns the bytes received.

Rows 3 and 4 are the code an Airflow user writes with the http provider's hooks; they run here
directly, not inside a task instance, so that only the approach is measured (a task adds the same
fixed cost to each). Row 6 is the ceiling: httpx and aiohttp used directly, tuned, no Airflow.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable

from ._servers import detail_endpoint


def _ids(count: int) -> range:
    return range(1, count + 1)


async def _workers(ids: Iterable[int], concurrency: int, one: Callable[[int], Awaitable[int]]) -> int:
    """``one(id)`` for every id, ``concurrency`` at a time; the sum of what they return."""
    pending = iter(ids)
    total = 0

    async def worker() -> None:
        nonlocal total
        for record_id in pending:
            # Not `total += await ...`: that reads total before awaiting, losing other workers' adds.
            size = await one(record_id)
            total += size

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total


# -- 3: the sync hook in a loop -------------------------------------------------------------------


def hook_sync(conn_id: str, count: int) -> int:
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="GET", http_conn_id=conn_id)
    total = 0
    for record_id in _ids(count):
        # run() builds a requests Session per call (HttpHook.get_conn()), as every user of the hook
        # gets it: a connection per call.
        response = hook.run(detail_endpoint(record_id))
        response.json()
        total += len(response.content)
    return total


# -- 4: HttpAsyncHook, a session per call (as HttpTrigger calls it) and one shared session --------


async def hook_async_per_call(conn_id: str, count: int, concurrency: int) -> int:
    """``HttpAsyncHook.run()`` with an ``aiohttp.ClientSession`` per call, exactly as ``HttpTrigger``
    (the deferrable operator's trigger) makes each request; gathered under a semaphore."""
    import aiohttp
    from airflow.providers.http.hooks.http import HttpAsyncHook

    hook = HttpAsyncHook(method="GET", http_conn_id=conn_id)
    limit = asyncio.Semaphore(concurrency)

    async def one(record_id: int) -> int:
        async with limit, aiohttp.ClientSession() as session:
            response = await hook.run(session=session, endpoint=detail_endpoint(record_id))
            body = await response.read()
        json.loads(body)
        return len(body)

    return sum(await asyncio.gather(*(one(i) for i in _ids(count))))


async def hook_async_session(conn_id: str, count: int, concurrency: int) -> int:
    """One ``HttpAsyncHook.session()`` (one ``aiohttp.ClientSession``, its default connector) for
    every call, gathered under a semaphore: what the provider offers for many calls."""
    from airflow.providers.http.hooks.http import HttpAsyncHook

    hook = HttpAsyncHook(method="GET", http_conn_id=conn_id)
    limit = asyncio.Semaphore(concurrency)
    async with hook.session() as http:

        async def one(record_id: int) -> int:
            async with limit:
                response = await http.run(endpoint=detail_endpoint(record_id))
                body = await response.read()
            json.loads(body)
            return len(body)

        return sum(await asyncio.gather(*(one(i) for i in _ids(count))))


# -- 6: raw clients, tuned, no Airflow -------------------------------------------------------------


async def raw_httpx(base_url: str, count: int, concurrency: int) -> int:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60.0) as client:

        async def one(record_id: int) -> int:
            response = await client.get("/" + detail_endpoint(record_id))
            response.raise_for_status()
            response.json()
            return len(response.content)

        return await _workers(_ids(count), concurrency, one)


async def raw_aiohttp(base_url: str, count: int, concurrency: int) -> int:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=base_url, connector=connector) as session:

        async def one(record_id: int) -> int:
            async with session.get("/" + detail_endpoint(record_id)) as response:
                response.raise_for_status()
                body = await response.read()
            json.loads(body)
            return len(body)

        return await _workers(_ids(count), concurrency, one)


RAW: dict[str, Callable[[str, int, int], Awaitable[int]]] = {"httpx": raw_httpx, "aiohttp": raw_aiohttp}
