"""Calling a @task function once per item, with the same argument rules as PythonOperator.

PythonOperator merges its op_kwargs into the context and then passes the callable the keys its
signature asks for (or everything, when it takes ``**kwargs``). Doing that per item with
``inspect.signature`` would cost more than a no-op item itself, so the signature is read once and
each item only builds a dict.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ._compat import prevent_duplicates
from ._item_context import ITERATE_INDEX_KEY, ItemTaskInstance, ItemXComs, item_context


def unwrap(function: Callable[..., Any]) -> Callable[..., Any]:
    while isinstance(function, functools.partial):
        function = function.func
    try:
        unwrapped: Callable[..., Any] = inspect.unwrap(function)
        return unwrapped
    except ValueError:  # a wrapper cycle: use what we have
        return function


def is_async_callable(function: Callable[..., Any]) -> bool:
    """True for ``async def`` functions, partials of them, and objects with an async ``__call__``."""
    target = unwrap(function)
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(type(target), "__call__", None)  # noqa: B004 - the class attribute, not callable()
    return not inspect.isfunction(target) and call is not None and inspect.iscoroutinefunction(unwrap(call))


def refuse_partial_arguments(
    fixed: Mapping[str, Any], item_kwargs: Mapping[str, Any], fail_reason: str
) -> None:
    """Fail an item whose dict repeats an argument given to ``.partial()``, as ``.expand_kwargs()`` does.

    A literal dict is refused at parse time; one from an XCom is only seen here. ``fail_reason``
    is the words of the task runner's error, so the item fails with the message expand gives.
    """
    if fixed and not fixed.keys().isdisjoint(item_kwargs):
        try:
            prevent_duplicates(dict(fixed), item_kwargs, fail_reason=fail_reason)
        except TypeError as exc:
            raise TypeError(f"{exc} (remove it from .partial() or from the item's dict)") from None


class ItemInvoker:
    """Builds the keyword arguments of one item and calls the function with them.

    ``context`` is the task's context; every item gets its own shallow copy of it (with its
    ``iterate_index`` and its own task-instance view) when the function asks for context values,
    so items share no state.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        static_kwargs: Mapping[str, Any],
        context: Mapping[str, Any],
        sink: ItemXComs,
        *,
        multiple_outputs: bool = False,
    ) -> None:
        self.function = function
        self._multiple_outputs = multiple_outputs
        self._static = dict(static_kwargs)
        self._context = context
        self._sink = sink
        parameters = inspect.signature(function).parameters
        self._takes_everything = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        available = set(context) | {ITERATE_INDEX_KEY}
        # Context values the function names explicitly; explicit arguments win over them.
        self._context_names = [name for name in parameters if name in available and name not in self._static]
        self.is_async = is_async_callable(function)

    def kwargs_for(self, index: int, item_kwargs: Mapping[str, Any]) -> dict[str, Any]:
        refuse_partial_arguments(self._static, item_kwargs, "mapping already partial")
        if self._takes_everything:
            merged = item_context(self._context, index, self._sink)
            merged.update(self._static)
            merged.update(item_kwargs)
            return merged
        kwargs = {**self._static, **item_kwargs}
        for name in self._context_names:
            if name in kwargs:
                continue
            if name == ITERATE_INDEX_KEY:
                kwargs[name] = index
            elif name in ("ti", "task_instance"):
                kwargs[name] = ItemTaskInstance(self._context[name], index, self._sink)
            else:
                kwargs[name] = self._context[name]
        return kwargs

    def __call__(self, index: int, item_kwargs: Mapping[str, Any]) -> Any:
        # Returns the coroutine for async functions: the runner awaits it on the shared loop.
        result = self.function(**self.kwargs_for(index, item_kwargs))
        if not self._multiple_outputs:
            return result
        if self.is_async:
            return self._push_outputs_when_done(index, result)
        return self._sink.push_outputs(index, result)

    async def _push_outputs_when_done(self, index: int, awaitable: Any) -> Any:
        return self._sink.push_outputs(index, await awaitable)
