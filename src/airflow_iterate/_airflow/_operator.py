"""IterateOperator: one task instance that runs a @task function over every item of its input."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from airflow.sdk import BaseOperator

from .._core import (
    ItemFailure,
    ItemRunner,
    ItemsFailedError,
    IterateInputError,
    IterateTimeoutError,
    error_text,
    short_repr,
)
from ._checkpointing import open_checkpoint
from ._compat import AirflowFailException, AirflowSkipException, AirflowTaskTimeout, redact, xcom_serde
from ._inputs import ItemSource, IterateInput
from ._item_context import ItemXComs
from ._labels import ItemLabels
from ._ledger_store import open_ledger
from ._loop_guard import guard_sync_sdk_calls
from ._options import IterateSettings
from ._python import ItemInvoker
from ._quiet_logs import quiet_libraries
from ._reporting import Reporter

#: how long in-flight items get for their cleanup after the deadline, before Airflow's own
#: (signal-based) timeout is allowed to fire
CLEANUP_GRACE_SECONDS = 10.0

#: item exceptions that keep their Airflow meaning for the whole task: never retried per item,
#: they stop the run (in-flight items finish) and fail the task without retries / skip it
AIRFLOW_CONTROL_EXCEPTIONS = (AirflowFailException, AirflowSkipException)


class IterateOperator(BaseOperator):
    """One task instance that runs something once per item of ``iterate_input``, concurrently.

    Built by ``task.iterate(...)`` (a @task function) or ``SomeOperator.partial(...).iterate(...)``
    (an operator class); DAG authors do not create it directly. Its return value (the XCom
    ``return_value``) is the list of per-item results in input order.
    """

    ui_color = "#d7ecf9"

    def __init__(
        self,
        *,
        iterate_input: IterateInput,
        settings: IterateSettings | None = None,
        operator_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input = iterate_input
        self.settings = settings or IterateSettings()
        if operator_name:
            self.custom_operator_name = operator_name
        # A list result is never unrolled into separate XComs, whatever the function's annotation.
        self.multiple_outputs = False
        # map_index_template names the instances of a mapped task; this one task instance stands
        # for every item and has no map index, so it has no label to render (an item's value in
        # it would be undefined, and would fail a run whose items all succeeded).
        self.map_index_template = None

    def _make_invoker(self, context: Any, sink: ItemXComs, items: ItemSource) -> Any:
        """The per-item callable (``invoker(index, item_kwargs)``, with an ``is_async`` flag)."""
        raise NotImplementedError

    @property
    def iterate_input(self) -> Any:
        """The input's literals and XComArgs, as a template field (rendering replaces them)."""
        return self.input.value

    @iterate_input.setter
    def iterate_input(self, value: Any) -> None:
        self.input = self.input.with_value(value)

    def _resolved_input(self, context: Any) -> ItemSource:
        """The input with its values, ready to be iterated (after templates were rendered)."""
        return self.input

    def _target_name(self) -> str:
        """What runs per item, for the log."""
        return str(self.operator_name)

    # -- execution ----------------------------------------------------------------------------

    def execute(self, context: Any) -> list[Any]:
        with quiet_libraries() as quieted:
            if quieted:
                self.log.debug("Logged at WARNING and above during the run: %s", ", ".join(quieted))
            return self._execute(context)

    def _execute(self, context: Any) -> list[Any]:
        settings = self.settings
        sink = ItemXComs()
        items = self._resolved_input(context)
        invoker = self._make_invoker(context, sink, items)
        options = dataclasses.replace(
            settings.run, timeout=self._take_over_timeout(), stop_on=AIRFLOW_CONTROL_EXCEPTIONS
        )
        checkpoint = None
        if settings.checkpoint:
            checkpoint, location = open_checkpoint(context, self.log, extras=sink.of_item)
            if checkpoint.completed:
                self.log.info(
                    "Resuming: %d item(s) succeeded in an earlier attempt (checkpoint in %s) and are not "
                    "run again",
                    len(checkpoint.completed),
                    location,
                )
            for index, pushed in checkpoint.loaded_extras.items():
                sink.restore(index, pushed)
        reporter = Reporter(self.log, context)
        labels = ItemLabels(settings.item_label, self.log)
        total = items.length()
        runner: ItemRunner[dict[str, Any], Any] = ItemRunner(
            invoker,
            options,
            is_async=invoker.is_async,
            describe=labels,
            describe_error=_describe_error,
            index_offset=items.offset,
            checkpoint=checkpoint,
            observer=reporter,
            ledger=open_ledger(context, **self._ledger_about(items, total)),
        )
        self.log.info(
            "Iterating %s over %s item(s), %s %d at a time (%s)",
            self._target_name(),
            "an unknown number of" if total is None else f"{total:,}",
            "adapting to the server, at most" if options.adaptive else "up to",
            options.concurrency_for(invoker.is_async),
            "one event loop" if invoker.is_async else "thread pool",
        )
        try:
            self._runner = runner
            guard = guard_sync_sdk_calls(self.log) if invoker.is_async else contextlib.nullcontext()
            with guard:
                results = runner.run(iter(items), total=total)
        except IterateTimeoutError as exc:
            raise AirflowTaskTimeout(str(exc)) from exc
        finally:
            if runner.changed_inputs:
                self.log.warning(
                    "%d item(s) in the checkpoint had a different input this time and ran again",
                    runner.changed_inputs,
                )
            stats = runner.statistics()
            if stats.started or stats.resumed or not _input_failed():
                reporter.finished(stats, runner.failures)
            self._publish_item_xcoms(context["ti"], sink, items.offset, stats.started + stats.resumed)
        if runner.abandoned_attempts:
            self.log.warning(
                "%d sync attempt(s) ran past item_timeout and were left to finish on their threads",
                runner.abandoned_attempts,
            )
        _require_serializable(results, items, labels)
        return results

    def _ledger_about(self, items: ItemSource, total: int | None) -> dict[str, Any]:
        """What the item ledger says about this task instance's share of the input."""
        return {"first_index": items.offset, "operator": self._target_name()}

    def _publish_item_xcoms(self, ti: Any, sink: ItemXComs, start: int, count: int) -> list[str]:
        pushed = sink.publish(ti, start, count)
        if pushed:
            self.log.info("XComs pushed by items, as one list per key in input order: %s", pushed)
        return pushed

    def on_kill(self) -> None:
        """Called by Airflow when the task is killed (SIGTERM): stop the run cleanly.

        In-flight async items are cancelled and their cleanup runs; the task then fails with
        the counts, and a rerun resumes from the checkpoint.
        """
        runner = getattr(self, "_runner", None)
        if runner is not None:
            runner.cancel("the task was killed")

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


class _PythonIterateOperator(IterateOperator):
    """Iterates a @task function: ``python_callable(**static_kwargs, **item_kwargs)`` per item.

    With ``item_multiple_outputs`` (the function's ``multiple_outputs``) each item's dict result
    is also unrolled: every key becomes one XCom, the list of that key's values in input order,
    which is what ``.expand()`` gives for ``result["key"]``.
    """

    # Literal items are templates, as .expand()'s are; values resolved from XComs are not rendered.
    template_fields = ("iterate_input", "static_kwargs")
    template_fields_renderers: ClassVar[dict[str, str]] = {"iterate_input": "py", "static_kwargs": "py"}
    # since the callable is never mutated, a shallow copy suffices (and works for any callable)
    shallow_copy_attrs = ("python_callable",)

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        static_kwargs: Mapping[str, Any] | None = None,
        item_multiple_outputs: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.static_kwargs = dict(static_kwargs or {})
        self.item_multiple_outputs = item_multiple_outputs

    def _make_invoker(self, context: Any, sink: ItemXComs, items: ItemSource) -> ItemInvoker:
        return ItemInvoker(
            self.python_callable,
            self.static_kwargs,
            context,
            sink,
            multiple_outputs=self.item_multiple_outputs,
        )

    def _target_name(self) -> str:
        return f"{getattr(self.python_callable, '__name__', 'the function')}()"


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _require_serializable(
    results: list[Any], items: Iterable[dict[str, Any]], labels: Callable[[Mapping[str, Any]], str]
) -> None:
    """Fail naming the item whose result cannot be stored as an XCom, instead of a bare TypeError."""
    serde = xcom_serde()
    if serde is None:  # pragma: no cover - left to the XCom push
        return
    serialize = serde[0]
    # Scalars always serialize, so only other results are tried (the XCom push serializes the
    # whole list again: a full pass here would double that cost for every task).
    for index, result in enumerate(results):
        if type(result) in _SCALARS:
            continue
        try:
            serialize(result)
        except Exception as exc:
            item = next(itertools.islice(iter(items), index, None), {})
            error = TypeError(
                f"the result {short_repr(result)} ({type(result).__name__}) cannot be stored as an XCom: "
                f"{exc}; return JSON-like data (str, int, float, bool, list, dict, ...) from the function"
            )
            position = getattr(items, "offset", 0) + index
            raise ItemsFailedError(
                [ItemFailure(position, labels(item), error, _describe_error(error))],
                completed=len(results),
                total=len(results),
            ) from exc


def _input_failed() -> bool:
    """Whether the exception being handled is an input error: nothing ran, and it says why."""
    return isinstance(sys.exc_info()[1], IterateInputError)


def _describe_error(exc: BaseException) -> str:
    return str(redact(error_text(exc)))
