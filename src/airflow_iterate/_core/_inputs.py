"""Turning iterate() arguments into one lazy stream of per-item keyword arguments."""

from __future__ import annotations

import itertools
import reprlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ._errors import IterateInputError

__all__ = ["check_iterable", "cross_product", "kwargs_stream", "short_repr"]

_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 4
_repr.maxlevel = 2


def short_repr(value: Any) -> str:
    """A repr short enough for a log line or an error message, whatever the value's size."""
    try:
        return _repr.repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        return f"<{type(value).__name__} with a failing repr>"


def _describe_type(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def check_iterable(name: str, value: Any, *, source: str = "") -> Iterable[Any]:
    """Return ``value`` if it can be iterated over item by item, else raise a clear error.

    Strings and bytes are refused: iterating one character at a time is never what was meant.
    """
    where = f" ({source})" if source else ""
    if value is None or isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Iterable):
        raise IterateInputError(
            f"iterate() argument {name!r}{where} is {_describe_type(value)} {short_repr(value)}; "
            "expected a list (or tuple, dict, or other iterable) of items. "
            "If it comes from an upstream task, make that task return a list."
        )
    return value


def _pairs_if_mapping(value: Iterable[Any]) -> Iterable[Any]:
    # Same as .expand(): a dict is iterated as its (key, value) pairs.
    if isinstance(value, Mapping):
        return value.items()
    return value


def cross_product(named: Mapping[str, Iterable[Any]]) -> Iterator[dict[str, Any]]:
    """Yield one kwargs dict per combination, the last argument varying fastest (as .expand() does).

    The first argument is consumed lazily, so a single large (or streamed) input starts producing
    items before it has been read completely; the others are read once up front, because every
    value of the first is combined with all of theirs.
    """
    if not named:
        return
    names = list(named)
    first = _pairs_if_mapping(named[names[0]])
    if len(names) == 1:
        key = names[0]
        for value in first:
            yield {key: value}
        return
    rest_names = names[1:]
    rest = [list(_pairs_if_mapping(named[n])) for n in rest_names]
    if any(not values for values in rest):
        return
    for head in first:
        for tail in itertools.product(*rest):
            item = {names[0]: head}
            item.update(zip(rest_names, tail, strict=True))
            yield item


def kwargs_stream(value: Any, *, name: str = "kwargs") -> Iterator[dict[str, Any]]:
    """Yield each mapping of an iterate_kwargs() input, checking every element is a str-keyed dict."""
    if isinstance(value, Mapping):
        raise IterateInputError(
            f"iterate_kwargs() argument {name!r} is a dict {short_repr(value)}; expected a list of dicts, "
            "one per item (wrap a single dict in a list)"
        )
    check_iterable(name, value)
    for index, element in enumerate(value):
        if not isinstance(element, Mapping):
            raise IterateInputError(
                f"iterate_kwargs() argument {name!r}: element {index} is {_describe_type(element)} "
                f"{short_repr(element)}; every element must be a dict of keyword arguments"
            )
        for key in element:
            if not isinstance(key, str):
                raise IterateInputError(
                    f"iterate_kwargs() argument {name!r}: element {index} has key {key!r} of type "
                    f"{_describe_type(key)}; keys must be argument names (str)"
                )
        yield dict(element)
