"""Admission to run an attempt under an adaptive limit, for the event loop and for threads.

A fixed limit needs no gate: the engines run exactly ``concurrency`` workers. With
``concurrency="auto"`` they run ``max_concurrency`` workers, and each holds a permit while its
attempt runs; the number of permits follows :class:`~._adaptive.AdaptiveLimit` (and stops all
starts while a ``Retry-After`` pause lasts).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from ._adaptive import AdaptiveLimit

__all__ = ["AsyncGate", "ThreadGate"]


class AsyncGate:
    """Permits for coroutines on one event loop."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self._limit = limit
        self._holding = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def holding(self) -> int:
        return self._holding

    async def acquire(self) -> None:
        while True:
            pause = self._limit.pause_remaining()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            if self._holding < self._limit.current:
                self._holding += 1
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if not waiter.cancelled() and waiter.done():
                    self._wake()  # it was woken for a permit it will not take: pass it on
                raise

    def release(self) -> None:
        self._holding -= 1
        self._wake()

    def _wake(self) -> None:
        # The limit may have grown: wake as many waiters as there are free permits.
        free = self._limit.current - self._holding
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1


class ThreadGate:
    """Permits for threads."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self._limit = limit
        self._holding = 0
        self._changed = threading.Condition()

    @property
    def holding(self) -> int:
        return self._holding

    def acquire(self, stopped: threading.Event | None = None) -> None:
        with self._changed:
            while True:
                pause = self._limit.pause_remaining()
                if pause > 0:
                    self._changed.wait(pause)
                    continue
                if self._holding < self._limit.current:
                    self._holding += 1
                    return
                # Woken by a release; the timeout rechecks a limit that grew meanwhile.
                self._changed.wait(0.05)
                if stopped is not None and stopped.is_set():
                    self._holding += 1  # the caller releases it, as after any acquire
                    return

    def release(self) -> None:
        with self._changed:
            self._holding -= 1
            self._changed.notify_all()
