"""The headline job: download every XML file from an SFTP server and load its records into a warehouse.

One task lists the remote tree, ONE task instance downloads and parses every file concurrently
with ``.iterate()`` (async items sharing one multiplexed SFTP pool, retries per file for flaky
links) and stages each file's rows in object storage, and a last task loads the staged rows through
an ordinary Airflow connection. Only small references travel as XComs, whatever the file count.
"""

from __future__ import annotations

import asyncio
import json
import os
import xml.etree.ElementTree as ElementTree
from typing import Any

import pendulum
from airflow.providers.sqlite.hooks.sqlite import SqliteHook
from airflow.sdk import ObjectStoragePath, dag, task

import airflow_iterate  # noqa: F401  - adds .iterate() to @task functions
from airflow_iterate.sftp import SFTPPool, download_bytes, list_files

SFTP_CONN_ID = "demo_sftp"
WAREHOUSE_CONN_ID = "demo_warehouse"
REMOTE_ROOT = os.environ.get("DEMO_REMOTE_ROOT", "/srv/sftp/incoming")
STAGING = os.environ.get("DEMO_STAGING", "file:///tmp/sftp-to-warehouse-staging/")


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
    async def fetch_and_parse(path: str, run_id: str | None = None) -> dict[str, Any]:
        pool = SFTPPool.shared(SFTP_CONN_ID)  # one pool for every item of this task run
        data = await download_bytes(pool, path)
        staged = ObjectStoragePath(STAGING) / str(run_id).replace(":", "_") / (path.strip("/") + ".json")
        # Parsing is CPU work and the object store client is synchronous: both off the event loop,
        # which keeps the other downloads moving meanwhile.
        rows = await asyncio.to_thread(_parse_and_stage, path, data, staged)
        return {"staged": str(staged), "rows": rows}

    @task
    def load(staged: list[dict[str, Any]]) -> dict[str, int]:
        hook = SqliteHook(sqlite_conn_id=WAREHOUSE_CONN_ID)
        hook.run(
            "CREATE TABLE IF NOT EXISTS records "
            "(file TEXT NOT NULL, record_id TEXT NOT NULL, amount REAL, PRIMARY KEY (file, record_id))"
        )
        loaded = 0
        for start in range(0, len(staged), 500):
            rows = [
                tuple(row)
                for batch in staged[start : start + 500]
                for row in json.loads(ObjectStoragePath(batch["staged"]).read_text())
            ]
            hook.insert_rows("records", rows, target_fields=["file", "record_id", "amount"], commit_every=0)
            loaded += len(rows)
        return {"files": len(staged), "rows": loaded}

    paths = list_remote()
    load(fetch_and_parse.iterate(path=paths, item_retries=3, item_retry_delay=0.5))


# Directories already made by this process: a mkdir costs ~15 times the write of a small file
# through ObjectStoragePath, and thousands of files share a few directories.
_made_directories: set[str] = set()


def _parse_and_stage(path: str, data: bytes, staged: ObjectStoragePath) -> int:
    document = ElementTree.fromstring(data)
    rows = [
        [path, record.get("id"), float(record.findtext("amount", "0"))] for record in document.iter("record")
    ]
    parent = staged.parent
    if str(parent) not in _made_directories:
        parent.mkdir(parents=True, exist_ok=True)
        _made_directories.add(str(parent))
    staged.write_text(json.dumps(rows))
    return len(rows)


sftp_to_warehouse()
