"""One measured client in a process of its own: N GETs of record details, C at a time.

Prints one JSON line: wall and CPU seconds of the requests alone (imports, start-up and one
warm-up request left out), requests that failed, bytes read. ``--client``:

* ``aiohttp``: one ``aiohttp.ClientSession`` over a ``TCPConnector(limit=K, limit_per_host=K)``;
* ``httpx``: one ``httpx.AsyncClient`` with ``Limits(max_connections=K)`` (HTTP/1.1);
* ``provider``: the http provider's ``HttpAsyncHook(method="GET").session()``, one
  ``AsyncHttpSession`` for all requests, ``run(endpoint)`` then ``read()`` (its own aiohttp
  session: 100 connections at most, not K);
* ``airflow_iterate``: ``airflow_iterate.http.HTTPClient`` (when the package has it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

CONN_ID = "bench_http"


async def _drive(
    fetch: Callable[[str], Awaitable[int]], paths: list[str], concurrency: int
) -> tuple[int, int]:
    source = iter(paths)
    failures = 0
    received = 0

    async def worker() -> None:
        nonlocal failures, received
        for path in source:
            try:
                received += await fetch(path)
            except Exception:
                failures += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures, received


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    paths = [f"/records/{i % args.records + 1}" for i in range(args.requests)]
    base = args.url
    k = args.connections
    started_cpu = started = 0.0

    def start() -> None:
        nonlocal started, started_cpu
        started, started_cpu = time.perf_counter(), time.process_time()

    if args.client == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=k, limit_per_host=k)
        async with aiohttp.ClientSession(base, connector=connector) as session:

            async def fetch(path: str) -> int:
                async with session.get(path) as response:
                    response.raise_for_status()
                    return len(await response.read())

            await fetch(paths[0])  # warm-up, not measured: imports, the connection read
            start()
            failures, received = await _drive(fetch, paths, args.concurrency)
    elif args.client == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=k, max_keepalive_connections=k)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

            async def fetch(path: str) -> int:
                response = await client.get(path)
                response.raise_for_status()
                return len(response.content)

            await fetch(paths[0])  # warm-up, not measured: imports, the connection read
            start()
            failures, received = await _drive(fetch, paths, args.concurrency)
    elif args.client == "provider":
        from airflow.providers.http.hooks.http import HttpAsyncHook

        hook = HttpAsyncHook(method="GET", http_conn_id=CONN_ID, retry_limit=1)
        async with hook.session() as session:

            async def fetch(path: str) -> int:
                response = await session.run(endpoint=path)
                try:
                    return len(await response.read())
                finally:
                    response.release()

            await fetch(paths[0])  # warm-up, not measured: imports, the connection read
            start()
            failures, received = await _drive(fetch, paths, args.concurrency)
    elif args.client == "airflow_iterate":
        from airflow_iterate.http import HTTPClient

        async with HTTPClient(CONN_ID, max_connections_per_host=k) as client:

            async def fetch(path: str) -> int:
                return len((await client.get(path)).content)

            await fetch(paths[0])  # warm-up, not measured: imports, the connection read
            start()
            failures, received = await _drive(fetch, paths, args.concurrency)
    else:
        raise SystemExit(f"unknown client {args.client!r}")
    wall = time.perf_counter() - started
    cpu = time.process_time() - started_cpu
    return {"wall": wall, "cpu": cpu, "failures": failures, "bytes": received, "requests": len(paths)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_measure(args))), flush=True)


if __name__ == "__main__":
    main()
