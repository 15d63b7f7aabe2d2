"""Subprocess entry point for row 5: ``.iterate()`` + ``airflow_iterate.http`` in a real task instance.

``python -m benchmarks.http._dagtest --conn-id ID --count N [--per-host C | --raw-in-task C]
--dag-id ID --dags-folder DIR --json-out FILE``

The DAG is what a user writes without tuning: a task returns the record ids, then one
``async def`` item per id gets ``HTTPClient.shared(conn_id)``, GETs the record's detail and parses
it (``--per-host`` sets the client's ``max_connections_per_host``: the variant). dag.test() runs
the task instances in this process against the metadata DB the environment names (the
benchmark's PostgreSQL), so this process's CPU time from the end of the listing task to the end
of the DAG run is what the calling task instance cost, its start, checkpoints and XCom push
included. ``--raw-in-task`` runs row 6's raw aiohttp code in one ``@task async def`` instead, in
the same DAG: what a task instance costs around the same calls, without ``.iterate()``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from pathlib import Path
from typing import Any

import pendulum
from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
from airflow.models.taskinstance import TaskInstance
from airflow.sdk import DAG, task
from airflow.utils.session import create_session

from airflow_iterate import IterateOperator  # importing the package gives @task functions .iterate()
from airflow_iterate.http import HTTPClient
from benchmarks.sftp._accounting import self_cpu

from . import _clients

TASK_ID = "fetch"
_executed: list[dict[str, Any]] = []
_listed_at_cpu: list[float] = []


@task
def record_ids(count: int) -> list[int]:
    ids = list(range(1, count + 1))
    _listed_at_cpu.append(self_cpu())
    return ids


@task
async def fetch(record_id: int, conn_id: str, per_host: int | None) -> int:
    client = (
        HTTPClient.shared(conn_id, max_connections_per_host=per_host)
        if per_host
        else HTTPClient.shared(conn_id)
    )
    response = await client.get(f"records/{record_id}")
    response.json()
    return len(response.content)


@task
async def fetch_all(record_ids: list[int], base_url: str, concurrency: int) -> dict[str, Any]:
    """The raw aiohttp row's code, in one task instance: what the task instance itself costs."""
    start = time.perf_counter()
    total = await _clients.raw_aiohttp(base_url, len(record_ids), concurrency)
    _executed.append({"seconds": time.perf_counter() - start, "bytes": total, "items": len(record_ids)})
    return {"bytes": total}


def _record_execute() -> None:
    """Keep execute()'s time and results, to tell the items' run from the task instance around it."""
    original = IterateOperator.execute

    @functools.wraps(original)
    def recorded(self: IterateOperator, context: Any) -> Any:
        start = time.perf_counter()
        results = original(self, context)
        _executed.append(
            {"seconds": time.perf_counter() - start, "bytes": sum(results), "items": len(results)}
        )
        return results

    IterateOperator.execute = recorded  # type: ignore[method-assign]


def build(dag_id: str, count: int, conn_id: str, per_host: int | None, raw_in_task: int | None) -> DAG:
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False) as dag:
        if raw_in_task:
            link = json.loads(os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"])
            base_url = f"{link['schema']}://{link['host']}:{link['port']}"
            fetch_all.override(task_id=TASK_ID)(record_ids(count), base_url, raw_in_task)
        else:
            items = fetch.override(task_id=TASK_ID).partial(conn_id=conn_id, per_host=per_host)
            items.iterate(record_id=record_ids(count))
    return dag


def register(dag: DAG, empty_folder: Path) -> None:
    """dag.test() only runs DAGs that are serialized in the metadata DB."""
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(empty_folder))
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def run(dag: DAG) -> dict[str, Any]:
    start = time.perf_counter()
    dag_run = dag.test()
    wall = time.perf_counter() - start
    cpu = self_cpu() - _listed_at_cpu[-1]
    if dag_run.state != "success":
        raise RuntimeError(f"dag.test() of {dag.dag_id} ended in state {dag_run.state}")
    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=dag.dag_id, run_id=dag_run.run_id, task_id=TASK_ID)
        duration = float(ti.one().duration or 0.0)
    return {"dag_test_wall": wall, "cpu": cpu, "ti_duration": duration, **_executed[-1]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conn-id", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--per-host", type=int, default=None, help="None: the client's default")
    parser.add_argument(
        "--raw-in-task",
        type=int,
        default=None,
        metavar="CONCURRENCY",
        help="run the raw aiohttp row's code in one task instance instead of .iterate()",
    )
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--dags-folder", type=Path, required=True)
    parser.add_argument("--json-out", type=Path, required=True)
    args = parser.parse_args()

    _record_execute()
    measured = build(args.dag_id, args.count, args.conn_id, args.per_host, args.raw_in_task)
    register(measured, args.dags_folder)
    # No warm-up run: the listing task is the process's first task instance, so it is the one that
    # starts dag.test()'s in-process execution API.
    runs = [run(measured)]
    args.json_out.write_text(json.dumps({"calls": args.count, "runs": runs}))
    # Airflow's exit handlers take a second or more and have nothing left to do here.
    os._exit(0)


if __name__ == "__main__":
    main()
