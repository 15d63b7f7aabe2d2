"""airflow-iterate: thousands of small I/O-bound steps inside ONE Airflow task instance.

Importing this package gives every ``@task`` function and every operator's ``.partial(...)``
``.iterate(...)`` and ``.iterate_kwargs(...)``, the in-process counterparts of ``.expand(...)``
and ``.expand_kwargs(...)``, and lets plain ``async def`` tasks run on Airflow 3.1 as on 3.2+.

Layout (ARCHITECTURE.md tells the journey of one ``.iterate()`` call through it)::

    _core/        the Airflow-free engine: item streams, bounded concurrency (one event loop or
                  a thread pool), retries, failure tolerance, rate limit, checkpoints, progress,
                  the option validators and the exception tree
    _airflow/     the thin Airflow layer: inputs as values, options, the iterate operators (for
                  @task functions and for operator classes), per-item context and XComs,
                  reporting, async Task SDK accessors, the event-loop guard, _compat (every
                  Airflow internal the package uses)
    _airflow/_scaleout/
                  chunk_size / chunks: the plan, chunk and gather tasks and the task group
    sftp/         the SFTP integration: SFTPPool, SyncSFTPPool, transfer helpers
    http/         the HTTP integration: HTTPClient, RetryPolicy, pagination, streaming downloads
    _public.py    public names presented as this package's (tracebacks, reprs)

``airflow_iterate_provider`` (beside this package) is the provider metadata Airflow discovers.

Errors: every exception raised on purpose is an :class:`IterateError`; the tree is in
:mod:`airflow_iterate._core._errors` (the integrations' in :mod:`airflow_iterate.sftp` and
:mod:`airflow_iterate.http`).
"""

from __future__ import annotations

# The package version, in one place: pyproject.toml reads this literal at build time without
# importing the package (which would import Airflow); keep it a plain string.
__version__ = "0.1.0"

from ._airflow._api import install as _install
from ._airflow._api import iterate, iterate_kwargs
from ._airflow._async_sdk import aget_connection, aget_variable, axcom_pull
from ._airflow._compat import BaseAsyncOperator
from ._airflow._compat import enable_async_tasks as _enable_async_tasks
from ._airflow._operator import IterateOperator
from ._airflow._options import IterateOptions
from ._airflow._rerun_request import RerunRequestError, request_rerun_of_failed_items
from ._core import (
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
)
from ._public import present_as as _present_as

__all__ = [
    "BaseAsyncOperator",
    "ItemFailure",
    "ItemTimeoutError",
    "ItemsFailedError",
    "IterateCancelledError",
    "IterateError",
    "IterateInputError",
    "IterateOperator",
    "IterateOptions",
    "IterateTimeoutError",
    "IterateUsageError",
    "RecordedItemError",
    "RerunRequestError",
    "SyncCallOnLoopError",
    "__version__",
    "aget_connection",
    "aget_variable",
    "axcom_pull",
    "iterate",
    "iterate_kwargs",
    "request_rerun_of_failed_items",
]

_present_as(__name__, globals(), __all__)
_install()
_enable_async_tasks()  # plain async def @task functions on Airflow 3.1, as on 3.2+
