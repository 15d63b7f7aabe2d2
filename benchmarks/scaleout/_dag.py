"""The scale-out benchmark's DAGs: one SFTP download job, chunked or not, on one worker or two.

Copied into the deployment's DAG folder next to ``settings.json`` (the manifest of remote paths,
how many to read, the connection id). Only worker-a consumes the ``solo`` queue; both consume
``default``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pendulum
from airflow.sdk import DAG, task

import airflow_iterate  # noqa: F401  (adds .iterate to @task functions)
from airflow_iterate.sftp import SFTPPool, download_bytes

SETTINGS = json.loads((Path(__file__).with_name("settings.json")).read_text())
#: dag id -> (queue, iterate options)
VARIANTS: dict[str, tuple[str, dict[str, int]]] = {
    "scaleout_one_task": ("solo", {}),
    "scaleout_chunks_one_worker": ("solo", {"chunks": 2}),
    "scaleout_chunks_two_workers": ("default", {"chunks": 2}),
}


@task
def list_paths() -> list[str]:
    paths: list[str] = json.loads(Path(SETTINGS["manifest"]).read_text())["paths"]
    return paths[: SETTINGS["count"]]


@task
async def fetch(path: str, conn_id: str) -> int:
    pool = SFTPPool.shared(conn_id)
    return len(await download_bytes(pool, path))


@task
def total(sizes: list[int]) -> dict[str, int]:
    return {"files": len(sizes), "bytes": sum(sizes)}


for dag_id, (queue, options) in VARIANTS.items():
    with DAG(
        dag_id,
        schedule=None,
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        default_args={"queue": queue},
        tags=["airflow-iterate-benchmark"],
    ):
        total(fetch.partial(conn_id=SETTINGS["conn_id"]).iterate(path=list_paths(), **options))
