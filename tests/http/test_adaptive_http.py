"""``concurrency="auto"`` with the HTTP integration against the real HTTP test server with a capacity.

The server answers 503 beyond 4 requests in flight. The client is told not to retry 503 itself, so
that every refusal reaches the adaptive limit: with ``item_retries=0`` no item may fail.
"""

from __future__ import annotations

from collections.abc import Callable

import pendulum
import pytest
from airflow.sdk import DAG, task
from devtools.http_server import HTTPTestServer

import airflow_iterate  # noqa: F401 - adds .iterate() to @task functions
from airflow_iterate.http import HTTPClient, HTTPStatusError, RetryPolicy
from tests.airflow._dagrun import run_dag, task_instances, xcom

START = pendulum.datetime(2025, 1, 1, tz="UTC")
ITEMS = 80


def test_a_503_from_the_client_is_an_overload_signal_with_its_retry_after() -> None:
    from airflow_iterate._core._overload import overload_signal

    def error(status: int, retry_after: float | None = None) -> HTTPStatusError:
        return HTTPStatusError(
            "busy",
            status=status,
            reason="",
            body_start="",
            retry_after=retry_after,
            method="GET",
            url="/",
            conn_id="api",
        )

    assert overload_signal(error(503)) == 0.0
    assert overload_signal(error(429, 2.5)) == 2.5
    assert overload_signal(error(500)) is None and overload_signal(error(404)) is None


@pytest.mark.slow
def test_auto_completes_every_item_against_a_server_with_a_capacity(
    airflow_db: None, make_server: Callable[..., HTTPTestServer], make_connection: Callable[..., str]
) -> None:
    server = make_server(capacity=4)  # beyond 4 requests in flight: 503, no Retry-After
    conn_id = make_connection(server)

    with DAG("http_iterate_auto", schedule=None, start_date=START, catchup=False) as dag:

        @task
        async def fetch(n: int) -> int:
            client = HTTPClient.shared(conn_id, retry=RetryPolicy(statuses=frozenset()))
            await client.get("slow?ms=50")
            return n

        fetch.iterate(n=list(range(ITEMS)), concurrency="auto", max_concurrency=32, item_retries=0)

    dag_run = run_dag(dag)
    assert dag_run.state == "success", task_instances(dag_run)
    assert xcom(dag_run, "fetch") == list(range(ITEMS))  # every item, in order, none lost
    summary = xcom(dag_run, "fetch", key="iterate_summary")
    assert summary["failed"] == 0 and summary["succeeded"] == ITEMS
    statuses = server.stats().statuses
    assert statuses[503] > 0  # the server did refuse: the run backed off and put items back
    assert statuses[200] == ITEMS and summary["overloaded"] == statuses[503]
