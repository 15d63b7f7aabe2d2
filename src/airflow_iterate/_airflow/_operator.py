"""IterateOperator: one task instance that runs a @task function over every item of its input."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Literal

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowTaskTimeout

from .._core import (
    ItemRunner,
    IterateTimeoutError,
    check_iterable,
    cross_product,
    kwargs_stream,
    short_repr,
)
from ._python import ItemInvoker

InputKind = Literal["product", "kwargs"]

DEFAULT_ASYNC_CONCURRENCY = 32
DEFAULT_SYNC_CONCURRENCY = 8

#: how long in-flight items get for their cleanup after the deadline, before Airflow's own
#: (signal-based) timeout is allowed to fire
CLEANUP_GRACE_SECONDS = 10.0


class IterateOperator(BaseOperator):
    """Runs a Python callable once per item of ``iterate_input``, concurrently, in this task instance.

    Built by ``task.iterate(...)`` / ``task.iterate_kwargs(...)``; DAG authors do not create it
    directly. Its return value (the XCom ``return_value``) is the list of per-item results in
    input order.
    """

    template_fields = ("iterate_input", "static_kwargs")
    template_fields_renderers: ClassVar[dict[str, str]] = {"iterate_input": "py", "static_kwargs": "py"}
    ui_color = "#d7ecf9"
    # since the callable is never mutated, a shallow copy suffices (and works for any callable)
    shallow_copy_attrs = ("python_callable",)

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        iterate_input: Any,
        input_kind: InputKind,
        static_kwargs: Mapping[str, Any] | None = None,
        concurrency: int | None = None,
        operator_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.iterate_input = iterate_input
        self.input_kind = input_kind
        self.static_kwargs = dict(static_kwargs or {})
        self.concurrency = concurrency
        if operator_name:
            self.custom_operator_name = operator_name
        # A list result is never unrolled into separate XComs, whatever the function's annotation.
        self.multiple_outputs = False

    # -- execution ----------------------------------------------------------------------------

    def execute(self, context: Any) -> list[Any]:
        invoker = ItemInvoker(self.python_callable, self.static_kwargs, context)
        concurrency = self.concurrency or (
            DEFAULT_ASYNC_CONCURRENCY if invoker.is_async else DEFAULT_SYNC_CONCURRENCY
        )
        items = self._items()
        timeout = self._take_over_timeout()
        runner: ItemRunner[dict[str, Any], Any] = ItemRunner(
            invoker,
            concurrency=concurrency,
            is_async=invoker.is_async,
            timeout=timeout,
            cleanup_timeout=CLEANUP_GRACE_SECONDS,
            describe=_describe_item,
        )
        self.log.info(
            "Iterating %s over %s item(s), up to %d at a time (%s)",
            getattr(self.python_callable, "__name__", "callable"),
            _total_or_unknown(self.iterate_input, self.input_kind),
            concurrency,
            "one event loop" if invoker.is_async else "thread pool",
        )
        try:
            results = runner.run(items)
        except IterateTimeoutError as exc:
            raise AirflowTaskTimeout(str(exc)) from exc
        finally:
            stats = runner.statistics()
            self.log.info(
                "Iterate finished: %d succeeded, %d failed, %d started, %.2fs (%.1f items/s), "
                "peak %d in flight",
                stats.succeeded,
                stats.failed,
                stats.started,
                stats.elapsed,
                stats.succeeded / stats.elapsed if stats.elapsed else 0.0,
                stats.peak_in_flight,
            )
        return results

    def _items(self) -> Iterator[dict[str, Any]]:
        value = self.iterate_input
        if self.input_kind == "kwargs":
            return kwargs_stream(value, name="kwargs")
        named = {name: check_iterable(name, v) for name, v in value.items()}
        return cross_product(named)

    def _take_over_timeout(self) -> float | None:
        """Enforce ``execution_timeout`` cooperatively, so in-flight items are cancelled cleanly.

        Airflow arms a SIGALRM for the task; when it fires inside an event loop the items never
        see a cancellation. Instead the runner gets the time left, and the alarm is pushed back by
        a grace period so it only fires if cancellation itself hangs.
        """
        if self.execution_timeout is None:
            return None
        budget: float = self.execution_timeout.total_seconds()
        if threading.current_thread() is threading.main_thread():
            remaining, _ = signal.getitimer(signal.ITIMER_REAL)
            if remaining > 0:
                budget = remaining
                signal.setitimer(signal.ITIMER_REAL, remaining + CLEANUP_GRACE_SECONDS)
        return max(budget, 1e-3)


def _describe_item(item: Mapping[str, Any]) -> str:
    if len(item) == 1:
        return short_repr(next(iter(item.values())))
    return short_repr(dict(item))


def _total_or_unknown(value: Any, kind: InputKind) -> str:
    try:
        if kind == "kwargs":
            return str(len(value))
        total = 1
        for v in value.values():
            total *= len(v)
        return str(total)
    except TypeError:
        return "an unknown number of"
