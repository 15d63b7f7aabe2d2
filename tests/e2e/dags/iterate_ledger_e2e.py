"""DAGs for the item ledger and "rerun failed items" end-to-end tests.

``iterate_ledger_e2e``: 2,000 items of 20 ms each, 8 at a time (about 5 s), a progress interval of
0.3 s: the test reads the ledger through the REST API while the task runs.

``iterate_rerun_e2e``: 10,000 items; while the file ``rerun-effects/broken`` exists under
AIRFLOW_HOME, the 37 items with ``n % 270 == 13`` fail (tolerated). Every attempt of an item
records ``<n> <try>`` in ``rerun-effects/effects.log``, so the test counts what ran in each try.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from airflow.sdk import dag, task

import airflow_iterate  # noqa: F401  (adds .iterate to @task functions)

EFFECTS = Path(os.environ["AIRFLOW_HOME"]) / "rerun-effects"
RERUN_ITEMS = 10_000


@dag(dag_id="iterate_ledger_e2e", schedule=None, catchup=False, tags=["airflow-iterate-e2e"])
def iterate_ledger_e2e() -> None:
    @task
    async def fetch(path: str) -> str:
        await asyncio.sleep(0.02)  # one remote call
        return path.upper()

    fetch.iterate(
        path=[f"/in/{n}.xml" for n in range(2_000)],
        concurrency=8,
        progress_interval=0.3,
        item_label="{path}",
    )


@dag(dag_id="iterate_rerun_e2e", schedule=None, catchup=False, tags=["airflow-iterate-e2e"])
def iterate_rerun_e2e() -> None:
    @task
    def work(n: int, ti: Any = None) -> int:
        EFFECTS.mkdir(exist_ok=True)
        with (EFFECTS / "effects.log").open("a") as log:
            log.write(f"{n} {ti.try_number}\n")
        if n % 270 == 13 and (EFFECTS / "broken").exists():
            raise ConnectionError(f"partner API refused record {n}")
        return n * 3

    work.iterate(n=list(range(RERUN_ITEMS)), concurrency=16, max_failures=0.01)


iterate_ledger_e2e()
iterate_rerun_e2e()
