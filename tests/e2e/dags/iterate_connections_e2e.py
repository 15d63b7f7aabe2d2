"""DAG for the event-loop safety test: thousands of async items reading one connection at once.

Half the items use the Task SDK's own async accessor, half this package's; both kinds in flight
together is what deadlocks naive sync calls on the loop. (Airflow 3.1's ``Connection.async_get``
does not find connections stored in the metadata DB, so there every item uses this package's.)
"""

from __future__ import annotations

import asyncio

from airflow import __version__ as airflow_version
from airflow.sdk import Connection, dag, task

import airflow_iterate

ITEM_COUNT = 2000
CONN_ID = "iterate_e2e_warehouse"
SDK_ASYNC_WORKS = tuple(int(part) for part in airflow_version.split(".")[:2]) >= (3, 2)


@dag(dag_id="iterate_connections_e2e", schedule=None, catchup=False, tags=["airflow-iterate-e2e"])
def iterate_connections_e2e() -> None:
    @task
    async def read(n: int) -> str:
        if n % 2 or not SDK_ASYNC_WORKS:
            conn = await airflow_iterate.aget_connection(CONN_ID)
        else:
            conn = await Connection.async_get(CONN_ID)
        await asyncio.sleep(0)
        return f"{conn.host}:{conn.port}"

    read.iterate(n=list(range(ITEM_COUNT)), concurrency=256)


iterate_connections_e2e()
