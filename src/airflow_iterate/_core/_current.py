"""Which item the running code belongs to, for integrations' error messages.

The runner sets it in each worker before calling an item (every worker is an asyncio task or a
thread of its own, with its own context, and code the item starts inherits it: tasks it creates,
``asyncio.to_thread``). An integration's error can then name the item it happened in without
being told: ``GET https://... answered 404 Not Found (item 7 '/records/7')``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

__all__ = ["CURRENT_ITEM", "current_item"]

#: (position in the input, the item, how the run describes items) while an item runs
CURRENT_ITEM: contextvars.ContextVar[tuple[int, Any, Callable[[Any], str]] | None] = contextvars.ContextVar(
    "airflow_iterate_current_item", default=None
)


def current_item() -> str | None:
    """``"item 7 ('/records/7')"`` for the item running in this context, ``None`` outside items.

    The description is the run's own (the Airflow layer's ``item_label``, secrets masked), built
    only when asked: call it when an error is made, not per request.
    """
    entry = CURRENT_ITEM.get()
    if entry is None:
        return None
    position, item, describe = entry
    try:
        label = describe(item)
    except Exception:  # a label is a courtesy: never an error of its own
        return f"item {position}"
    return f"item {position} ({label})"
