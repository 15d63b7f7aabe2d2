"""Reading a lazy XCom sequence (the output of a mapped task) as a stream of pages.

Iterating Airflow's ``LazyXComSequence`` costs one API round-trip per element. Here it is read a
page at a time, by a background thread that keeps a couple of pages ahead, so the first item
starts after one page and the event loop never waits on the Task SDK.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

PAGE_SIZE = 1000
PAGES_AHEAD = 2

_DONE = object()


def is_lazy_xcom_sequence(value: Any) -> bool:
    try:
        from airflow.sdk.execution_time.lazy_sequence import LazyXComSequence
    except ImportError:  # pragma: no cover - older Task SDKs
        return False
    return isinstance(value, LazyXComSequence)


def stream(value: Any) -> Any:
    """``value`` itself, or a prefetching page-by-page iterator when it is a lazy XCom sequence."""
    if is_lazy_xcom_sequence(value):
        return _prefetched(_pages(value, PAGE_SIZE))
    return value


def _pages(sequence: Sequence[Any], size: int) -> Iterator[list[Any]]:
    start = 0
    while True:
        page = list(sequence[start : start + size])
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
