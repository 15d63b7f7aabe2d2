"""Helpers shared by the HTTP tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

#: no test's event loop runs longer than this: a hang fails the test with a traceback instead
RUN_TIMEOUT = 120.0


def run(coro: Awaitable[T], *, timeout: float = RUN_TIMEOUT) -> T:
    """``asyncio.run`` with a deadline."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())
