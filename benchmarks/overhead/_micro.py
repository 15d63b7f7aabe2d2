"""In-process timings of no-op items: the raw floors, the core engine and the Airflow layer.

Every case runs exactly one user-level no-op per item; what differs is the machinery around it.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow_iterate._airflow._item_context import ItemXComs
from airflow_iterate._airflow._python import ItemInvoker
from airflow_iterate._core import ItemRunner, RunOptions, cross_product
from airflow_iterate._core._ledger import Ledger

from ._config import ASYNC_CONCURRENCY, SYNC_THREADS, Sizes
from ._timing import Timing, time_interleaved

# The keys of a task context as Airflow 3.3 hands it to execute() (read from a dag.test() run).
CONTEXT_KEYS = (
    "conn",
    "dag",
    "dag_run",
    "data_interval_end",
    "data_interval_start",
    "ds",
    "ds_nodash",
    "inlet_events",
    "inlets",
    "logical_date",
    "macros",
    "map_index_template",
    "outlet_events",
    "outlets",
    "params",
    "partition_date",
    "partition_key",
    "prev_data_interval_end_success",
    "prev_data_interval_start_success",
    "prev_end_date_success",
    "prev_start_date_success",
    "run_id",
    "task",
    "task_instance",
    "task_instance_key_str",
    "task_reschedule_count",
    "task_state_store",
    "ti",
    "triggering_asset_events",
    "ts",
    "ts_nodash",
    "ts_nodash_with_tz",
    "var",
)


def realistic_context() -> dict[str, Any]:
    now = datetime.datetime.now(datetime.timezone.utc)
    values: dict[str, Any] = {key: object() for key in CONTEXT_KEYS}
    values.update(
        ds=now.strftime("%Y-%m-%d"),
        ds_nodash=now.strftime("%Y%m%d"),
        logical_date=now,
        data_interval_start=now,
        data_interval_end=now,
        run_id=f"manual__{now.isoformat()}",
        ts=now.isoformat(),
        params={},
        inlets=[],
        outlets=[],
    )
    # A copy, as the context execute() receives is its own dict.
    return dict(values)


# -- the user's no-op functions ---------------------------------------------------------------


async def noop(x: Any) -> Any:
    return x


async def noop_yield(x: Any) -> Any:
    # One trip through the event loop, like any item that waits for I/O.
    await asyncio.sleep(0)
    return x


def noop_sync(x: Any) -> Any:
    return x


async def noop_with_context(x: Any, **context: Any) -> Any:
    # **context makes ItemInvoker copy the whole task context for every item.
    return x


# -- raw floors: the textbook way, no airflow_iterate involved ---------------------------------


def gather_floor(function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    async def main() -> list[Any]:
        semaphore = asyncio.Semaphore(ASYNC_CONCURRENCY)

        async def bounded(x: Any) -> Any:
            async with semaphore:
                return await function(x)

        return await asyncio.gather(*(bounded(x) for x in items))

    return asyncio.run(main())


def thread_pool_floor(function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    with ThreadPoolExecutor(SYNC_THREADS) as pool:
        return list(pool.map(function, items))


# -- the core engine: call(index, item) straight from the runner --------------------------------


def core(function: Callable[[Any], Any], items: Iterable[Any], *, is_async: bool) -> list[Any]:
    # Adapting function(x) to call(index, item) costs a lambda frame per item, the same price the
    # floor pays for its semaphore wrapper.
    runner: ItemRunner[Any, Any] = ItemRunner(
        lambda _index, item: function(item),
        RunOptions(concurrency=ASYNC_CONCURRENCY if is_async else SYNC_THREADS),
        is_async=is_async,
    )
    return runner.run(items)


# -- the core with what a task run may have on: labels and the item ledger, a timeout per attempt --


class _NoStore:
    """Where a benchmark's item ledger goes: nowhere (it is written per interval, not per item)."""

    def put(self, name: str, value: Any) -> None:
        pass


def core_with_ledger(function: Callable[[Any], Any], items: Iterable[Any], *, is_async: bool) -> list[Any]:
    """:func:`core` keeping the items in flight for an item ledger, with labels, as every task run does."""
    runner: ItemRunner[Any, Any] = ItemRunner(
        lambda _index, item: function(item),
        RunOptions(concurrency=ASYNC_CONCURRENCY if is_async else SYNC_THREADS),
        is_async=is_async,
        describe=lambda item: f"item {item}",
        ledger=Ledger(_NoStore()),
    )
    return runner.run(items)


def core_with_timeout(function: Callable[[Any], Any], items: Iterable[Any], *, is_async: bool) -> list[Any]:
    """:func:`core` with ``item_timeout`` (never reached)."""
    runner: ItemRunner[Any, Any] = ItemRunner(
        lambda _index, item: function(item),
        RunOptions(concurrency=ASYNC_CONCURRENCY if is_async else SYNC_THREADS, item_timeout=3600.0),
        is_async=is_async,
    )
    return runner.run(items)


# -- the Airflow layer: the per-item path of IterateOperator.execute() ---------------------------
# Without what needs a live task instance (checkpoints in the task state store, progress reports);
# the dag.test() measurements include those.


def airflow_layer(function: Callable[..., Any], items: list[Any], context: dict[str, Any]) -> list[Any]:
    # The sink collects what items push to XCom; execute() publishes it after the run.
    invoker = ItemInvoker(function, {}, context, ItemXComs())
    runner: ItemRunner[dict[str, Any], Any] = ItemRunner(
        invoker,
        RunOptions(concurrency=ASYNC_CONCURRENCY if invoker.is_async else SYNC_THREADS),
        is_async=invoker.is_async,
    )
    # execute() iterates over cross_product() of its named inputs: one {"x": item} dict per item.
    return runner.run(cross_product({"x": items}))


def measure(sizes: Sizes) -> dict[str, Timing]:
    async_items = list(range(sizes.async_items))
    sync_items = list(range(sizes.sync_items))
    context = realistic_context()
    n_async, n_sync = len(async_items), len(sync_items)
    cases: dict[str, tuple[int, Callable[[], int]]] = {
        "floor_async": (n_async, lambda: len(gather_floor(noop, async_items))),
        "floor_async_yield": (n_async, lambda: len(gather_floor(noop_yield, async_items))),
        "floor_sync": (n_sync, lambda: len(thread_pool_floor(noop_sync, sync_items))),
        "core_async": (n_async, lambda: len(core(noop, async_items, is_async=True))),
        "core_async_yield": (n_async, lambda: len(core(noop_yield, async_items, is_async=True))),
        "core_sync": (n_sync, lambda: len(core(noop_sync, sync_items, is_async=False))),
        "core_async_ledger": (n_async, lambda: len(core_with_ledger(noop, async_items, is_async=True))),
        "core_sync_ledger": (n_sync, lambda: len(core_with_ledger(noop_sync, sync_items, is_async=False))),
        "core_async_timeout": (n_async, lambda: len(core_with_timeout(noop, async_items, is_async=True))),
        "core_sync_timeout": (n_sync, lambda: len(core_with_timeout(noop_sync, sync_items, is_async=False))),
        "layer_async": (n_async, lambda: len(airflow_layer(noop, async_items, context))),
        "layer_async_context": (n_async, lambda: len(airflow_layer(noop_with_context, async_items, context))),
        "layer_sync": (n_sync, lambda: len(airflow_layer(noop_sync, sync_items, context))),
    }
    return time_interleaved(cases, sizes.repeats)
