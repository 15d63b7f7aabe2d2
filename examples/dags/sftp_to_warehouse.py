"""The headline job: download every XML file from an SFTP server and load its records into a warehouse.

One task lists the remote tree, ONE task instance downloads and parses every file concurrently
with ``.iterate()`` (async items sharing one multiplexed SFTP pool, a retry per file for flaky
links), and a last task loads the rows through an ordinary Airflow connection.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from typing import Any

import pendulum
from airflow.providers.sqlite.hooks.sqlite import SqliteHook
from airflow.sdk import dag, task

import airflow_iterate  # noqa: F401  - adds .iterate() to @task functions
from airflow_iterate.sftp import SFTPPool, download_bytes, list_files

SFTP_CONN_ID = "demo_sftp"
WAREHOUSE_CONN_ID = "demo_warehouse"
REMOTE_ROOT = os.environ.get("DEMO_REMOTE_ROOT", "/srv/sftp/incoming")


@dag(
    dag_id="sftp_to_warehouse",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["airflow-iterate-demo"],
)
def sftp_to_warehouse() -> None:
    @task
    async def list_remote() -> list[str]:
        async with SFTPPool(SFTP_CONN_ID) as pool:
            files = await list_files(pool, REMOTE_ROOT)
        return sorted(f.path for f in files if f.path.endswith(".xml"))

    @task
    async def fetch_and_parse(path: str) -> list[list[Any]]:
        pool = SFTPPool.shared(SFTP_CONN_ID)  # one pool for every item of this task run
        document = ElementTree.fromstring(await download_bytes(pool, path))
        return [
            [path, record.get("id"), float(record.findtext("amount", "0"))]
            for record in document.iter("record")
        ]

    @task
    def load(batches: list[list[list[Any]]]) -> dict[str, int]:
        hook = SqliteHook(sqlite_conn_id=WAREHOUSE_CONN_ID)
        hook.run(
            "CREATE TABLE IF NOT EXISTS records "
            "(file TEXT NOT NULL, record_id TEXT NOT NULL, amount REAL, PRIMARY KEY (file, record_id))"
        )
        rows = [tuple(row) for batch in batches for row in batch]
        hook.insert_rows("records", rows, target_fields=["file", "record_id", "amount"], commit_every=5000)
        return {"files": len(batches), "rows": len(rows)}

    paths = list_remote()
    load(fetch_and_parse.iterate(path=paths, item_retries=3, item_retry_delay=0.5))


sftp_to_warehouse()
