"""Everything of Airflow's that is not its public Task SDK API, and names that moved between versions.

The package needs a few of the Task SDK's internals (the ``@task`` decorator's class to add
``.iterate()`` to, ``.partial()``'s checks, the DAG and task group being defined, lazy XCom
sequences, the supervisor channel). They are imported here and nowhere else, so an Airflow
release that moves one breaks this module only. Names whose home differs between the versions
this package supports (3.1+) are feature-detected, not version-checked: their current home
first, then where Airflow 3.1 keeps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.bases.decorator import _TaskDecorator as TaskDecorator
from airflow.sdk.bases.decorator import get_unique_task_id
from airflow.sdk.definitions._internal.contextmanager import DagContext, TaskGroupContext
from airflow.sdk.definitions.mappedoperator import (
    OperatorPartial,
    prevent_duplicates,
    validate_mapping_kwargs,
)
from airflow.sdk.definitions.xcom_arg import PlainXComArg

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
    "DagContext",
    "OperatorPartial",
    "PlainXComArg",
    "TaskDecorator",
    "TaskDeferred",
    "TaskGroupContext",
    "called_by_task_runner",
    "enable_async_tasks",
    "get_unique_task_id",
    "is_async_operator_class",
    "is_deadlock_error",
    "is_lazy_xcom_sequence",
    "is_python_task",
    "max_map_length",
    "prevent_duplicates",
    "redact",
    "render_templates",
    "set_supervisor_comms",
    "stats_module",
    "supervisor_comms",
    "task_params",
    "validate_mapping_kwargs",
    "xcom_result_parts",
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


def is_python_task(task: TaskDecorator[Any, Any, Any]) -> bool:
    """Whether a ``@task`` decorator makes plain Python tasks (not ``@task.bash``, ``.docker``, ...)."""
    from airflow.providers.standard.decorators.python import _PythonDecoratedOperator

    return task.operator_class is _PythonDecoratedOperator


def is_async_operator_class(operator_class: type) -> bool:
    """Whether every instance of ``operator_class`` runs through ``aexecute`` (``is_async``)."""
    flag = getattr(operator_class, "is_async", False)
    if isinstance(flag, property):
        # A property needs an instance; BaseAsyncOperator's answers True for every instance.
        getter = flag.fget
        return bool(
            getter is not None and getattr(getter, "__qualname__", "") == "BaseAsyncOperator.is_async"
        )
    return bool(flag)


def is_lazy_xcom_sequence(value: Any) -> bool:
    """Whether ``value`` is the output of a mapped task, read element by element from the API."""
    try:
        from airflow.sdk.execution_time.lazy_sequence import LazyXComSequence
    except ImportError:  # pragma: no cover - older Task SDKs
        return False
    return isinstance(value, LazyXComSequence)


def xcom_result_parts(value: Any) -> tuple[str, list[Any], bool] | None:
    """``(kind, parts, zip_longest)`` of a resolved ``.map()`` / ``.zip()`` / ``.concat()`` XComArg.

    ``kind`` is ``"map"``, ``"zip"`` or ``"concat"``; ``zip_longest`` tells a zip given a
    ``fillvalue`` from one zipping to the shortest part. None for any other value.
    """
    try:
        from airflow.sdk.definitions.xcom_arg import _ConcatResult, _MapResult, _ZipResult
    except ImportError:  # pragma: no cover - windowed element by element instead
        return None
    if isinstance(value, _MapResult):
        return "map", [value.value], False
    if isinstance(value, _ZipResult):
        # An unset fillvalue is the Task SDK's ArgNotSet marker: zip to the shortest, as it does.
        return "zip", list(value.values), type(value.fillvalue).__name__ != "ArgNotSet"
    if isinstance(value, _ConcatResult):
        return "concat", list(value.values), False
    return None


def _conf() -> Any:
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # Airflow 3.1
        from airflow.configuration import conf  # type: ignore[no-redef]
    return conf


def max_map_length() -> int:
    """``[core] max_map_length``: the most task instances one mapped task may have."""
    return int(_conf().getint("core", "max_map_length", fallback=1024))


def config_value(section: str, key: str, fallback: str) -> str:
    """A string from Airflow's configuration (``AIRFLOW__SECTION__KEY`` included)."""
    return str(_conf().get(section, key, fallback=fallback))


def supervisor_comms() -> Any:
    """The task process's channel to its supervisor, or None outside a task process."""
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:  # pragma: no cover
        return None
    return getattr(task_runner, "SUPERVISOR_COMMS", None)


def set_supervisor_comms(comms: Any) -> None:
    from airflow.sdk.execution_time import task_runner

    task_runner.SUPERVISOR_COMMS = comms


def is_deadlock_error(exc: BaseException) -> bool:
    """Whether the Task SDK refused a sync call because an async one holds the channel."""
    return type(exc).__name__ == "DeadlockImminentError"


def render_templates(operator: Any, context: Any, data_ids: set[int]) -> None:
    """``operator.render_template_fields(context)``, leaving the values whose ids are in ``data_ids``.

    What a mapped operator does with the values it resolved from XComs: they are passed on as
    they are, however much they look like Jinja.
    """
    operator._do_render_template_fields(
        operator, operator.template_fields, context, operator.get_template_env(), data_ids
    )


def task_params(context: Any, operator: Any) -> dict[str, Any]:
    """``context["params"]`` for ``operator``: the DAG's params, its own, the run's conf, validated.

    What a mapped task instance's context holds once its operator is unmapped.
    """
    from airflow.sdk.definitions.param import process_params

    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None)
    return dict(process_params(operator.dag, operator, conf, suppress_exception=False))


@contextlib.contextmanager
def called_by_task_runner(operator: Any) -> Iterator[None]:
    """Within it, ``operator.execute`` counts as called by the task runner, which it is for an item.

    The Task SDK warns "<Op>.execute cannot be called outside of the Task Runner!" when an
    operator's ``execute`` runs from another operator's; the task runner marks the operator it
    runs in a context variable, and this marks an item's operator the same way (in the calling
    thread's context only). An operator an item runs by itself is still reported.
    """
    try:
        from airflow.sdk.bases.operator import ExecutorSafeguard
    except ImportError:  # pragma: no cover - a Task SDK without the safeguard
        yield
        return
    token = ExecutorSafeguard.tracker.set(operator)
    try:
        yield
    finally:
        ExecutorSafeguard.tracker.reset(token)


def redact(value: Any) -> Any:
    """``value`` with Airflow's secrets masked: registered secrets anywhere in its strings, and the
    values of keys named like secrets (``password``, ``api_key``, ...), as task logs show them."""
    try:
        from airflow.sdk._shared.secrets_masker import redact as _redact
    except ImportError:  # pragma: no cover - a Task SDK that keeps it elsewhere
        from airflow.sdk.execution_time.secrets_masker import redact as _redact
    return _redact(value)
