"""What an async item needs from Airflow, without blocking the event loop or deadlocking it.

The Task SDK's sync calls (``Connection.get``, ``Variable.get``, ``ti.xcom_pull``, ...) block the
thread that makes them until the supervisor answers; on the loop thread that stalls every item,
and while another item's async SDK call holds the channel it raises ``DeadlockImminentError``.
These accessors make the sync call on ONE dedicated thread (so calls never overlap, whatever the
comms implementation) and await it. Connections and variables are fetched once per key per run
and shared by every item asking for them ("single flight"): 10,000 items reading one connection
cost one round-trip.
"""

from __future__ import annotations

import asyncio
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iterate-sdk")
_MISSING = object()

# One cache per event loop, i.e. per iterated run: values never outlive the task.
_caches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Future[Any]]] = (
    weakref.WeakKeyDictionary()
)


async def _off_loop(function: Any, *args: Any, **kwargs: Any) -> Any:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, lambda: function(*args, **kwargs))


async def _single_flight(kind: str, key: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    loop = asyncio.get_running_loop()
    cache = _caches.setdefault(loop, {})
    future = cache.get((kind, key))
    if future is None:
        future = loop.create_future()
        cache[(kind, key)] = future
        try:
            future.set_result(await _off_loop(function, *args, **kwargs))
        except BaseException as exc:
            del cache[(kind, key)]  # a failure is not cached: the next caller tries again
            future.set_exception(exc)
            future.exception()  # mark retrieved: the raise below reports it
            raise
    return await asyncio.shield(future)


async def aget_connection(conn_id: str) -> Any:
    """``Connection.get(conn_id)`` for async items: awaited, fetched once per run and shared."""
    from airflow.sdk import Connection

    return await _single_flight("connection", conn_id, Connection.get, conn_id)


async def aget_variable(key: str, default: Any = _MISSING, *, deserialize_json: bool = False) -> Any:
    """``Variable.get(key)`` for async items: awaited, fetched once per run and shared."""
    from airflow.sdk import Variable

    kwargs: dict[str, Any] = {"deserialize_json": deserialize_json}
    if default is not _MISSING:
        kwargs["default"] = default
    return await _single_flight(f"variable:{deserialize_json}:{default!r}", key, Variable.get, key, **kwargs)


async def axcom_pull(context: Any, **kwargs: Any) -> Any:
    """``context["ti"].xcom_pull(**kwargs)`` for async items, off the loop (not cached)."""
    return await _off_loop(context["ti"].xcom_pull, **kwargs)
