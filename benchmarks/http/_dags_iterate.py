"""The deployment's DAGs that use this package: row 5 and the listing through its helper.

Copied into the benchmark deployment's dags folder next to ``settings.json`` (see
``_dags_provider.py``, the other rows' file). Each detail item parses the record's JSON and
returns its size in bytes; the listing returns the ids it read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pendulum
from airflow.sdk import DAG, task

import airflow_iterate  # noqa: F401  - adds .iterate() to @task functions
from airflow_iterate.http import HTTPClient, PageNumber, paginate

SETTINGS = json.loads(Path(__file__).with_name("settings.json").read_text())
START = pendulum.datetime(2024, 1, 1, tz="UTC")


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False)


# -- row 5: .iterate() with the package's client ------------------------------------------------


@task
def record_ids(count: int) -> list[int]:
    return list(range(1, count + 1))


@task
async def fetch(record_id: int, conn_id: str) -> int:
    client = HTTPClient.shared(conn_id)
    response = await client.get(f"records/{record_id}")
    response.json()
    return len(response.content)


if (spec := SETTINGS["dags"].get("http_iterate")) is not None:
    with _dag("http_iterate") as http_iterate:
        fetch.partial(conn_id=spec["conn_id"]).iterate(record_id=record_ids(spec["calls"]))


# -- the paginated listing through the package's helper ------------------------------------------


@task
async def list_pages(conn_id: str, pages: int, page_size: int) -> list[int]:
    style = PageNumber(per_page=page_size, total_pages="total_pages")
    async with HTTPClient(conn_id) as client:
        listing = paginate(client, "list/page", style, items="results", max_pages=pages)
        return [item["id"] async for item in listing]


if (spec := SETTINGS["dags"].get("http_pages_iterate")) is not None:
    with _dag("http_pages_iterate") as http_pages_iterate:
        list_pages(spec["conn_id"], spec["pages"], spec["page_size"])
