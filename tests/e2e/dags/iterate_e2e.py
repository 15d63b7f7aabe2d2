"""DAG run by the end-to-end test through a real scheduler, dag-processor and API server.

The numbers here are mirrored in ``tests/e2e/test_scheduler_e2e.py``; change both together.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from airflow.sdk import dag, task

import airflow_iterate  # noqa: F401  (adds .iterate to @task functions)

ITEM_COUNT = 2000
FACTOR = 3


@dag(dag_id="iterate_e2e", schedule=None, catchup=False, tags=["airflow-iterate-e2e"])
def iterate_e2e() -> None:
    @task
    def make_items() -> list[int]:
        return list(range(ITEM_COUNT))

    @task
    async def transform(x: int, factor: int) -> int:
        # A real await, so items overlap on the shared event loop instead of running back to back.
        await asyncio.sleep(0.001)
        return x * factor

    @task
    def summarize(values: list[int]) -> dict[str, Any]:
        # The digest covers order as well as content, so a reordered or truncated list is caught.
        digest = hashlib.sha256(json.dumps(values).encode()).hexdigest()
        return {"count": len(values), "sum": sum(values), "sha256": digest}

    summarize(transform.partial(factor=FACTOR).iterate(x=make_items()))


iterate_e2e()
