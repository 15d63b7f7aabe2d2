"""The Airflow-free engine: items in, results out, with bounded concurrency.

Nothing in this package imports Airflow (a test enforces it), so it can be tested and benchmarked
on its own and reused by every layer above it.

    _inputs       argument forms -> one lazy stream of per-item kwargs; short reprs of items
    _options      RunOptions: concurrency, retries, failure tolerance, rate limit, max_items,
                  reporting intervals; the engine defaults
    _validate     checks of option values, shared with the Airflow layer and the integrations
    _runner       ItemRunner: the two engines (one event loop / a thread pool)
    _bookkeeping  what a run has started, finished, failed and resumed; its outcome; whether
                  an item is retried
    _permanence   which errors are permanent (not retried unless item_retry_permanent)
    _retrylog     retry lines: the first few one by one, then one summary per interval
    _ratelimit    a rate limit shared by the items of a run
    _checkpoint   batched, chunked checkpoints for resuming a run (and rerunning failed items)
    _ledger       the item ledger: a bounded document of a run's items, for readers outside it
    _monitor      RunObserver, and the thread that reports progress and flushes checkpoints
    _timeouts     item_timeout: cancelled async attempts, abandoned (bounded) sync ones
    _current      which item the running code belongs to (for integrations' error messages)
    _lag          noticing (and locating) a blocked event loop
    _stats        RunStatistics snapshots
    _errors       the exception tree
"""

from ._checkpoint import Checkpoint, DirectoryStateStore, StateStore, input_digest
from ._current import current_item
from ._errors import (
    ItemFailure,
    ItemsFailedError,
    ItemTimeoutError,
    IterateCancelledError,
    IterateError,
    IterateInputError,
    IterateTimeoutError,
    IterateUsageError,
    RecordedItemError,
    SyncCallOnLoopError,
    error_text,
)
from ._inputs import check_iterable, cross_product, kwargs_stream, short_repr
from ._ledger import Ledger, LedgerStore, RunningItem
from ._monitor import RunObserver
from ._options import (
    DEFAULT_ASYNC_CONCURRENCY,
    DEFAULT_SYNC_CONCURRENCY,
    RUN_OPTION_NAMES,
    RunOptions,
)
from ._permanence import is_permanent_error
from ._ratelimit import RateLimit, parse_rate_limit
from ._runner import ItemRunner
from ._stats import RunStatistics

__all__ = [
    "DEFAULT_ASYNC_CONCURRENCY",
    "DEFAULT_SYNC_CONCURRENCY",
    "RUN_OPTION_NAMES",
    "Checkpoint",
    "DirectoryStateStore",
    "ItemFailure",
    "ItemRunner",
    "ItemTimeoutError",
    "ItemsFailedError",
    "IterateCancelledError",
    "IterateError",
    "IterateInputError",
    "IterateTimeoutError",
    "IterateUsageError",
    "Ledger",
    "LedgerStore",
    "RateLimit",
    "RecordedItemError",
    "RunObserver",
    "RunOptions",
    "RunStatistics",
    "RunningItem",
    "StateStore",
    "SyncCallOnLoopError",
    "check_iterable",
    "cross_product",
    "current_item",
    "error_text",
    "input_digest",
    "is_permanent_error",
    "kwargs_stream",
    "parse_rate_limit",
    "short_repr",
]
