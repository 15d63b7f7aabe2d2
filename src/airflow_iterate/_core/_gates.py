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
    """Permits for coroutines on one event loop.

    A released permit is handed to the first waiter, never left for whoever asks next: otherwise
    a worker that was not waiting could take it between the wake-up and the waiter's turn. Items
    put back for overload (``first=True``) wait ahead of workers that want to start a new item,
    so that an item refused once runs again as soon as the server has room, not after the input.
    """

    def __init__(self, limit: AdaptiveLimit) -> None:
        self._limit = limit
        self._holding = 0
        self._first: deque[asyncio.Future[None]] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._pause_timer: asyncio.TimerHandle | None = None

    @property
    def holding(self) -> int:
        return self._holding

    async def acquire(self, *, first: bool = False) -> None:
        pause = self._limit.pause_remaining()
        if pause <= 0 and self._holding < self._limit.current and not self._first and not self._waiters:
            self._holding += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        (self._first if first else self._waiters).append(waiter)
        self._wake()  # the limit may have grown since the last release
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a permit it will not use: pass it on
            else:
                self._forget(waiter)
            raise

    def release(self) -> None:
        self._holding -= 1
        self._wake()

    def _forget(self, waiter: asyncio.Future[None]) -> None:
        for queue in (self._first, self._waiters):
            try:
                queue.remove(waiter)
            except ValueError:
                continue
            return

    def _wake(self) -> None:
        pause = self._limit.pause_remaining()
        if pause > 0:
            # Nobody starts during a Retry-After; the waiters get their permits when it ends.
            if self._pause_timer is None:
                self._pause_timer = asyncio.get_running_loop().call_later(pause, self._end_pause)
            return
        while self._holding < self._limit.current:
            queue = self._first or self._waiters
            if not queue:
                return
            waiter = queue.popleft()
            if not waiter.done():
                self._holding += 1
                waiter.set_result(None)

    def _end_pause(self) -> None:
        self._pause_timer = None
        self._wake()


class ThreadGate:
    """Permits for threads; items put back for overload (``first=True``) go ahead of new items."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self._limit = limit
        self._holding = 0
        self._first_waiting = 0
        self._changed = threading.Condition()

    @property
    def holding(self) -> int:
        return self._holding

    def acquire(self, stopped: threading.Event | None = None, *, first: bool = False) -> None:
        with self._changed:
            if first:
                self._first_waiting += 1
            try:
                while True:
                    pause = self._limit.pause_remaining()
                    if pause > 0:
                        self._changed.wait(pause)
                        continue
                    if self._holding < self._limit.current and (first or not self._first_waiting):
                        self._holding += 1
                        return
                    # Woken by a release; the timeout rechecks a limit that grew meanwhile.
                    self._changed.wait(0.05)
                    if stopped is not None and stopped.is_set():
                        self._holding += 1  # the caller releases it, as after any acquire
                        return
            finally:
                if first:
                    self._first_waiting -= 1

    def release(self) -> None:
        with self._changed:
            self._holding -= 1
            self._changed.notify_all()
