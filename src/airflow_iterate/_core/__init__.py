"""The Airflow-free engine: items in, results out, with bounded concurrency.

Nothing in this package imports Airflow (a test enforces it), so it can be tested and benchmarked
on its own and reused by every layer above it.
"""

from ._errors import (
    ItemFailure,
    ItemsFailedError,
    IterateError,
    IterateInputError,
    IterateTimeoutError,
    IterateUsageError,
)
from ._inputs import check_iterable, cross_product, kwargs_stream, short_repr
from ._runner import ItemRunner, RunStatistics, check_concurrency

__all__ = [
    "ItemFailure",
    "ItemRunner",
    "ItemsFailedError",
    "IterateError",
    "IterateInputError",
    "IterateTimeoutError",
    "IterateUsageError",
    "RunStatistics",
    "check_concurrency",
    "check_iterable",
    "cross_product",
    "kwargs_stream",
    "short_repr",
]
