"""Each item's own view of the task: a context copy, and XComs it pushes kept apart per item.

Every item of an iterated task shares ONE task instance. If items pushed XComs straight to it,
items pushing the same key would overwrite each other. Instead each item sees a task-instance
proxy whose ``xcom_push`` records the value for that item; when the run ends every key is pushed
once, as a list in input order (``None`` for items that did not push it). Everything else on the
proxy (``xcom_pull``, ``try_number``, ``log_url``, ...) is the real task instance.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

#: key under which an item finds its position in the input, in its context and as a parameter
ITERATE_INDEX_KEY = "iterate_index"

#: context keys that hold the task instance
_TI_KEYS = ("ti", "task_instance")


class ItemXComs:
    """XComs pushed by items, by key and item index. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, dict[int, Any]] = {}

    def push(self, index: int, key: str, value: Any) -> None:
        with self._lock:
            self._by_key.setdefault(key, {})[index] = value

    def push_outputs(self, index: int, result: Any) -> Any:
        """Push each key of a ``multiple_outputs`` result, as the task runner does for a task.

        A result that is not a dict with str keys fails the item, with the task runner's words;
        ``None`` pushes nothing. Returns ``result``.
        """
        if result is None:
            return None
        if not isinstance(result, Mapping):
            raise TypeError(
                f"Returned output was type {type(result)} expected dictionary for multiple_outputs"
            )
        for key in result:
            if not isinstance(key, str):
                raise TypeError(
                    "Returned dictionary keys must be strings when using multiple_outputs, found "
                    f"{key} ({type(key)}) instead"
                )
        for key, value in result.items():
            self.push(index, key, value)
        return result

    def of_item(self, index: int) -> dict[str, Any] | None:
        """What one item pushed (for its checkpoint), or None."""
        with self._lock:
            pushed = {key: values[index] for key, values in self._by_key.items() if index in values}
        return pushed or None

    def restore(self, index: int, pushed: Mapping[str, Any]) -> None:
        for key, value in pushed.items():
            self.push(index, key, value)

    def publish(self, ti: Any, start: int, count: int) -> list[str]:
        """Push one XCom per key: the values of items ``start..start+count`` in input order.

        Items are known by their position in the whole input; a chunk starting at ``start``
        pushes the values of its own items only. Returns the keys.
        """
        with self._lock:
            by_key = dict(self._by_key)
        for key, values in sorted(by_key.items()):
            ti.xcom_push(key=key, value=[values.get(i) for i in range(start, start + count)])
        return sorted(by_key)


class ItemTaskInstance:
    """The task instance as one item sees it: its XCom pushes are kept for that item."""

    __slots__ = ("_index", "_sink", "_ti")

    def __init__(self, ti: Any, index: int, sink: ItemXComs) -> None:
        object.__setattr__(self, "_ti", ti)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_sink", sink)

    def xcom_push(self, key: str, value: Any, *args: Any, **kwargs: Any) -> None:
        self._sink.push(self._index, key, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ti, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # e.g. ``ti.task = ...``: an item must not change the task instance the others share
        raise AttributeError(f"an iterated item cannot set {name!r} on the shared task instance")

    def __repr__(self) -> str:
        return f"<item {self._index} of {self._ti!r}>"


def item_context(context: Mapping[str, Any], index: int, sink: ItemXComs, **overrides: Any) -> dict[str, Any]:
    """A shallow copy of ``context`` for item ``index``: its index, its own task-instance view."""
    copy = dict(context)
    copy[ITERATE_INDEX_KEY] = index
    if "ti" in context:
        proxy = ItemTaskInstance(context["ti"], index, sink)
        for key in _TI_KEYS:
            copy[key] = proxy
    copy.update(overrides)
    return copy
