"""``item_timeout``: an attempt that runs too long fails, and its slot goes to the next item.

Async attempts are cancelled at the deadline: their ``finally`` / ``async with`` cleanup runs, and
the attempt fails with :class:`ItemTimeoutError`. A thread cannot be interrupted, so a sync
attempt runs on a thread of its own that its worker waits on; at the deadline the worker stops
waiting, the attempt fails the same way, and the worker goes on with a fresh thread while the old
one finishes in the background, its result thrown away. Abandoned threads are bounded: once
``concurrency`` of them are still running, a worker waits for one to end before it starts another
attempt (the attempts already in flight may still be abandoned: at most ``2 x concurrency - 1``),
so a server that hangs every call slows the run down instead of piling up threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ._errors import ItemTimeoutError

__all__ = ["AbandonedThreads", "SyncAttemptTimeout", "async_with_timeout"]

T = TypeVar("T")


def async_with_timeout(
    call: Callable[[int, T], Awaitable[Any]], limit: float, describe: Callable[[T], str]
) -> Callable[[int, T], Awaitable[Any]]:
    """``call`` whose every attempt is cancelled after ``limit`` seconds (ItemTimeoutError)."""

    if sys.version_info >= (3, 11):

        async def timed(position: int, item: T) -> Any:
            deadline = asyncio.timeout(limit)
            try:
                async with deadline:
                    return await call(position, item)
            except TimeoutError:
                if not deadline.expired():
                    raise  # the item's own TimeoutError
                raise ItemTimeoutError(position, describe(item), limit) from None

    else:  # pragma: no cover - Python 3.10

        async def timed(position: int, item: T) -> Any:
            try:
                return await asyncio.wait_for(call(position, item), limit)
            except asyncio.TimeoutError:  # distinct from the builtin TimeoutError before 3.11
                raise ItemTimeoutError(position, describe(item), limit) from None

    return timed


class AbandonedThreads:
    """Counts attempt threads left running past their timeout, and bounds them."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._running = 0
        self.total = 0
        self._changed = threading.Condition()

    def add(self) -> None:
        with self._changed:
            self._running += 1
            self.total += 1

    def ended(self) -> None:
        with self._changed:
            self._running -= 1
            self._changed.notify_all()

    def wait_below_bound(self) -> None:
        with self._changed:
            while self._running >= self.bound:
                self._changed.wait()

    @property
    def running(self) -> int:
        return self._running


class _AttemptThread:
    """One thread running one worker's attempts, one at a time."""

    def __init__(self, name: str, abandoned: AbandonedThreads) -> None:
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._abandoned = abandoned
        self._lock = threading.Lock()
        self._given_up = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            context, fn, box, done = request
            try:
                outcome = (True, context.run(fn))
            except BaseException as exc:
                outcome = (False, exc)
            with self._lock:
                box.append(outcome)
                done.set()
                given_up = self._given_up
            if given_up:
                self._abandoned.ended()
                return

    def submit(self, fn: Callable[[], Any]) -> tuple[list[tuple[bool, Any]], threading.Event]:
        box: list[tuple[bool, Any]] = []
        done = threading.Event()
        self._requests.put((contextvars.copy_context(), fn, box, done))
        return box, done

    def give_up(self, done: threading.Event) -> bool:
        """Stop waiting for the running attempt; False if it finished after all."""
        with self._lock:
            if done.is_set():
                return False
            self._given_up = True
            self._abandoned.add()
        self._requests.put(None)
        return True

    def stop(self) -> None:
        self._requests.put(None)


class SyncAttemptTimeout:
    """``call`` run on per-worker attempt threads; a worker waits at most ``limit`` per attempt."""

    def __init__(
        self,
        call: Callable[[int, T], Any],
        limit: float,
        describe: Callable[[T], str],
        abandoned: AbandonedThreads,
    ) -> None:
        self._call = call
        self._limit = limit
        self._describe = describe
        self.abandoned = abandoned
        self._local = threading.local()
        self._live: set[_AttemptThread] = set()
        self._live_lock = threading.Lock()

    def __call__(self, position: int, item: Any) -> Any:
        runner: _AttemptThread | None = getattr(self._local, "runner", None)
        if runner is None:
            self.abandoned.wait_below_bound()
            runner = _AttemptThread(f"{threading.current_thread().name}-attempt", self.abandoned)
            self._local.runner = runner
            with self._live_lock:
                self._live.add(runner)
        box, done = runner.submit(lambda: self._call(position, item))
        if not done.wait(self._limit) and runner.give_up(done):
            # The thread ends after this call, its result unused; the next attempt gets a new one.
            self._local.runner = None
            with self._live_lock:
                self._live.discard(runner)
            raise ItemTimeoutError(position, self._describe(item), self._limit, abandoned=True)
        ok, value = box[0]
        if ok:
            return value
        raise value

    def close(self) -> None:
        """Let the attempt threads that are not abandoned end (after the run)."""
        with self._live_lock:
            live, self._live = self._live, set()
        for runner in live:
            runner.stop()
