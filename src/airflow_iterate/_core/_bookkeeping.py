"""The state of one run: which items started, succeeded, failed or resumed, and the outcome.

The engines (one event loop, a thread pool) only pull the next item, call it, and report back
here; everything that decides (resume from a checkpoint, the failure limit, ``max_items``, what
the run raises at the end) lives in this one place, the same for both engines.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from ._adaptive import AdaptiveLimit
from ._checkpoint import Checkpoint, input_digest
from ._errors import ItemFailure, ItemsFailedError, IterateInputError
from ._ledger import MAX_IN_FLIGHT, RunningItem
from ._options import RunOptions
from ._permanence import is_permanent_error
from ._retrylog import RetryLog
from ._stats import RunStatistics

__all__ = ["FAILED_RESULT", "RunBookkeeping"]

T = TypeVar("T")
R = TypeVar("R")

#: the result slot of an item that failed within the tolerated limit
FAILED_RESULT: Any = None


class _Pending:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<pending>"


_PENDING: Any = _Pending()


class RunBookkeeping(Generic[T, R]):
    """Counters, results and failures of one run; the base of :class:`~._runner.ItemRunner`."""

    def __init__(
        self,
        options: RunOptions,
        *,
        concurrency: int,
        describe: Callable[[T], str],
        describe_error: Callable[[BaseException], str],
        index_offset: int,
        checkpoint: Checkpoint | None,
        retry_log: RetryLog | None = None,
    ) -> None:
        self._options = options
        self._concurrency = concurrency
        self._describe = describe
        self._describe_error = describe_error
        self._offset = index_offset
        self._checkpoint = checkpoint
        self._retry_log = retry_log or RetryLog(
            None, retries=options.item_retries, describe=describe, describe_error=describe_error
        )
        self._resume = checkpoint.completed if checkpoint is not None else None
        self._results: list[Any] = []
        self.failures: list[ItemFailure] = []
        # in flight, by index into _results (only for a ledger: a dict store and pop per item);
        # the attempt number of items being retried (rare); when the ledger first saw each item
        self._running: dict[int, T] | None = None
        self._attempts: dict[int, int] = {}
        self._first_seen: dict[int, float] = {}
        # concurrency="auto": the limit (set by the runner) and the attempts put back for overload
        self._adaptive: AdaptiveLimit | None = None
        self._overloaded = 0
        self._limit: int | None = None
        self._input_error: BaseException | None = None
        self._stop_error: BaseException | None = None
        self._total: int | None = None
        self._stop = False
        self._started = 0
        self._succeeded = 0
        self._resumed = 0
        self._retried = 0
        self._changed_inputs = 0
        self._in_flight = 0
        self._peak = 0
        self._cancelled_items = 0
        self._t0: float | None = None
        self._t_end: float | None = None

    @property
    def changed_inputs(self) -> int:
        """Items found in the checkpoint whose input differed, so they ran again."""
        return self._changed_inputs

    def statistics(self) -> RunStatistics:
        now = self._t_end if self._t_end is not None else time.monotonic()
        return RunStatistics(
            concurrency=self._concurrency,
            total=self._total,
            started=self._started,
            succeeded=self._succeeded,
            failed=len(self.failures),
            resumed=self._resumed,
            retried=self._retried,
            in_flight=self._in_flight,
            peak_in_flight=self._peak,
            elapsed=0.0 if self._t0 is None else now - self._t0,
            limit=None if self._adaptive is None else self._adaptive.current,
            overloaded=self._overloaded,
        )

    def ledger_view(self) -> tuple[int, list[RunningItem], list[ItemFailure]]:
        """What the item ledger lists: items pulled so far, the items in flight, the failures.

        Safe from another thread while the run goes on: the copies are single C-level operations.
        """
        running = {} if self._running is None else self._running.copy()
        attempts = self._attempts.copy()
        pulled = len(self._results)
        failures = self.failures.copy()
        # "Running since" is when a ledger write first saw the item in flight (to within one
        # progress interval): a clock read per item would cost every run, ledger or not.
        now = time.time()
        seen = {index: self._first_seen.get(index, now) for index in running}
        self._first_seen = seen
        in_flight = [
            RunningItem(self._offset + index, self._describe(item), attempts.get(index, 1), seen[index])
            for index, item in sorted(running.items())[:MAX_IN_FLIGHT]
        ]
        return pulled, in_flight, failures

    def _too_many(self, max_items: int, seen: int | None) -> IterateInputError:
        count = f"{seen:,} items" if seen is not None else f"more than {max_items:,} items"
        return IterateInputError(
            f"the input has {count}, over max_items={max_items:,}; raise max_items if this is intended, "
            "or split the input into several runs"
        )

    def _next(self, source: Iterator[tuple[int, T]]) -> tuple[int, T] | None:
        """The next item to run, or None when the input is exhausted or broken.

        Items resumed from a checkpoint are filled in here and never reach a worker.
        """
        resume = self._resume
        max_items = self._options.max_items
        while True:
            try:
                index, item = next(source)
            except StopIteration:
                return None
            except Exception as exc:  # the input itself broke: stop, keep what ran
                self._input_error = exc
                self._stop = True
                return None
            if max_items is not None and index >= max_items:
                self._input_error = self._too_many(max_items, None)
                self._stop = True
                return None
            if resume is not None and self._offset + index in resume:
                digest, value = resume[self._offset + index]
                if digest == input_digest(item):
                    self._results.append(value)
                    self._resumed += 1
                    continue
                self._changed_inputs += 1
            if self._running is not None:
                self._running[len(self._results)] = item
            self._results.append(_PENDING)
            self._started += 1
            self._in_flight += 1
            if self._in_flight > self._peak:
                self._peak = self._in_flight
            return index, item

    def _succeed(self, index: int, item: T, value: Any) -> None:
        if self._running is not None:
            del self._running[index]
        if self._attempts:
            self._attempts.pop(index, None)
        self._results[index] = value
        self._succeeded += 1
        if self._checkpoint is not None:
            self._checkpoint.record(self._offset + index, item, value)

    def _fail(self, index: int, item: T, exc: Exception) -> None:
        self._results[index] = FAILED_RESULT
        if self._running is not None:
            self._running.pop(index, None)
        attempts = self._attempts.pop(index, 1)
        self.failures.append(
            ItemFailure(self._offset + index, self._describe(item), exc, self._describe_error(exc), attempts)
        )
        # A tolerated failure must not keep the item's locals (a downloaded file, a parsed page)
        # alive until the run ends: the traceback keeps its lines, its frames lose their variables.
        _clear_frames(exc)
        if isinstance(exc, self._options.stop_on):
            self._stop_error = self._stop_error or exc
            self._stop = True
        elif self._limit is not None and len(self.failures) > self._limit:
            self._stop = True

    def _retry_delay(self, position: int, item: T, exc: Exception, attempt: int) -> float | None:
        """Seconds to wait before the item's next attempt, or None: ``exc`` is not retried.

        Attempt ``attempt`` (1-based) raised ``exc``. Retried: what ``item_retry_on`` lists, while
        retries are left, the run goes on and the error is not permanent (unless
        ``item_retry_permanent``). Both engines ask here, and the decision is logged here.
        """
        opts = self._options
        if (
            attempt > opts.item_retries
            or self._stop
            or not isinstance(exc, opts.item_retry_on)
            or isinstance(exc, opts.stop_on)
        ):
            return None
        if not opts.item_retry_permanent and is_permanent_error(exc):
            self._retry_log.not_retried(position, item, exc)
            return None
        delay = opts.backoff(attempt)
        self._retry_log.retrying(position, item, exc, attempt, delay)
        self._attempts[position - self._offset] = attempt + 1
        return delay

    def _outcome(self) -> list[R]:
        self._t_end = time.monotonic()
        if self._input_error is not None:
            raise self._input_error
        if self._stop_error is not None:
            raise self._stop_error
        if self.failures:
            self.failures.sort(key=lambda f: f.index)
            limit = self._limit
            if limit is None and isinstance(self._options.max_failures, float):
                limit = self._options.failure_limit(len(self._results))
            if limit is not None and len(self.failures) > limit:
                raise ItemsFailedError(
                    self.failures, completed=self._succeeded, total=self._total
                ) from self.failures[0].exception
        return self._results


def _clear_frames(exc: BaseException) -> None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__
