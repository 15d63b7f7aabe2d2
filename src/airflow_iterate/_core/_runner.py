"""Running one callable over a stream of items with bounded concurrency.

Design: a fixed set of ``concurrency`` workers (asyncio tasks sharing one event loop for async
callables, daemon threads for sync ones) pull items from one shared iterator. Nothing is created
per item up front, so in-flight work is bounded by ``concurrency`` and memory grows only with the
results, whatever the size of the input. Results land at their input index, so the output is in
input order however the items interleave.

On the first failure no new item starts; items already running finish, then the run raises
:class:`ItemsFailedError`. At the deadline running items are cancelled (async: their ``finally``
and ``async with`` blocks run; threads cannot be interrupted, so they get ``cleanup_timeout`` to
finish) and :class:`IterateTimeoutError` is raised.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._errors import ItemFailure, ItemsFailedError, IterateTimeoutError, IterateUsageError
from ._inputs import short_repr

__all__ = ["AsyncItemCall", "ItemRunner", "RunStatistics", "SyncItemCall"]

T = TypeVar("T")
R = TypeVar("R")

#: ``call(index, item)`` for an async run; must return an awaitable
AsyncItemCall = Callable[[int, T], Awaitable[R]]
#: ``call(index, item)`` for a threaded run
SyncItemCall = Callable[[int, T], R]


class _Pending:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<pending>"


_PENDING: Any = _Pending()


@dataclass(frozen=True)
class RunStatistics:
    """A snapshot of a run, cheap enough to take from a progress reporter at any time."""

    concurrency: int
    total: int | None
    started: int
    succeeded: int
    failed: int
    in_flight: int
    peak_in_flight: int
    elapsed: float

    @property
    def done(self) -> int:
        return self.succeeded + self.failed


def check_concurrency(concurrency: object) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise IterateUsageError(
            f"concurrency must be a positive int, got {type(concurrency).__name__} {concurrency!r}"
        )
    if concurrency < 1:
        raise IterateUsageError(f"concurrency must be at least 1, got {concurrency}")
    return concurrency


class ItemRunner(Generic[T, R]):
    """Runs ``call(index, item)`` for every item, at most ``concurrency`` at a time.

    ``is_async`` selects the engine: one event loop shared by all items (``call`` returns an
    awaitable) or a pool of ``concurrency`` threads (``call`` returns the result). A runner is
    used for one run; :meth:`statistics` may be called from any thread while it runs.
    """

    def __init__(
        self,
        call: Callable[[int, T], Any],
        *,
        concurrency: int,
        is_async: bool,
        timeout: float | None = None,
        cleanup_timeout: float = 10.0,
        describe: Callable[[T], str] = short_repr,
    ) -> None:
        self._call = call
        self._concurrency = check_concurrency(concurrency)
        self._is_async = is_async
        if timeout is not None and timeout <= 0:
            raise IterateUsageError(f"timeout must be positive, got {timeout}")
        self._timeout = timeout
        self._cleanup_timeout = cleanup_timeout
        self._describe = describe
        self._results: list[Any] = []
        self._failures: list[ItemFailure] = []
        self._input_error: BaseException | None = None
        self._total: int | None = None
        self._stop = False
        self._started = 0
        self._succeeded = 0
        self._in_flight = 0
        self._peak = 0
        self._t0: float | None = None
        self._t_end: float | None = None
        self._used = False

    # -- public -------------------------------------------------------------------------------

    def statistics(self) -> RunStatistics:
        now = self._t_end if self._t_end is not None else time.monotonic()
        return RunStatistics(
            concurrency=self._concurrency,
            total=self._total,
            started=self._started,
            succeeded=self._succeeded,
            failed=len(self._failures),
            in_flight=self._in_flight,
            peak_in_flight=self._peak,
            elapsed=0.0 if self._t0 is None else now - self._t0,
        )

    def run(self, items: Iterable[T]) -> list[R]:
        """Run every item and return the results in input order (blocking)."""
        if self._is_async:
            return asyncio.run(self.arun(items))
        return self._run_threads(self._begin(items))

    async def arun(self, items: Iterable[T]) -> list[R]:
        """Run every item of an async callable on the running event loop."""
        if not self._is_async:
            raise IterateUsageError("arun() needs an async runner (is_async=True); use run()")
        source = self._begin(items)
        workers = [asyncio.ensure_future(self._async_worker(source)) for _ in range(self._concurrency)]
        try:
            done, pending = await asyncio.wait(
                workers, timeout=self._timeout, return_when=asyncio.FIRST_EXCEPTION
            )
        except BaseException:
            # Cancelled from outside (or a signal handler raised on the loop): cancel the items
            # and let their cleanup run before handing the exception on.
            self._stop = True
            await self._cancel(workers)
            raise
        fatal = next((w.exception() for w in done if not w.cancelled() and w.exception()), None)
        if fatal is not None or pending:
            self._stop = True
            cancelled = self._in_flight
            await self._cancel(workers)
            if fatal is not None:
                raise fatal
            self._finish_quietly()
            assert self._timeout is not None
            raise IterateTimeoutError(self._timeout, completed=self._succeeded, cancelled=cancelled)
        return self._finish()

    # -- shared -------------------------------------------------------------------------------

    def _begin(self, items: Iterable[T]) -> Iterator[tuple[int, T]]:
        if self._used:
            raise IterateUsageError("an ItemRunner runs once; create a new one for another run")
        self._used = True
        if isinstance(items, Sized):
            self._total = len(items)
        self._t0 = time.monotonic()
        return enumerate(items)

    def _finish(self) -> list[R]:
        self._t_end = time.monotonic()
        if self._input_error is not None:
            raise self._input_error
        if self._failures:
            self._failures.sort(key=lambda f: f.index)
            raise ItemsFailedError(
                self._failures, completed=self._succeeded, total=self._total
            ) from self._failures[0].exception
        return self._results

    def _record_failure(self, index: int, item: T, exc: Exception) -> None:
        self._failures.append(ItemFailure(index, self._describe(item), exc))
        self._stop = True

    # -- async engine -------------------------------------------------------------------------

    async def _async_worker(self, source: Iterator[tuple[int, T]]) -> None:
        results = self._results
        call = self._call
        while not self._stop:
            try:
                index, item = next(source)
            except StopIteration:
                return
            except Exception as exc:  # the input itself broke: stop, keep what ran
                self._input_error = exc
                self._stop = True
                return
            results.append(_PENDING)
            self._started += 1
            self._in_flight += 1
            if self._in_flight > self._peak:
                self._peak = self._in_flight
            try:
                results[index] = await call(index, item)
                self._succeeded += 1
            except Exception as exc:
                self._record_failure(index, item, exc)
            finally:
                self._in_flight -= 1

    async def _cancel(self, workers: Sequence[asyncio.Future[None]]) -> None:
        for worker in workers:
            worker.cancel()
        # Bounded: an item whose cleanup hangs must not hang the task.
        await asyncio.wait(workers, timeout=self._cleanup_timeout)

    # -- thread engine ------------------------------------------------------------------------

    def _run_threads(self, source: Iterator[tuple[int, T]]) -> list[R]:
        lock = threading.Lock()
        all_done = threading.Event()
        alive = [self._concurrency]
        fatal: list[BaseException] = []

        def worker() -> None:
            try:
                self._thread_worker(source, lock)
            except BaseException as exc:  # pragma: no cover - SystemExit & co. inside an item
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
            for n in range(self._concurrency)
        ]
        for thread in threads:
            thread.start()
        try:
            # Event.wait() wakes for signal handlers, so a timeout signal still reaches the caller.
            finished = all_done.wait(self._timeout)
        except BaseException:
            self._stop = True
            raise
        if not finished:
            self._stop = True
            cancelled = self._in_flight
            all_done.wait(self._cleanup_timeout)
            self._finish_quietly()
            assert self._timeout is not None
            raise IterateTimeoutError(self._timeout, completed=self._succeeded, cancelled=cancelled)
        if fatal:
            raise fatal[0]
        return self._finish()

    def _finish_quietly(self) -> None:
        self._t_end = time.monotonic()

    def _thread_worker(self, source: Iterator[tuple[int, T]], lock: threading.Lock) -> None:
        results = self._results
        call = self._call
        while True:
            with lock:
                if self._stop:
                    return
                try:
                    index, item = next(source)
                except StopIteration:
                    return
                except Exception as exc:
                    self._input_error = exc
                    self._stop = True
                    return
                results.append(_PENDING)
                self._started += 1
                self._in_flight += 1
                if self._in_flight > self._peak:
                    self._peak = self._in_flight
            try:
                value = call(index, item)
            except Exception as exc:
                with lock:
                    self._in_flight -= 1
                    self._record_failure(index, item, exc)
                continue
            results[index] = value
            with lock:
                self._in_flight -= 1
                self._succeeded += 1
