"""The input of an iterated task, as a value: one small class per form, as ``.expand()`` has.

* :class:`ProductInput` — ``iterate(a=[...], b=xcom)``: the cross product of named iterables;
* :class:`KwargsInput` — ``iterate_kwargs([{...}, ...])``: one dict of keyword arguments per item;
* :class:`InputWindow` — items ``start..stop`` of either, for one chunk of a split input.

Written in the DAG, a value holds literals and XComArgs (:attr:`~IterateInput.value`). At run time
the operator resolves it (:meth:`~IterateInput.resolve_xcoms`, or by rendering it as a template
field) and then asks it for its length and its items, lazily, as keyword-argument dicts; for a
chunk, it asks for a window. Nothing outside this module knows which form an input has.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk import XComArg

from .._core import IterateInputError, check_iterable, cross_product, kwargs_stream, short_repr
from ._paging import stream, window

__all__ = [
    "DataMarks",
    "InputWindow",
    "ItemSource",
    "IterateInput",
    "KwargsInput",
    "ProductInput",
    "resolve_xcoms",
]


def resolve_xcoms(value: Any, context: Any, resolved: set[int] | None = None) -> Any:
    """Resolve XComArgs anywhere in ``value`` (lists, tuples, dicts), leaving the rest as it is.

    The ids of the values that came from XComs (and of a resolved dict's values) are added to
    ``resolved``: they are data, never to be rendered as templates.
    """
    if isinstance(value, XComArg):
        result = value.resolve(context)
        if resolved is not None:
            resolved.add(id(result))
            if isinstance(result, Mapping):
                resolved.update(id(v) for v in result.values())
        return result
    if isinstance(value, dict):
        return {k: resolve_xcoms(v, context, resolved) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(resolve_xcoms(v, context, resolved) for v in value)
    return value


@dataclass(frozen=True)
class DataMarks:
    """Which argument values of an item came from XComs: data, that an operator must not render.

    As ``.expand()`` does, a template written in the DAG renders per item and a value an upstream
    task returned never does (it may be a file name on a partner's server that looks like Jinja).
    """

    #: arguments whose every value came from an XCom (the DAG gave an XComArg for them)
    names: frozenset[str] = frozenset()
    #: ids of single values resolved from XComs (elements of literal lists and dicts)
    ids: frozenset[int] = frozenset()
    #: every value of every item came from an XCom
    everything: bool = False

    def seen_ids(self, item: Mapping[str, Any]) -> set[int]:
        """The ids, among ``item``'s values, of those that must not be rendered."""
        if self.everything:
            return {id(v) for v in item.values()}
        seen = {id(item[name]) for name in self.names if name in item}
        if self.ids:
            seen.update(id(v) for v in item.values() if id(v) in self.ids)
        return seen


class ItemSource(ABC):
    """What a run needs of its input: a length (if known), the items, a window, an index offset."""

    #: the position of the first item in the whole input (non-zero for a window)
    offset = 0
    #: which item values came from XComs (set when the XComArgs are resolved)
    data_marks = DataMarks()

    @abstractmethod
    def length(self) -> int | None:
        """The number of items, or None when the input cannot tell without being read."""

    @abstractmethod
    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The items' keyword arguments, read lazily (mapped XCom sequences page by page)."""

    @abstractmethod
    def exact_length(self) -> int:
        """The number of items; a clear :class:`IterateInputError` when it cannot be known."""

    @abstractmethod
    def window(self, start: int, stop: int) -> InputWindow:
        """Items ``start..stop`` of this input, reading no more of it than those."""

    @abstractmethod
    def _window_items(self, start: int, stop: int) -> Iterator[dict[str, Any]]: ...


class IterateInput(ItemSource):
    """An input as written in the DAG; after resolution, the same form holding the values."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def with_value(self, value: Any) -> IterateInput:
        """The same form over ``value`` (the rendered or resolved value of this one)."""
        return type(self)(value)

    def resolve_xcoms(self, context: Any) -> IterateInput:
        """XComArgs resolved; everything else (Jinja strings included) left as written.

        The result's :attr:`data_marks` tell which item values came from XComs.
        """
        resolved_ids: set[int] = set()
        resolved = self.with_value(resolve_xcoms(self.value, context, resolved_ids))
        resolved.data_marks = self._data_marks(frozenset(resolved_ids))
        return resolved

    @abstractmethod
    def _data_marks(self, resolved_ids: frozenset[int]) -> DataMarks: ...

    @abstractmethod
    def parts(self) -> dict[str, Any]:
        """The named parts whose lengths multiply to the number of items."""

    @abstractmethod
    def part_length(self, name: str, value: Any) -> int:
        """The length of one resolved part, without reading it; clear errors for a non-list."""

    def exact_length(self) -> int:
        return math.prod(self.part_length(name, value) for name, value in self.parts().items())

    def window(self, start: int, stop: int) -> InputWindow:
        return InputWindow(self, start, stop)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({short_repr(self.value)})"


def _length(name: str, value: Any) -> int:
    check_iterable(name, value)
    try:
        return len(value)
    except TypeError:
        raise IterateInputError(
            f"iterate() argument {name!r} is {type(value).__name__} {short_repr(value)}, whose length is "
            "unknown; chunk_size/chunks need a list, tuple, dict or an upstream task's output"
        ) from None


class ProductInput(IterateInput):
    """``iterate(name=values, ...)``: one item per combination, the last name varying fastest."""

    value: dict[str, Any]

    def parts(self) -> dict[str, Any]:
        return dict(self.value)

    def _data_marks(self, resolved_ids: frozenset[int]) -> DataMarks:
        names = frozenset(name for name, value in self.value.items() if isinstance(value, XComArg))
        return DataMarks(names=names, ids=resolved_ids)

    def part_length(self, name: str, value: Any) -> int:
        return _length(name, value)

    def length(self) -> int | None:
        try:
            return math.prod(len(v) for v in self.value.values())
        except TypeError:
            return None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return cross_product({name: stream(check_iterable(name, v)) for name, v in self.value.items()})

    def _window_items(self, start: int, stop: int) -> Iterator[dict[str, Any]]:
        names = list(self.value)
        first, rest = self.value[names[0]], [self.value[name] for name in names[1:]]
        # The product is row-major: each item of the first argument is one row of `per_row` items.
        per_row = math.prod(len(value) for value in rest)
        if per_row == 0 or start >= stop:
            return iter(())
        first_row = start // per_row
        end_row = -(-stop // per_row)
        named: dict[str, Iterable[Any]] = {names[0]: window(first, first_row, end_row)}
        named.update((name, stream(value)) for name, value in zip(names[1:], rest, strict=True))
        skip = start - first_row * per_row
        return itertools.islice(cross_product(named), skip, skip + (stop - start))


class KwargsInput(IterateInput):
    """``iterate_kwargs(list_of_dicts)``: each element is one item's keyword arguments."""

    def parts(self) -> dict[str, Any]:
        return {"kwargs": self.value}

    def _data_marks(self, resolved_ids: frozenset[int]) -> DataMarks:
        return DataMarks(ids=resolved_ids, everything=isinstance(self.value, XComArg))

    def part_length(self, name: str, value: Any) -> int:
        if isinstance(value, Mapping):
            raise IterateInputError(
                f"iterate_kwargs() argument {name!r} is a dict {short_repr(value)}; expected a list of "
                "dicts, one per item (wrap a single dict in a list)"
            )
        return _length(name, value)

    def length(self) -> int | None:
        try:
            return len(self.value)
        except TypeError:
            return None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return kwargs_stream(stream(self.value), name="kwargs")

    def _window_items(self, start: int, stop: int) -> Iterator[dict[str, Any]]:
        return kwargs_stream(window(self.value, start, stop), name="kwargs")


class InputWindow(ItemSource):
    """Items ``start..stop`` of a resolved input: what one chunk of a split input runs over."""

    def __init__(self, source: IterateInput, start: int, stop: int) -> None:
        total = source.exact_length()
        if stop > total:
            raise IterateInputError(
                f"this chunk holds items {start:,} to {stop - 1:,}, but the input now has {total:,} items: "
                "it changed after the plan task ran; clear the task group to plan again"
            )
        self._source = source
        self.offset = start
        self._stop = stop
        self.data_marks = source.data_marks

    def length(self) -> int:
        return self._stop - self.offset

    def exact_length(self) -> int:
        return self.length()

    def __len__(self) -> int:
        return self.length()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._window_items(self.offset, self._stop)

    def _window_items(self, start: int, stop: int) -> Iterator[dict[str, Any]]:
        return self._source._window_items(start, stop)

    def window(self, start: int, stop: int) -> InputWindow:
        return InputWindow(self._source, self.offset + start, min(self.offset + stop, self._stop))
