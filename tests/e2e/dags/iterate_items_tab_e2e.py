"""DAGs for the Items tab's browser tests (tests/e2e/test_items_tab_e2e.py).

Files under ``$AIRFLOW_HOME/items-tab/`` steer them, created and removed by the tests:

``iterate_items_tab_e2e``: 600 items, 4 at a time, a ledger every 0.3 s. While ``hold`` exists each
item takes 0.25 s (16 items/s: the tab sees the counts rise); once it is gone they finish at once.
Every 97th item fails (tolerated), so the running tab has failures to show.

``iterate_items_tab_failures_e2e``: 2,000 records; while ``broken`` exists the 61 with
``n % 33 == 7`` fail (tolerated), record 7 labelled ``<img src=x onerror=alert(1)>``. Every attempt
appends ``<n> <try>`` to ``effects.log``; a plain task counts the results downstream.

``iterate_items_tab_chunked_e2e``: 200 items in 2 chunks, 4 of them failing (tolerated).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from airflow.sdk import dag, task

import airflow_iterate  # noqa: F401  (adds .iterate to @task functions)

HERE = Path(os.environ["AIRFLOW_HOME"]) / "items-tab"
XSS_LABEL = "<img src=x onerror=alert(1)>"


def record_name(n: int) -> str:
    return XSS_LABEL if n == 7 else f"record-{n:05d}"


@dag(dag_id="iterate_items_tab_e2e", schedule=None, catchup=False, tags=["airflow-iterate-e2e"])
def iterate_items_tab_e2e() -> None:
    @task
    async def fetch(path: str) -> int:
        if (HERE / "hold").exists():
            await asyncio.sleep(0.25)  # a slow partner
        if int(path[len("/in/") : -len(".xml")]) % 97 == 5:
            raise ValueError(f"{path}: not well-formed (line 1, column 0)")
        return len(path)

    fetch.iterate(
        path=[f"/in/{n}.xml" for n in range(600)],
        concurrency=4,
        progress_interval=0.3,
        max_failures=0.1,
        item_label="{path}",
    )


@dag(dag_id="iterate_items_tab_failures_e2e", schedule=None, catchup=False, tags=["airflow-iterate-e2e"])
def iterate_items_tab_failures_e2e() -> None:
    @task
    def load(n: int, name: str, ti: Any = None) -> int:
        HERE.mkdir(exist_ok=True)
        with (HERE / "effects.log").open("a") as log:
            log.write(f"{n} {ti.try_number}\n")
        if n % 33 == 7 and (HERE / "broken").exists():
            raise ConnectionError(f"partner API refused {name}")
        return n * 2

    @task
    def count(results: list[Any]) -> int:
        return sum(1 for result in results if result is not None)

    names = [{"n": n, "name": record_name(n)} for n in range(2_000)]
    loaded = load.iterate_kwargs(
        names, concurrency=16, max_failures=0.05, progress_interval=0.3, item_label="{name}"
    )
    count(loaded)


@dag(dag_id="iterate_items_tab_chunked_e2e", schedule=None, catchup=False, tags=["airflow-iterate-e2e"])
def iterate_items_tab_chunked_e2e() -> None:
    @task
    async def convert(n: int) -> int:
        await asyncio.sleep(0.001)
        if n % 50 == 3:
            raise OSError(f"disk full while writing part {n}")
        return n

    convert.iterate(n=list(range(200)), chunks=2, concurrency=8, max_failures=0.05, item_label="part {n}")


iterate_items_tab_e2e()
iterate_items_tab_failures_e2e()
iterate_items_tab_chunked_e2e()
