"""Running one callable over a stream of items with bounded concurrency.

Design: a fixed set of ``concurrency`` workers (asyncio tasks sharing one event loop for async
callables, daemon threads for sync ones) pull items from one shared iterator. Nothing is created
per item up front, so in-flight work is bounded by ``concurrency`` and memory grows only with the
results, whatever the size of the input. Results land at their input index, so the output is in
input order however the items interleave.

Per item: wait for the rate limit, call, and on an exception in ``item_retry_on`` try again after
an exponential backoff, up to ``item_retries`` times; a permanent error (a missing file, a refused
login: see ``_permanence``) only with ``item_retry_permanent``. Retries are logged through the
observer, the first few one by one, then one line per progress interval. An item that still fails
is recorded; once the failures exceed ``max_failures`` no new item starts, items already running
finish, and the run raises :class:`ItemsFailedError`. Under the limit the run succeeds and a failed
item's result is ``None`` (the failures are in :attr:`ItemRunner.failures`). An exception in
``stop_on`` stops the run the same way and is re-raised unchanged.

At the deadline running items are cancelled (async: their ``finally`` and ``async with`` blocks
run; threads cannot be interrupted, so they get ``cleanup_timeout`` to finish) and
:class:`IterateTimeoutError` is raised.

Checkpoints: items found in the checkpoint (from an earlier attempt, with the same input) are not
run again; their results are reused. Successful items are recorded in ``checkpoint``, which the
monitor thread flushes in batches; at the end a failed run flushes what is left and a successful
one discards the checkpoint.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from typing import Any, TypeVar

from ._adaptive import AdaptiveLimit
from ._bookkeeping import RunBookkeeping
from ._checkpoint import Checkpoint
from ._current import CURRENT_ITEM
from ._errors import (
    IterateCancelledError,
    IterateTimeoutError,
    IterateUsageError,
    error_text,
)
from ._gates import AsyncGate, ThreadGate
from ._inputs import short_repr
from ._lag import LoopLagMonitor
from ._ledger import Ledger
from ._monitor import Monitor, RunObserver
from ._options import RunOptions
from ._overload import overload_signal
from ._ratelimit import RateLimiter
from ._retrylog import RetryLog
from ._timeouts import AbandonedThreads, SyncAttemptTimeout, async_with_timeout

__all__ = ["MAX_OVERLOAD_RETRIES", "ItemRunner"]

#: concurrency="auto": an item put back this many times for overload then fails as any error would
MAX_OVERLOAD_RETRIES = 20
#: concurrency="auto": the limit a run starts from (slow start doubles it each round trip)
INITIAL_AUTO_LIMIT = 8


def _overload_delay(overloads: int, round_trip: float | None) -> float:
    """A pause before an item put back for overload tries again: at least a round trip, the time
    the limit needs to have shrunk (sooner, it meets the same overload); a server's own
    Retry-After pauses every start; jitter spreads the retries."""
    ceiling = min(2.0, max(0.02 * 2.0 ** min(overloads, 10), 2 * (round_trip or 0.0)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


T = TypeVar("T")
R = TypeVar("R")


class ItemRunner(RunBookkeeping[T, R]):
    """Runs ``call(index, item)`` for every item, at most ``concurrency`` at a time.

    ``is_async`` selects the engine: one event loop shared by all items (``call`` returns an
    awaitable) or a pool of ``concurrency`` threads (``call`` returns the result). ``index`` is the
    item's position in the input plus ``index_offset`` (a part of a larger input names its items
    by their place in the whole); failures and the checkpoint use the same positions, the returned
    list holds this run's results only. Items found in ``checkpoint.completed`` are not run again.
    A runner is used for one run; :meth:`statistics` may be called from any thread while it runs.
    """

    def __init__(
        self,
        call: Callable[[int, T], Any],
        options: RunOptions | None = None,
        *,
        is_async: bool,
        describe: Callable[[T], str] = short_repr,
        describe_error: Callable[[BaseException], str] = error_text,
        index_offset: int = 0,
        checkpoint: Checkpoint | None = None,
        observer: RunObserver | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        options = options if options is not None else RunOptions()
        retry_log = RetryLog(
            observer.retry_note if observer is not None else None,
            retries=options.item_retries,
            describe=describe,
            describe_error=describe_error,
            on_error=(lambda exc: observer.monitor_error("retry log", exc)) if observer is not None else None,
        )
        super().__init__(
            options,
            concurrency=options.concurrency_for(is_async),
            describe=describe,
            describe_error=describe_error,
            index_offset=index_offset,
            checkpoint=checkpoint,
            retry_log=retry_log,
        )
        self._call = call
        self._timed: SyncAttemptTimeout | None = None
        if options.item_timeout is not None:
            if is_async:
                self._call = async_with_timeout(call, options.item_timeout, describe)
            else:
                bound = AbandonedThreads(options.concurrency_for(is_async))
                self._timed = SyncAttemptTimeout(call, options.item_timeout, describe, bound)
                self._call = self._timed
        self._is_async = is_async
        self._observer = observer
        self._limiter = RateLimiter(options.rate_limit) if options.rate_limit else None
        self._async_gate: AsyncGate | None = None
        self._thread_gate: ThreadGate | None = None
        if options.adaptive:
            ceiling = options.concurrency_for(is_async)
            self._adaptive = AdaptiveLimit(initial=min(ceiling, INITIAL_AUTO_LIMIT), floor=1, ceiling=ceiling)
            if is_async:
                self._async_gate = AsyncGate(self._adaptive)
            else:
                self._thread_gate = ThreadGate(self._adaptive)
        self._simple = options.item_retries == 0 and self._limiter is None and not options.adaptive
        self._ledger = ledger
        if ledger is not None:
            self._running = {}
        self._monitor = Monitor(
            self.statistics,
            options,
            checkpoint=checkpoint,
            observer=observer,
            retry_log=retry_log,
            write_ledger=self._write_ledger if ledger is not None else None,
        )
        self._used = False
        self._lock = threading.Lock()  # guards counters and results in the thread engine
        self._cancel_reason: str | None = None
        self._cancelled_event = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._main: asyncio.Future[list[R]] | None = None

    # -- public -------------------------------------------------------------------------------

    @property
    def options(self) -> RunOptions:
        return self._options

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the run from any thread (or a signal handler): no new item starts, in-flight async
        items are cancelled and their cleanup runs, then the run raises IterateCancelledError."""
        self._cancel_reason = self._cancel_reason or reason
        self._stop = True
        self._cancelled_event.set()
        loop, main = self._loop, self._main
        if loop is not None and main is not None and not loop.is_closed():
            try:
                if threading.get_ident() == self._loop_thread:
                    main.cancel()  # in a signal handler on the loop thread itself
                else:
                    loop.call_soon_threadsafe(main.cancel)
            except RuntimeError:  # the loop just closed: nothing left to cancel
                pass

    def run(self, items: Iterable[T], *, total: int | None = None) -> list[R]:
        """Run every item and return the results in input order (blocking).

        ``total`` is the number of items when ``items`` cannot tell (a generator); it feeds
        progress, ratio limits and the ``max_items`` check.
        """
        source = self._begin(items, total)
        ok = False
        try:
            results = asyncio.run(self._run_async(source)) if self._is_async else self._run_threads(source)
            ok = True
            return results
        finally:
            self._finalize(ok)

    async def arun(self, items: Iterable[T], *, total: int | None = None) -> list[R]:
        """Run every item of an async callable on the running event loop."""
        if not self._is_async:
            raise IterateUsageError("arun() needs an async runner (is_async=True); use run()")
        source = self._begin(items, total)
        ok = False
        try:
            results = await self._run_async(source)
            ok = True
            return results
        finally:
            # Checkpoint writes may block: keep them off the loop.
            await asyncio.to_thread(self._finalize, ok)

    # -- shared -------------------------------------------------------------------------------

    def _begin(self, items: Iterable[T], total: int | None) -> Iterator[tuple[int, T]]:
        if self._used:
            raise IterateUsageError("an ItemRunner runs once; create a new one for another run")
        self._used = True
        max_items = self._options.max_items
        self._total = len(items) if isinstance(items, Sized) else total
        if self._total is not None and max_items is not None and self._total > max_items:
            raise self._too_many(max_items, self._total)
        self._limit = self._options.failure_limit(self._total)
        self._t0 = time.monotonic()
        self._monitor.start()
        return enumerate(items)

    def _worker_count(self) -> int:
        # No more workers than items: concurrency=10_000 over a 3-item input starts 3.
        if self._total is None:
            return self._concurrency
        return max(1, min(self._concurrency, self._total))

    @property
    def abandoned_attempts(self) -> int:
        """Sync attempts that timed out and were left to finish on their threads."""
        return 0 if self._timed is None else self._timed.abandoned.total

    def _limit_changes(self) -> list[tuple[float, int, str]]:
        """The adaptive limit's changes, on the wall clock."""
        if self._adaptive is None:
            return []
        shift = time.time() - time.monotonic()
        return [(change.at + shift, change.limit, change.reason) for change in list(self._adaptive.history)]

    def _write_ledger(self, state: str) -> None:
        if self._ledger is None:
            return
        try:
            pulled, running, failures = self.ledger_view()
            self._ledger.write(
                self.statistics(),
                state=state,
                offset=self._offset,
                pulled=pulled,
                running=running,
                failures=failures,
                limit_changes=self._limit_changes(),
            )
        except Exception as exc:  # the run goes on; only its visibility suffers
            if self._observer is not None:
                self._observer.monitor_error("item ledger write", exc)

    def _finalize(self, ok: bool) -> None:
        self._t_end = self._t_end or time.monotonic()
        if self._timed is not None:
            self._timed.close()
        self._monitor.stop()
        self._retry_log.summarize()  # what the last interval counted
        if ok:
            self._write_ledger("success")
        else:
            self._write_ledger("cancelled" if self._cancel_reason is not None else "failed")
        if self._checkpoint is not None:
            if ok and self.failures and self._checkpoint.keep_finished_runs:
                self._checkpoint.finish_with_failures(len(self.failures))
            elif ok:
                self._checkpoint.discard()
            else:
                self._checkpoint.flush()

    # -- async engine -------------------------------------------------------------------------

    async def _run_async(self, source: Iterator[tuple[int, T]]) -> list[R]:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._main = asyncio.ensure_future(self._supervise(source))
        if self._cancel_reason is not None:  # cancelled before the loop existed
            self._main.cancel()
        lag = None
        if self._observer is not None:
            lag = LoopLagMonitor(
                self._loop,
                self._loop_thread,
                self._observer.loop_blocked,
                threshold=self._options.loop_block_threshold,
            )
            lag.start()
        try:
            return await self._main
        except asyncio.CancelledError:
            if self._cancel_reason is None:
                raise
            self._t_end = time.monotonic()
            raise IterateCancelledError(
                self._cancel_reason, completed=self._succeeded, cancelled=self._cancelled_items
            ) from None
        finally:
            if lag is not None:
                lag.stop()

    async def _supervise(self, source: Iterator[tuple[int, T]]) -> list[R]:
        workers = [asyncio.ensure_future(self._async_worker(source)) for _ in range(self._worker_count())]
        try:
            done, pending = await asyncio.wait(
                workers, timeout=self._options.timeout, return_when=asyncio.FIRST_EXCEPTION
            )
        except BaseException:
            # Cancelled from outside (or a signal handler raised on the loop): cancel the items
            # and let their cleanup run before handing the exception on.
            self._stop = True
            self._cancelled_items = self._in_flight
            await self._cancel(workers)
            raise
        fatal = next((w.exception() for w in done if not w.cancelled() and w.exception()), None)
        if fatal is not None or pending:
            self._stop = True
            cancelled = self._in_flight
            await self._cancel(workers)
            if fatal is not None:
                raise fatal
            self._t_end = time.monotonic()
            assert self._options.timeout is not None
            raise IterateTimeoutError(self._options.timeout, completed=self._succeeded, cancelled=cancelled)
        return self._outcome()

    async def _async_worker(self, source: Iterator[tuple[int, T]]) -> None:
        call = self._call
        gate = self._async_gate
        while not self._stop:
            if gate is not None:
                await gate.acquire()  # a permit per item in flight, held while its attempts run
                if self._stop:
                    gate.release()
                    return
            picked = self._next(source)
            if picked is None:
                if gate is not None:
                    gate.release()
                return
            index, item = picked
            # This worker's own context (a task of its own): no reset needed, the next item's
            # value replaces it.
            CURRENT_ITEM.set((self._offset + index, item, self._describe))
            try:
                if self._simple:
                    value = await call(self._offset + index, item)
                else:
                    value = await self._async_attempts(self._offset + index, item)
                self._succeed(index, item, value)
            except Exception as exc:
                self._fail(index, item, exc)
            finally:
                self._in_flight -= 1
                if gate is not None:
                    gate.release()

    async def _async_attempts(self, position: int, item: T) -> Any:
        attempt = 1
        overloads = 0
        gate = self._async_gate
        while True:
            if self._limiter is not None:
                await self._limiter.acquire()
            started = time.monotonic()
            try:
                value = await self._call(position, item)
            except Exception as exc:
                if gate is not None and self._put_back(exc, overloads, time.monotonic() - started):
                    overloads += 1
                    gate.release()  # back off without holding a permit
                    try:
                        await asyncio.sleep(
                            _overload_delay(
                                overloads, self._adaptive.round_trip() if self._adaptive else None
                            )
                        )
                    finally:
                        await gate.acquire(first=True)
                    continue
                delay = self._retry_delay(position, item, exc, attempt)
                if delay is None:
                    raise
            else:
                if self._adaptive is not None:
                    self._adaptive.on_success(time.monotonic() - started)
                return value
            self._retried += 1
            await asyncio.sleep(delay)
            attempt += 1

    def _put_back_pause(self, overloads: int) -> float:
        assert self._adaptive is not None
        return _overload_delay(overloads, self._adaptive.round_trip())

    def _put_back(self, exc: Exception, overloads: int, latency: float) -> bool:
        """Tell the adaptive limit how the attempt ended; True if the item goes back for overload."""
        assert self._adaptive is not None
        pause = overload_signal(exc, self._options.overload_on)
        if pause is None:
            self._adaptive.on_success(latency)  # an answer all the same: its latency counts
            return False
        self._adaptive.on_overload(pause or None)
        if overloads >= MAX_OVERLOAD_RETRIES:
            return False  # from now on an ordinary failure
        self._overloaded += 1
        return True

    async def _cancel(self, workers: Sequence[asyncio.Future[None]]) -> None:
        for worker in workers:
            worker.cancel()
        # Bounded: an item whose cleanup hangs must not hang the task.
        await asyncio.wait(workers, timeout=self._options.cleanup_timeout)

    # -- thread engine ------------------------------------------------------------------------

    def _run_threads(self, source: Iterator[tuple[int, T]]) -> list[R]:
        lock = self._lock
        all_done = threading.Event()
        concurrency = self._worker_count()
        alive = [concurrency]
        fatal: list[BaseException] = []

        def worker() -> None:
            try:
                self._thread_worker(source, lock)
            except BaseException as exc:  # SystemExit & co. raised inside an item
                fatal.append(exc)
                self._stop = True
            finally:
                with lock:
                    alive[0] -= 1
                    if alive[0] == 0:
                        all_done.set()

        threads = [
            # Each thread runs in a copy of the caller's context, so context variables set by the
            # caller (logging, tracing, the framework's task context) are visible to every item.
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(worker,),
                name=f"iterate-worker-{n}",
                daemon=True,
            )
            for n in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        try:
            # Event.wait() wakes for signal handlers, so a timeout signal still reaches the caller.
            finished = self._wait_threads(all_done)
        except BaseException:
            self._stop = True
            raise
        if self._cancel_reason is not None:
            cancelled = self._in_flight
            all_done.wait(self._options.cleanup_timeout)  # threads cannot be interrupted: a grace period
            self._t_end = time.monotonic()
            raise IterateCancelledError(self._cancel_reason, completed=self._succeeded, cancelled=cancelled)
        if not finished:
            self._stop = True
            cancelled = self._in_flight
            all_done.wait(self._options.cleanup_timeout)
            self._t_end = time.monotonic()
            assert self._options.timeout is not None
            raise IterateTimeoutError(self._options.timeout, completed=self._succeeded, cancelled=cancelled)
        if fatal:
            raise fatal[0]
        return self._outcome()

    def _wait_threads(self, all_done: threading.Event) -> bool:
        """Wait for the workers, the deadline or a cancel, whichever comes first."""
        deadline = None if self._options.timeout is None else time.monotonic() + self._options.timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            step = 0.1 if remaining is None else min(0.1, remaining)
            if all_done.wait(step):
                return True
            if self._cancelled_event.is_set():
                return False

    def _thread_worker(self, source: Iterator[tuple[int, T]], lock: threading.Lock) -> None:
        call = self._call
        gate = self._thread_gate
        while True:
            if gate is not None:
                gate.acquire(self._cancelled_event)
            with lock:
                picked = None if self._stop else self._next(source)
            if picked is None:
                if gate is not None:
                    gate.release()
                return
            index, item = picked
            position = self._offset + index
            CURRENT_ITEM.set((position, item, self._describe))  # the thread's own context
            try:
                value = call(position, item) if self._simple else self._thread_attempts(position, item)
            except Exception as exc:
                with lock:
                    self._in_flight -= 1
                    self._fail(index, item, exc)
                continue
            else:
                with lock:
                    self._in_flight -= 1
                    self._succeed(index, item, value)
            finally:
                if gate is not None:
                    gate.release()

    def _thread_attempts(self, position: int, item: T) -> Any:
        attempt = 1
        overloads = 0
        gate = self._thread_gate
        while True:
            if self._limiter is not None:
                self._limiter.acquire_blocking()
            started = time.monotonic()
            try:
                value = self._call(position, item)
            except Exception as exc:
                if gate is not None:
                    with self._lock:
                        put_back = self._put_back(exc, overloads, time.monotonic() - started)
                    if put_back:
                        overloads += 1
                        gate.release()  # back off without holding a permit
                        try:
                            time.sleep(
                                _overload_delay(
                                    overloads, self._adaptive.round_trip() if self._adaptive else None
                                )
                            )
                        finally:
                            gate.acquire(self._cancelled_event, first=True)
                        continue
                delay = self._retry_delay(position, item, exc, attempt)
                if delay is None:
                    raise
            else:
                if self._adaptive is not None:
                    self._adaptive.on_success(time.monotonic() - started)
                return value
            with self._lock:
                self._retried += 1
            time.sleep(delay)
            attempt += 1
