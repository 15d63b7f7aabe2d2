"""A REST API into a warehouse: list a paginated API, fetch every record's detail, load them.

One task walks the API's listing page by page (the ``Link: rel="next"`` header) and keeps only
the record ids. ONE task instance then fetches every record's detail concurrently with
``.iterate()``: async items sharing one pooled HTTP client (a bounded number of keep-alive
connections, the API's 429 answers waited out as its ``Retry-After`` asks, broken connections
retried), started no faster than the API's rate limit, each returning a small row. A last task
loads the rows through an ordinary Airflow connection. The API's credentials and its CA are the
Airflow connection's, never the DAG's.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.sqlite.hooks.sqlite import SqliteHook
from airflow.sdk import dag, task

import airflow_iterate  # noqa: F401  - adds .iterate() to @task functions
from airflow_iterate.http import HTTPClient, LinkHeader, paginate

API_CONN_ID = "demo_api"
WAREHOUSE_CONN_ID = "demo_warehouse"
# The API allows 1,000 requests/s per client. 128 items in flight could send ~3,000/s, and each
# 429 holds every request of the client for its Retry-After (a whole second here): stay below it.
API_RATE_LIMIT = "950/s"


@dag(
    dag_id="api_to_warehouse",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["airflow-iterate-demo"],
)
def api_to_warehouse() -> None:
    @task
    async def list_records() -> list[int]:
        async with HTTPClient(API_CONN_ID) as client:
            return [
                r["id"] async for r in paginate(client, "list/link", LinkHeader(), params={"per_page": 500})
            ]

    @task
    async def fetch_detail(record_id: int) -> list[Any]:
        client = HTTPClient.shared(API_CONN_ID)  # one client for every item of this task run
        detail = await client.get_json(f"records/{record_id}")
        return [detail["id"], detail["name"], detail["amount"], ",".join(detail["tags"]), len(detail["text"])]

    @task
    def load(rows: list[list[Any]]) -> dict[str, int]:
        hook = SqliteHook(sqlite_conn_id=WAREHOUSE_CONN_ID)
        hook.run(
            "CREATE TABLE IF NOT EXISTS api_records (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "amount REAL, tags TEXT, text_length INTEGER)"
        )
        hook.insert_rows(
            "api_records",
            [tuple(row) for row in rows],
            target_fields=["id", "name", "amount", "tags", "text_length"],
            commit_every=1000,
            replace=True,
        )
        return {"rows": len(rows)}

    details = fetch_detail.iterate(
        record_id=list_records(), item_retries=3, item_label="record {record_id}", rate_limit=API_RATE_LIMIT
    )
    load(details)


api_to_warehouse()
