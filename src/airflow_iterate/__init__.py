"""airflow-iterate: thousands of small I/O-bound steps inside ONE Airflow task instance.

Importing this package gives every ``@task`` function ``.iterate(...)`` and ``.iterate_kwargs(...)``,
the in-process counterparts of ``.expand(...)`` and ``.expand_kwargs(...)``.

Layout::

    _core/       Airflow-free engine: item streams, bounded concurrency (one event loop or a
                 thread pool), ordered results, errors naming the item, deadlines
    _airflow/    the thin Airflow layer: IterateOperator, iterate()/iterate_kwargs(), the methods
                 added to @task functions, provider registration

Errors: see :mod:`airflow_iterate._core._errors` for the exception tree.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._airflow._api import install as _install
from ._airflow._api import iterate, iterate_kwargs
from ._airflow._async_sdk import aget_connection, aget_variable, axcom_pull
from ._airflow._compat import BaseAsyncOperator
from ._airflow._compat import enable_async_tasks as _enable_async_tasks
from ._airflow._operator import IterateOperator
from ._core import (
    ItemFailure,
    ItemsFailedError,
    IterateCancelledError,
    IterateError,
    IterateInputError,
    IterateTimeoutError,
    IterateUsageError,
)

__all__ = [
    "BaseAsyncOperator",
    "ItemFailure",
    "ItemsFailedError",
    "IterateCancelledError",
    "IterateError",
    "IterateInputError",
    "IterateOperator",
    "IterateTimeoutError",
    "IterateUsageError",
    "__version__",
    "aget_connection",
    "aget_variable",
    "axcom_pull",
    "iterate",
    "iterate_kwargs",
]

_install()
_enable_async_tasks()  # plain async def @task functions on Airflow 3.1, as on 3.2+
