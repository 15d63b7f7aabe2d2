"""``SomeOperator.partial(...).iterate(...)``: an operator instance per item, in one task instance.

Per item, exactly what a mapped task instance would do, minus the process and the scheduler:
build the operator from the merged arguments, render its templates against the item's own
context copy, then ``execute(context)`` on the thread pool — or ``await aexecute(context)`` on
the shared event loop for async-capable operators.

Arguments here are not templated at the task level: XComArgs in them are resolved once, and
Jinja strings written in the DAG are rendered by each item's operator, once, with that item's
context; an object with template fields of its own is copied for each item first, as if the item
had a process of its own. Values that came from XComs are never rendered (as with ``.expand()``):
they are data.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

from airflow.sdk import BaseOperator, XComArg

from .._core import IterateUsageError
from ._compat import (
    TaskDeferred,
    called_by_task_runner,
    is_async_operator_class,
    render_templates,
    task_params,
)
from ._inputs import DataMarks, ItemSource, resolve_xcoms
from ._item_context import ItemXComs, item_context
from ._operator import IterateOperator
from ._python import is_async_callable, refuse_partial_arguments


def is_async_operator(operator_class: type, static_kwargs: Mapping[str, Any]) -> bool:
    """Whether instances run through ``aexecute`` on the event loop.

    Decided once per task from the class and the fixed arguments, because the engine (event loop
    or threads) is chosen before the first item exists: a PythonOperator is async when its fixed
    ``python_callable`` is, any other operator when the class says ``is_async``.
    """
    if "python_callable" in static_kwargs:
        return is_async_callable(static_kwargs["python_callable"])
    return is_async_operator_class(operator_class)


class OperatorItemInvoker:
    def __init__(
        self, owner: _ClassicIterateOperator, context: Any, sink: ItemXComs, data_marks: DataMarks
    ) -> None:
        self._owner = owner
        self._context = context
        self._sink = sink
        # Resolved once for all items; the values they got from XComs are data, as the items' own.
        resolved: set[int] = set()
        self._kwargs = resolve_xcoms(owner.operator_kwargs, context, resolved)
        self._static_data = frozenset(resolved)
        self._data_marks = data_marks
        self._partial_arguments = dict.fromkeys(owner.partial_arguments)
        self.is_async = is_async_operator(owner.item_operator_class, self._kwargs)
        self._renders_objects = renders_objects_in_place(owner.item_operator_class)

    def _build(self, index: int, item_kwargs: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        owner = self._owner
        refuse_partial_arguments(self._partial_arguments, item_kwargs, "unmappable or already specified")
        params = owner.params
        if "params" in item_kwargs:
            # As a mapped operator does: the item's params update the partial's (a deep copy:
            # updating a key updates its Param object in place, and other items share it).
            item_kwargs = dict(item_kwargs)
            params = copy.deepcopy(params)
            params.update(item_kwargs.pop("params"))
        operator = owner.item_operator_class(
            task_id=owner.task_id,
            dag=owner.dag,
            params=params,
            **self._kwargs,
            **item_kwargs,
            _airflow_from_mapped=True,  # not added to the DAG: this task stands for all of them
        )
        overrides: dict[str, Any] = {"task": operator}
        if params is not owner.params:
            overrides["params"] = task_params(self._context, operator)
        context = item_context(self._context, index, self._sink, **overrides)
        data = set(self._static_data)
        data.update(self._data_marks.seen_ids(item_kwargs))
        for field in operator.template_fields:
            # Rendering changes nested template objects in place: each item renders its own copy.
            value = getattr(operator, field, None)
            copied = _own_copy(value, data, self._renders_objects)
            if copied is not value:
                setattr(operator, field, copied)
        render_templates(operator, context, data)
        return operator, context

    def __call__(self, index: int, item_kwargs: Mapping[str, Any]) -> Any:
        if self.is_async:
            return self._run_async(index, item_kwargs)
        operator, context = self._build(index, item_kwargs)
        try:
            with called_by_task_runner(operator):
                return operator.execute(context)
        except TaskDeferred as exc:
            raise _deferred(operator) from exc

    async def _run_async(self, index: int, item_kwargs: Mapping[str, Any]) -> Any:
        operator, context = self._build(index, item_kwargs)
        try:
            return await operator.aexecute(context)
        except TaskDeferred as exc:
            raise _deferred(operator) from exc


_IMMUTABLE = (str, bytes, int, float, complex, bool, type(None))


def renders_objects_in_place(operator_class: type) -> bool:
    """Whether ``operator_class`` renders objects of its own kinds in place (Kubernetes models, ...).

    Airflow renders an object in place when it has ``template_fields``; an operator that
    overrides ``_render_nested_template_fields`` may render any other object in place too.
    """
    method = getattr(operator_class, "_render_nested_template_fields", None)
    return method is not getattr(BaseOperator, "_render_nested_template_fields", None)


def _own_copy(value: Any, data: set[int], any_object: bool) -> Any:
    """One item's copy of a template field's value, sharing nothing that rendering changes in place.

    Strings and containers render into new ones, but an object with ``template_fields`` of its
    own (with ``any_object``: any object) renders in place: shared, every item after the first
    would see the first item's values. Such objects are deep-copied, and the containers holding
    them rebuilt; anything else is returned as it is, and so are values that came from XComs
    (``data``), which are never rendered. An object that cannot be copied stays shared.
    """
    if isinstance(value, _IMMUTABLE) or id(value) in data:
        return value
    if type(value) is dict:
        pairs = [(key, _own_copy(element, data, any_object)) for key, element in value.items()]
        if all(copied is value[key] for key, copied in pairs):
            return value
        return dict(pairs)
    if type(value) in (list, tuple, set):
        elements = [_own_copy(element, data, any_object) for element in value]
        if all(copied is element for copied, element in zip(elements, value, strict=True)):
            return value
        return type(value)(elements)
    if not (any_object or hasattr(value, "template_fields")):
        return value
    try:
        return copy.deepcopy(value)
    except Exception:
        return value


def _deferred(operator: Any) -> IterateUsageError:
    return IterateUsageError(
        f"{type(operator).__name__} deferred to the triggerer, which an iterated item cannot do; "
        "pass deferrable=False in .partial(...) (iterate already runs items concurrently on the worker)"
    )


class _ClassicIterateOperator(IterateOperator):
    """Iterates an operator class: one instance per item, from the partial and item arguments."""

    template_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        item_operator_class: type,
        operator_kwargs: Mapping[str, Any],
        partial_arguments: Collection[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.item_operator_class = item_operator_class
        self.operator_kwargs = dict(operator_kwargs)
        #: every argument .partial() holds (task-level ones and defaults too): an item may not repeat one
        self.partial_arguments = sorted(partial_arguments)
        # Not template fields (items render their own templates), so upstreams are set here.
        XComArg.apply_upstream_relationship(self, self.operator_kwargs)
        XComArg.apply_upstream_relationship(self, self.iterate_input)

    def _resolved_input(self, context: Any) -> ItemSource:
        return self.input.resolve_xcoms(context)

    def _make_invoker(self, context: Any, sink: ItemXComs, items: ItemSource) -> OperatorItemInvoker:
        return OperatorItemInvoker(self, context, sink, items.data_marks)

    def _target_name(self) -> str:
        return f"{self.item_operator_class.__name__} instances"
