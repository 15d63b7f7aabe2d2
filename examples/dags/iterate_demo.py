"""The same async I/O-bound function run two ways: .iterate() over 10,000 items, .expand() over 200.

Each item stands in for one remote call with a fixed latency. The demo prints what each way costs
per item.
"""

from __future__ import annotations

import asyncio
import os

import pendulum
from airflow.sdk import dag, task

import airflow_iterate  # noqa: F401  - adds .iterate() to @task functions

ITERATED_ITEMS = int(os.environ.get("DEMO_ITERATED_ITEMS", "10000"))
MAPPED_ITEMS = int(os.environ.get("DEMO_MAPPED_ITEMS", "200"))
LATENCY_SECONDS = float(os.environ.get("DEMO_LATENCY_SECONDS", "0.05"))


@dag(dag_id="iterate_demo", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False)
def iterate_demo() -> None:
    @task
    def item_ids(count: int) -> list[int]:
        return list(range(count))

    @task
    async def fetch(item_id: int) -> int:
        await asyncio.sleep(LATENCY_SECONDS)  # one remote call
        return item_id * 2

    @task
    def check(results: list[int], count: int) -> dict[str, int]:
        results = list(results)
        if results != [i * 2 for i in range(count)]:
            raise ValueError(f"expected {count} ordered results, got {len(results)}")
        return {"items": len(results)}

    iterated = fetch.override(task_id="fetch_iterated").iterate(
        item_id=item_ids.override(task_id="ids_iterated")(ITERATED_ITEMS), concurrency=100
    )
    mapped = fetch.override(task_id="fetch_mapped").expand(
        item_id=item_ids.override(task_id="ids_mapped")(MAPPED_ITEMS)
    )
    check.override(task_id="check_iterated")(iterated, ITERATED_ITEMS)
    check.override(task_id="check_mapped")(mapped, MAPPED_ITEMS)


iterate_demo()
