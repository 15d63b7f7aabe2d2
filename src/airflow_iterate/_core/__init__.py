"""The Airflow-free engine: items in, results out, with bounded concurrency.

Nothing in this package imports Airflow (a test enforces it), so it can be tested and benchmarked
on its own and reused by every layer above it.

    _inputs       argument forms -> one lazy stream of per-item kwargs
    _options      RunOptions: concurrency, retries, failure tolerance, rate limit, max_items
    _runner       ItemRunner: the two engines (one event loop / a thread pool)
    _ratelimit    a rate limit shared by the items of a run
    _checkpoint   batched, chunked checkpoints for resuming a run
    _monitor      the thread that reports progress and flushes checkpoints
    _stats        RunStatistics snapshots
    _errors       the exception tree
"""

from ._checkpoint import Checkpoint, DirectoryStateStore, StateStore, input_digest
from ._errors import (
    ItemFailure,
    ItemsFailedError,
    IterateCancelledError,
    IterateError,
    IterateInputError,
    IterateTimeoutError,
    IterateUsageError,
)
from ._inputs import check_iterable, cross_product, kwargs_stream, short_repr
from ._options import RunOptions, check_concurrency
from ._ratelimit import RateLimit, RateLimiter, parse_rate_limit
from ._runner import FAILED_RESULT, ItemRunner
from ._stats import RunStatistics

__all__ = [
    "FAILED_RESULT",
    "Checkpoint",
    "DirectoryStateStore",
    "ItemFailure",
    "ItemRunner",
    "ItemsFailedError",
    "IterateCancelledError",
    "IterateError",
    "IterateInputError",
    "IterateTimeoutError",
    "IterateUsageError",
    "RateLimit",
    "RateLimiter",
    "RunOptions",
    "RunStatistics",
    "StateStore",
    "check_concurrency",
    "check_iterable",
    "cross_product",
    "input_digest",
    "kwargs_stream",
    "parse_rate_limit",
    "short_repr",
]
