"""DAG for the Celery end-to-end test: one iterated task in chunks, spread over two workers.

The numbers are mirrored in ``tests/celery/test_chunked_celery_e2e.py``; change both together.

Every chunk runs its first half, then its items wait for a file the test creates (a gate). That
makes the test deterministic: it kills the worker running a chunk while that chunk is exactly
half done, with the first half in the chunk's checkpoint and the rest not started.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from airflow.sdk import dag, task

import airflow_iterate  # noqa: F401  (adds .iterate to @task functions)

ITEM_COUNT = 800
CHUNK_SIZE = 200
GATE = CHUNK_SIZE // 2  # items of a chunk that run before the gate
GATE_TIMEOUT = 150.0
STATE = Path(os.environ["AIRFLOW_HOME"]) / "chunked-celery"


async def wait_for_the_gate() -> None:
    deadline = time.monotonic() + GATE_TIMEOUT
    while not (STATE / "release").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never opened the gate")
        await asyncio.sleep(0.05)


@dag(dag_id="iterate_chunked_celery", schedule=None, catchup=False, tags=["airflow-iterate-e2e"])
def iterate_chunked_celery() -> None:
    @task
    def make_items() -> list[int]:
        return list(range(ITEM_COUNT))

    @task(retries=1, retry_delay=dt.timedelta(seconds=1))
    async def work(n: int, iterate_index: int = -1, ti: Any = None) -> int:
        if iterate_index != n:
            raise ValueError(f"item {n} got iterate_index {iterate_index}")
        if n % CHUNK_SIZE >= GATE:
            await wait_for_the_gate()
        await asyncio.sleep(0.002)  # one remote call
        STATE.mkdir(exist_ok=True)
        # One file per chunk try: only that task process ever appends to it.
        with (STATE / f"effects-{ti.map_index}-{ti.try_number}.log").open("a") as log:
            log.write(f"{n}\n")
        return n * n

    @task
    def summarize(values: list[int]) -> dict[str, Any]:
        digest = hashlib.sha256(json.dumps(list(values)).encode()).hexdigest()
        return {"count": len(values), "sha256": digest}

    summarize(work.iterate(n=make_items(), chunk_size=CHUNK_SIZE, concurrency=4, checkpoint_interval=0.5))


iterate_chunked_celery()
