"""Helpers shared by the SFTP tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from airflow_iterate.sftp import SFTPPool

T = TypeVar("T")

#: no test's event loop runs longer than this: a hang fails the test with a traceback instead
RUN_TIMEOUT = 90.0
#: bound for loops that wait for a state change the pool makes on its own timer or a network event
POLL = 0.01
POLL_LIMIT = 500


def run(coro: Awaitable[T], *, timeout: float = RUN_TIMEOUT) -> T:
    """``asyncio.run`` with a deadline."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def with_pool(conn_id: str, work: Callable[[SFTPPool], Awaitable[T]], **options: Any) -> T:
    """``work(pool)`` on a new pool, which has every client back at the end."""

    async def main() -> T:
        async with SFTPPool(conn_id, **options) as pool:
            result = await work(pool)
            assert pool.statistics().in_use == 0
            return result

    return run(main())


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    for _ in range(POLL_LIMIT):
        if condition():
            return
        await asyncio.sleep(POLL)
    raise AssertionError(f"timed out waiting until {what}")
