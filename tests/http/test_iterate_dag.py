"""The headline use: a DAG lists a paginated API and fetches every record's detail with ``.iterate()``.

Runs through ``dag.test()`` against a real metadata DB: the connection is read through the Task
SDK from inside a running task, every item of the iterated task shares one client, and the server
counts the connections they used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, task
from devtools.delay_proxy import DelayProxy
from devtools.http_server import HTTPTestServer, record

import airflow_iterate  # noqa: F401 - adds .iterate() to @task functions
from airflow_iterate.http import Cursor, HTTPClient, paginate
from tests.airflow._dagrun import run_dag, task_instances, xcom

from .conftest import RECORDS

START = pendulum.datetime(2025, 1, 1, tz="UTC")


@pytest.mark.slow
def test_iterate_fetches_every_record_over_one_shared_client_with_bounded_connections(
    airflow_db: None,
    http_server: HTTPTestServer,
    make_proxy: Callable[..., DelayProxy],
    make_connection: Callable[..., str],
) -> None:
    proxy = make_proxy(http_server, delay=0.005)  # 10 ms round trips
    conn_id = make_connection(http_server, via=proxy)
    clients: list[HTTPClient] = []

    with DAG("http_iterate_fetch", schedule=None, start_date=START, catchup=False) as dag:

        @task
        async def list_ids() -> list[int]:
            async with HTTPClient(conn_id) as client:
                ids = [
                    r["id"]
                    async for r in paginate(client, "list/cursor", Cursor("meta.next_cursor"), items="data")
                ]
            return [*ids, RECORDS + 1]  # one that does not exist

        @task
        async def fetch(record_id: int) -> dict[str, Any]:
            client = HTTPClient.shared(conn_id, max_connections_per_host=8)
            if not clients:
                clients.append(client)
            detail = await client.get_json(f"records/{record_id}")
            return {"id": detail["id"], "size": len(detail["text"])}

        fetch.iterate(
            record_id=list_ids(), concurrency=64, max_failures=1, item_retries=2, item_label="{record_id}"
        )

    dag_run = run_dag(dag)
    assert dag_run.state == "success", task_instances(dag_run)
    results = xcom(dag_run, "fetch")
    assert len(results) == RECORDS + 1 and results[-1] is None
    assert results[:-1] == [{"id": i, "size": len(record(i)["text"])} for i in range(1, RECORDS + 1)]

    # one task instance, one client for all of its items, closed when the task's loop ended
    assert [t for t in task_instances(dag_run) if t[0] == "fetch"] == [("fetch", -1, "success")]
    (client,) = clients
    assert client.closed and client.statistics().requests == RECORDS + 1

    # the server saw the items' requests on at most 8 connections
    details = http_server.requests("/records/")
    assert len(details) == RECORDS + 1  # the missing record was not retried: a 404 is permanent
    assert len({r.connection for r in details}) <= 8
    assert http_server.stats().connections_peak <= 8 + 1  # (the listing task's one, closed before)

    (failure,) = xcom(dag_run, "fetch", key="iterate_failures")
    assert failure["index"] == RECORDS and failure["input"] == str(RECORDS + 1)
    assert (
        f"/records/{RECORDS + 1} answered 404 Not Found (for item {RECORDS} ({RECORDS + 1}))"
        in failure["error"]
    )
