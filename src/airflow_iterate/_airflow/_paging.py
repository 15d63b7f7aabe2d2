"""Reading resolved inputs lazily: mapped XCom sequences a page at a time, and windows of any input.

Iterating Airflow's ``LazyXComSequence`` (the output of a mapped task) costs one API round-trip
per element. Here it is read a page at a time, by a background thread that keeps a couple of
pages ahead, so the first item starts after one page and the event loop never waits on the Task
SDK. A window (items ``start..stop``, for one chunk of a split input) reads only its own pages,
also through the parts of a ``.map()`` / ``.zip()`` / ``.concat()`` result.
"""

from __future__ import annotations

import contextvars
import itertools
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ._compat import is_lazy_xcom_sequence, xcom_result_parts

__all__ = ["PAGE_SIZE", "stream", "window"]

PAGE_SIZE = 1000
PAGES_AHEAD = 2

_DONE = object()


def stream(value: Any) -> Any:
    """``value`` itself, or a prefetching page-by-page iterator when it is a lazy XCom sequence."""
    if is_lazy_xcom_sequence(value):
        return _prefetched(_pages(value, 0, None))
    return value


def window(value: Any, start: int, stop: int) -> Iterable[Any]:
    """Items ``start..stop`` of ``value`` (iterable more than once), reading no more of it than needed.

    A dict yields ``(key, value)`` pairs, as iterate() (and ``.expand()``) iterate it.
    """
    if start >= stop:
        return []
    if isinstance(value, (list, tuple)):
        return value[start:stop]
    if isinstance(value, Mapping):
        return list(itertools.islice(value.items(), start, stop))
    if is_lazy_xcom_sequence(value):
        return _Window(value, start, min(stop, len(value)))
    windowed = _window_xcom_result(value, start, stop)
    if windowed is not None:
        return windowed
    if isinstance(value, Sequence):
        return [value[i] for i in range(start, min(stop, len(value)))]
    return list(itertools.islice(value, start, stop))


def _pages(sequence: Sequence[Any], start: int, stop: int | None) -> Iterator[list[Any]]:
    while stop is None or start < stop:
        end = start + PAGE_SIZE if stop is None else min(start + PAGE_SIZE, stop)
        page = list(sequence[start:end])
        if not page:
            return
        yield page
        start += len(page)


def _prefetched(pages: Iterable[list[Any]]) -> Iterator[Any]:
    buffer: queue.Queue[Any] = queue.Queue(maxsize=PAGES_AHEAD)

    def produce() -> None:
        try:
            for page in pages:
                buffer.put(page)
        except BaseException as exc:  # handed to the consumer, which raises it as an input error
            buffer.put(exc)
        else:
            buffer.put(_DONE)

    # daemon: if the run stops early, nothing waits for the rest of the input
    threading.Thread(
        target=contextvars.copy_context().run, args=(produce,), name="iterate-input", daemon=True
    ).start()
    while True:
        page = buffer.get()
        if page is _DONE:
            return
        if isinstance(page, BaseException):
            raise page
        yield from page


class _Window:
    """Items ``start..stop`` of a lazy XCom sequence, fetched one page (one request) at a time."""

    def __init__(self, sequence: Sequence[Any], start: int, stop: int) -> None:
        self._sequence = sequence
        self._start = start
        self._stop = stop

    def __len__(self) -> int:
        return self._stop - self._start

    def __iter__(self) -> Iterator[Any]:
        return _prefetched(_pages(self._sequence, self._start, self._stop))


class _Mapped:
    """The window of an ``XComArg.map()`` result: the window of its input, then the functions."""

    def __init__(self, values: Iterable[Any], callables: Sequence[Any]) -> None:
        self._values = values
        self._callables = callables

    def __iter__(self) -> Iterator[Any]:
        for value in self._values:
            for function in self._callables:
                value = function(value)
            yield value


class _Zipped:
    def __init__(self, parts: list[Iterable[Any]], fillvalue: Any, longest: bool) -> None:
        self._parts = parts
        self._fillvalue = fillvalue
        self._longest = longest

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        if self._longest:
            return itertools.zip_longest(*self._parts, fillvalue=self._fillvalue)
        return zip(*self._parts, strict=False)  # shortest, as the Task SDK zips


class _Chained:
    def __init__(self, parts: list[Iterable[Any]]) -> None:
        self._parts = parts

    def __iter__(self) -> Iterator[Any]:
        return itertools.chain.from_iterable(self._parts)


def _window_xcom_result(value: Any, start: int, stop: int) -> Iterable[Any] | None:
    """The window of a resolved ``.map()``/``.zip()``/``.concat()`` result, through its parts.

    Indexing one reads its parts one element (one request) at a time. A dict part is left to that
    (None is returned): there its semantics differ from iterating over the dict.
    """
    found = xcom_result_parts(value)
    if found is None or any(isinstance(part, Mapping) for part in found[1]):
        return None
    kind, parts, longest = found
    if kind == "map":
        return _Mapped(window(parts[0], start, stop), value.callables)
    if kind == "zip":
        windows = [window(part, start, min(stop, len(part))) for part in parts]
        return _Zipped(windows, value.fillvalue, longest)
    pieces: list[Iterable[Any]] = []
    offset = 0
    for part in parts:
        length = len(part)
        lo, hi = max(start - offset, 0), min(stop - offset, length)
        if lo < hi:
            pieces.append(window(part, lo, hi))
        offset += length
    return _Chained(pieces)
