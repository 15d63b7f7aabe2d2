"""Task SDK names whose home differs between the Airflow versions this package supports (3.1+).

Each is feature-detected, not version-checked: its current home first, then where Airflow 3.1
keeps it. The rest of the package imports these names from here only.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from airflow.sdk import BaseOperator

try:
    from airflow.sdk.exceptions import (
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSkipException,
        AirflowTaskTimeout,
        TaskDeferred,
    )
except ImportError:  # Airflow 3.1: the Task SDK still raises (and catches) airflow-core's classes
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSkipException,
        AirflowTaskTimeout,
        TaskDeferred,
    )

__all__ = [
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSkipException",
    "AirflowTaskTimeout",
    "BaseAsyncOperator",
    "TaskDeferred",
    "enable_async_tasks",
    "stats_module",
    "xcom_serde",
]


try:
    from airflow.sdk import BaseAsyncOperator
except ImportError:  # Airflow 3.1

    class BaseAsyncOperator(BaseOperator):  # type: ignore[no-redef]
        """The Task SDK's ``BaseAsyncOperator`` (Airflow 3.2+) for 3.1: ``aexecute`` on a fresh loop.

        An operator written against it runs the same way on every version: ``.iterate()`` awaits
        ``aexecute`` on its shared event loop, and a plain task's ``execute`` drives ``aexecute``
        to completion, within ``execution_timeout`` like the Task SDK's own.
        """

        @property
        def is_async(self) -> bool:
            return True

        async def aexecute(self, context: Any) -> Any:
            raise NotImplementedError(f"{type(self).__name__} must implement aexecute()")

        def execute(self, context: Any) -> Any:
            awaitable = self.aexecute(context)
            if self.execution_timeout is not None:
                awaitable = asyncio.wait_for(awaitable, timeout=self.execution_timeout.total_seconds())
            return asyncio.run(awaitable)


def enable_async_tasks() -> bool:
    """Let plain ``async def`` @task functions run on Airflow 3.1, as they do natively on 3.2+.

    3.1's PythonOperator refuses async callables ("Async operators require Airflow 3.2+"). Here
    such a callable runs through the operator's ordinary sync path, behind a sync stand-in with the
    same signature (so context arguments are still injected) that drives the coroutine to
    completion on a fresh event loop. Does nothing where the Task SDK runs async callables itself.
    Returns whether it patched.
    """
    try:
        from airflow.sdk import BaseAsyncOperator as _native  # noqa: F401
    except ImportError:
        pass
    else:
        return False
    from airflow.providers.standard.operators.python import PythonOperator

    original = PythonOperator.execute
    if getattr(original, "_runs_coroutines", False):
        return True

    def execute(self: Any, context: Any) -> Any:
        function = self.python_callable
        if not inspect.iscoroutinefunction(inspect.unwrap(function)):
            return original(self, context)

        def run_to_completion(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run(function(*args, **kwargs))

        # No __wrapped__ (that would make it look async again); the signature is what matters.
        run_to_completion.__signature__ = inspect.signature(function)  # type: ignore[attr-defined]
        run_to_completion.__name__ = getattr(function, "__name__", "callable")
        self.python_callable = run_to_completion
        try:
            return original(self, context)
        finally:
            self.python_callable = function

    execute._runs_coroutines = True  # type: ignore[attr-defined]
    PythonOperator.execute = execute  # type: ignore[method-assign]
    return True


def xcom_serde() -> tuple[Callable[[Any], Any], Callable[[Any], Any]] | None:
    """The encoder and decoder XCom values go through, or None where neither module exists."""
    try:
        from airflow.sdk.serde import deserialize, serialize
    except ImportError:
        try:  # Airflow 3.1: the Task SDK's XCom backend still uses airflow-core's serde
            from airflow.serialization.serde import deserialize, serialize
        except ImportError:  # pragma: no cover
            return None
    return serialize, deserialize


def stats_module() -> Any:
    """What sends metrics from a task (anything with ``gauge(name, value, tags=...)``), or None."""
    try:
        from airflow.sdk.observability import stats
    except ImportError:
        try:  # Airflow 3.1: the Task SDK reports its own metrics through airflow-core's Stats
            from airflow.stats import Stats
        except ImportError:  # pragma: no cover
            return None
        return Stats
    return stats
