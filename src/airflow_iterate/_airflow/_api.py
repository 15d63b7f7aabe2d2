"""``iterate()`` and ``iterate_kwargs()``: parse-time checks, then one IterateOperator in the DAG."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, XComArg
from airflow.sdk.bases.decorator import _TaskDecorator, get_unique_task_id
from airflow.sdk.definitions.mappedoperator import (
    OperatorPartial,
    prevent_duplicates,
    validate_mapping_kwargs,
)

from .._core import IterateUsageError, short_repr
from ._chunked import build_chunked
from ._classic import _ClassicIterateOperator
from ._item_context import ITERATE_INDEX_KEY
from ._operator import _PythonIterateOperator
from ._settings import DEFAULT_MAX_ITEMS, OPTION_NAMES, IterateSettings

# PythonOperator arguments a @task may carry that have no per-item meaning in iterate().
_IGNORED_PYTHON_ARGS = frozenset({"show_return_value_in_logs", "multiple_outputs"})
_REFUSED_PYTHON_ARGS = {
    "templates_dict": "pass the values as arguments with .partial(...) instead",
    "templates_exts": "pass the values as arguments with .partial(...) instead",
    "op_args": "pass arguments by name with .partial(...) instead",
}

_BASE_OPERATOR_ARGS = frozenset(inspect.signature(BaseOperator.__init__).parameters) - {"self", "kwargs"}


def iterate(
    task: Any,
    /,
    *,
    concurrency: int | None = None,
    item_retries: int = 0,
    item_retry_delay: float | timedelta = 1.0,
    item_retry_max_delay: float | timedelta = 300.0,
    item_retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    max_failures: int | float | None = 0,
    checkpoint: bool = True,
    checkpoint_interval: float | timedelta = 5.0,
    progress_interval: float | timedelta = 10.0,
    rate_limit: str | float | None = None,
    max_items: int | None = DEFAULT_MAX_ITEMS,
    chunk_size: int | None = None,
    chunks: int | None = None,
    **iterables: Any,
) -> XComArg:
    """Run ``task`` once per item inside ONE task instance; the same argument forms as ``.expand()``.

    Each keyword argument that is not an option below is a list, tuple, dict (iterated as
    ``(key, value)`` pairs) or an XComArg resolving to one; several arguments iterate over their
    cross product. Arguments fixed for every item come from ``task.partial(...)``. Returns an
    XComArg whose value is the list of per-item results in input order.

    :param concurrency: items running at once (default 128 for ``async def`` functions, which share
        one event loop, and 8 threads for sync functions)
    :param item_retries: extra attempts for an item that raises one of ``item_retry_on``
    :param item_retry_delay: the first retry's delay; it doubles each time, with jitter
    :param item_retry_max_delay: the cap on one retry delay
    :param item_retry_on: exception class(es) worth retrying (default: any Exception)
    :param max_failures: failed items tolerated: a count, a ratio in (0, 1) of the input, or None
        for no limit. Within it the task succeeds, failed items are ``None`` in the result and are
        listed in the ``iterate_failures`` XCom; past it the task fails once in-flight items finish
    :param checkpoint: record succeeded items so a rerun of the task (a retry, a crash) skips them
    :param checkpoint_interval: how often the checkpoint is written (one write per interval)
    :param progress_interval: how often progress is logged and reported as metrics
    :param rate_limit: item starts across the whole task, like ``"200/s"`` or ``"30/min"``
    :param max_items: refuse inputs with more items than this (None: no limit)
    :param chunk_size: split the input over mapped task instances of this many items each (they
        can run on different workers); see "Scaling out over workers" in the README
    :param chunks: split the input over this many mapped task instances instead
    """
    if isinstance(task, OperatorPartial):
        task._expand_called = True  # used here, even if iterate() then refuses its arguments
        _refuse_operator_option_clashes(task)
    else:
        _refuse_option_clashes(_require_task(task, "iterate"))  # first: such values were taken as options
    settings = IterateSettings(
        concurrency=concurrency,
        item_retries=item_retries,
        item_retry_delay=item_retry_delay,
        item_retry_max_delay=item_retry_max_delay,
        item_retry_on=item_retry_on,
        max_failures=max_failures,
        checkpoint=checkpoint,
        checkpoint_interval=checkpoint_interval,
        progress_interval=progress_interval,
        rate_limit=rate_limit,
        max_items=max_items,
        chunk_size=chunk_size,
        chunks=chunks,
    )
    if not iterables:
        raise IterateUsageError("iterate() needs at least one keyword argument to iterate over")
    for name, value in iterables.items():
        _require_iterable_argument("iterate", name, value)
    if isinstance(task, OperatorPartial):
        _validate_operator_names(task, "iterate", iterables)
        return _build_classic(task, iterables, "product", settings)
    decorated = _require_task(task, "iterate")
    _validate_names(decorated, "iterate", iterables)
    return _build(decorated, iterables, "product", settings)


def iterate_kwargs(task: Any, kwargs: Any, /, **options: Any) -> XComArg:
    """Like ``.expand_kwargs()``: ``kwargs`` is a list of dicts (or an XComArg of one), one per item.

    Takes the same keyword-only options as :func:`iterate`.
    """
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise IterateUsageError(
            f"iterate_kwargs() got unknown option(s) {', '.join(map(repr, unknown))}; "
            f"the options are {', '.join(sorted(OPTION_NAMES))}"
        )
    settings = IterateSettings(**options)
    decorated = None if isinstance(task, OperatorPartial) else _require_task(task, "iterate_kwargs")
    if decorated is None:
        task._expand_called = True
    if isinstance(kwargs, XComArg):
        pass
    elif isinstance(kwargs, Mapping) or not isinstance(kwargs, Sequence) or isinstance(kwargs, str):
        raise IterateUsageError(
            f"iterate_kwargs() expects a list of dicts or an XComArg, got {type(kwargs).__name__} "
            f"{short_repr(kwargs)}"
        )
    else:
        for index, element in enumerate(kwargs):
            if isinstance(element, XComArg):
                continue
            if not isinstance(element, Mapping):
                raise IterateUsageError(
                    f"iterate_kwargs() element {index} is {type(element).__name__} {short_repr(element)}; "
                    "expected a dict of keyword arguments (or an XComArg resolving to one)"
                )
            if decorated is None:
                _validate_operator_names(task, "iterate_kwargs", dict(element))
            else:
                _validate_names(decorated, "iterate_kwargs", dict(element))
    if decorated is None:
        return _build_classic(task, kwargs, "kwargs", settings)
    return _build(decorated, kwargs, "kwargs", settings)


# -- checks -----------------------------------------------------------------------------------


def _require_task(task: Any, func: str) -> _TaskDecorator[Any, Any, Any]:
    if not isinstance(task, _TaskDecorator):
        raise IterateUsageError(
            f"{func}() takes a @task-decorated function or an operator's .partial(...), got "
            f"{type(task).__name__} {short_repr(task)}"
        )
    from airflow.providers.standard.decorators.python import _PythonDecoratedOperator

    if task.operator_class is not _PythonDecoratedOperator:
        kind = getattr(task.operator_class, "custom_operator_name", task.operator_class.__name__)
        raise IterateUsageError(
            f"{func}() runs plain @task functions in the worker's Python process; {kind} tasks are not "
            "supported"
        )
    return task


def _refuse_option_clashes(task: _TaskDecorator[Any, Any, Any]) -> None:
    clashes = sorted(OPTION_NAMES.intersection(task.function_signature.parameters))
    if clashes:
        names = ", ".join(repr(c) for c in clashes)
        raise IterateUsageError(
            f"{task.function.__name__}() has parameter(s) {names} with the same name as iterate() "
            f"options; use .iterate_kwargs([{{{clashes[0]!r}: ...}}, ...]) to pass per-item values, "
            "and its keyword-only options for the run"
        )


def _validate_names(task: _TaskDecorator[Any, Any, Any], func: str, kwargs: dict[str, Any]) -> None:
    if ITERATE_INDEX_KEY in kwargs:
        raise IterateUsageError(f"cannot call {func}() on {ITERATE_INDEX_KEY!r}: it is set per item")
    try:
        task._validate_arg_names(func, kwargs)  # type: ignore[arg-type]  # same rules as expand()
    except (TypeError, ValueError) as exc:
        raise IterateUsageError(str(exc)) from exc
    already = set(task.kwargs.get("op_kwargs", {})).intersection(kwargs)
    if already:
        raise IterateUsageError(
            f"{func}() got argument(s) already given to .partial(): {', '.join(sorted(already))}"
        )


def _operator_parameters(operator_class: type) -> set[str]:
    names: set[str] = set()
    for klass in operator_class.mro():
        init = klass.__dict__.get("__init__")
        if init is not None:
            names.update(inspect.signature(init).parameters)
    return names - {"self", "args", "kwargs"}


def _refuse_operator_option_clashes(partial: OperatorPartial) -> None:
    clashes = sorted(OPTION_NAMES.intersection(_operator_parameters(partial.operator_class)))
    if clashes:
        names = ", ".join(repr(c) for c in clashes)
        raise IterateUsageError(
            f"{partial.operator_class.__name__} has argument(s) {names} with the same name as iterate() "
            f"options; use .iterate_kwargs([{{{clashes[0]!r}: ...}}, ...]) to pass per-item values"
        )


def _validate_operator_names(partial: OperatorPartial, func: str, kwargs: dict[str, Any]) -> None:
    if ITERATE_INDEX_KEY in kwargs:
        raise IterateUsageError(f"cannot call {func}() on {ITERATE_INDEX_KEY!r}: it is set per item")
    try:
        validate_mapping_kwargs(partial.operator_class, "partial", kwargs)  # names only, as expand does
    except (TypeError, ValueError) as exc:
        raise IterateUsageError(str(exc).replace(".partial()", f".{func}()", 1)) from exc
    try:
        reason = f"{func}() got an argument already given to .partial()"
        prevent_duplicates(partial.kwargs, kwargs, fail_reason=reason)
    except TypeError as exc:
        raise IterateUsageError(str(exc)) from exc
    if partial.kwargs.get("deferrable") or partial.kwargs.get("start_from_trigger"):
        raise IterateUsageError(
            f"{partial.operator_class.__name__} is deferrable here, and deferring hands work to the "
            "triggerer; iterate() runs every item on the worker, concurrently: pass deferrable=False "
            "in .partial(...)"
        )


def _require_iterable_argument(func: str, name: str, value: Any) -> None:
    if isinstance(value, XComArg):
        return
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, (Sequence, Mapping)):
        raise IterateUsageError(
            f"{func}() got {type(value).__name__} {short_repr(value)} for keyword argument {name!r}; "
            "expected a list, tuple or dict of items, or an XComArg (an upstream task's output)"
        )


# -- building the task ------------------------------------------------------------------------


def _build(
    task: _TaskDecorator[Any, Any, Any],
    iterate_input: Any,
    input_kind: str,
    settings: IterateSettings,
) -> XComArg:
    task_kwargs = dict(task.kwargs)
    static_kwargs = dict(task_kwargs.pop("op_kwargs", None) or {})
    operator_kwargs: dict[str, Any] = {}
    for key, value in task_kwargs.items():
        if key in _IGNORED_PYTHON_ARGS:
            continue
        if key in _REFUSED_PYTHON_ARGS:
            if value:
                raise IterateUsageError(f"iterate() does not support {key}=...: {_REFUSED_PYTHON_ARGS[key]}")
            continue
        if key not in _BASE_OPERATOR_ARGS:
            raise IterateUsageError(f"iterate() got an operator argument it does not know: {key!r}")
        operator_kwargs[key] = value
    operator_kwargs["task_id"] = get_unique_task_id(
        operator_kwargs["task_id"], operator_kwargs.get("dag"), operator_kwargs.get("task_group")
    )
    arguments: dict[str, Any] = dict(
        python_callable=task.function,
        iterate_input=iterate_input,
        input_kind=input_kind,
        static_kwargs=static_kwargs,
        settings=settings,
        operator_name="@task.iterate",
        **operator_kwargs,
    )
    if settings.chunked:
        return build_chunked(_PythonIterateOperator, arguments, doc_md=task.function.__doc__)
    operator = _PythonIterateOperator(**arguments)
    if task.function.__doc__ and not (operator.doc_md or operator.doc):
        operator.doc_md = task.function.__doc__
    return XComArg(operator)


def _build_classic(
    partial: OperatorPartial, iterate_input: Any, input_kind: str, settings: IterateSettings
) -> XComArg:
    operator_kwargs = dict(partial.kwargs)
    task_kwargs = {
        key: operator_kwargs.pop(key)
        for key in ("task_id", "dag", "task_group", "start_date", "end_date")
        if key in operator_kwargs
    }
    task_kwargs.update({k: v for k, v in operator_kwargs.items() if k in _BASE_OPERATOR_ARGS})
    item_kwargs = {k: v for k, v in operator_kwargs.items() if k not in _BASE_OPERATOR_ARGS}
    arguments: dict[str, Any] = dict(
        item_operator_class=partial.operator_class,
        operator_kwargs=item_kwargs,
        iterate_input=iterate_input,
        input_kind=input_kind,
        settings=settings,
        operator_name=f"{partial.operator_class.__name__}.iterate",
        params=partial.params,
        **task_kwargs,
    )
    if settings.chunked:
        return build_chunked(_ClassicIterateOperator, arguments)
    operator = _ClassicIterateOperator(**arguments)
    return XComArg(operator)


def install() -> None:
    """Give every @task function ``.iterate()`` and ``.iterate_kwargs()`` methods (idempotent)."""

    def iterate_method(self: Any, /, **kwargs: Any) -> XComArg:
        return iterate(self, **kwargs)

    def iterate_kwargs_method(self: Any, kwargs: Any, /, **options: Any) -> XComArg:
        return iterate_kwargs(self, kwargs, **options)

    iterate_method.__doc__ = iterate.__doc__
    iterate_kwargs_method.__doc__ = iterate_kwargs.__doc__
    for cls in (_TaskDecorator, OperatorPartial):
        cls.iterate = iterate_method  # type: ignore[attr-defined]
        cls.iterate_kwargs = iterate_kwargs_method  # type: ignore[attr-defined]
