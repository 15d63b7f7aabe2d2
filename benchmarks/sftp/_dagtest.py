"""Subprocess entry point for row 5: ``.iterate()`` + this package's pool in a real task instance.

``python -m benchmarks.sftp._dagtest --conn-id ID --manifest FILE --count N [--concurrency C]
--repeats R --dags-folder DIR --json-out FILE``

The DAG is what a user writes without tuning: a task returns the file list, then one ``async def``
item per file borrows from ``SFTPPool.shared(conn_id)`` and calls ``download_bytes``;
``--concurrency`` is the second variant. dag.test() runs the task instances in this process, so
this process's CPU time from the end of the listing task to the end of the DAG run is what the
downloading task instance cost, its start, checkpoints and XCom push included.
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
from airflow_iterate.sftp import SFTPPool, download_bytes

from ._accounting import self_cpu

TASK_ID = "fetch"
_executed: list[dict[str, Any]] = []
_listed_at_cpu: list[float] = []


@task
def list_paths(manifest: str, count: int) -> list[str]:
    # The file list as an upstream task hands it over, without a listing's round trips: every
    # row reads the same list. (A literal list in the DAG would instead be rendered as 17,000
    # Jinja templates when the task starts, a cost no real DAG has.)
    paths: list[str] = json.loads(Path(manifest).read_text())["paths"][:count]
    _listed_at_cpu.append(self_cpu())
    return paths


@task
async def fetch(path: str, conn_id: str) -> int:
    pool = SFTPPool.shared(conn_id)
    return len(await download_bytes(pool, path))


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


def build(dag_id: str, manifest: Path, count: int, conn_id: str, concurrency: int | None) -> DAG:
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False) as dag:
        paths = list_paths(str(manifest), count)
        items = fetch.override(task_id=TASK_ID).partial(conn_id=conn_id)
        if concurrency is None:
            items.iterate(path=paths)
        else:
            items.iterate(path=paths, concurrency=concurrency)
    return dag


def register(dags: list[DAG], empty_folder: Path) -> None:
    """dag.test() only runs DAGs that are serialized in the metadata DB."""
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(empty_folder))
    for dag in dags:
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
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=None, help="None: .iterate()'s default")
    parser.add_argument("--repeats", type=int, default=1, help="measured runs (more for profiling)")
    parser.add_argument("--dags-folder", type=Path, required=True)
    parser.add_argument("--json-out", type=Path, required=True)
    args = parser.parse_args()

    phases = {"start": time.perf_counter()}
    _record_execute()
    measured = build("sftp_iterate", args.manifest, args.count, args.conn_id, args.concurrency)
    register([measured], args.dags_folder)
    phases["registered"] = time.perf_counter()
    # No warm-up run: the listing task is the process's first task instance, so it is the one that
    # starts dag.test()'s in-process execution API (checked: a warm-up DAG run first changed nothing).
    runs = [run(measured) for _ in range(args.repeats)]
    phases["measured"] = time.perf_counter()
    args.json_out.write_text(json.dumps({"files": args.count, "runs": runs, "phases": phases}))
    # Airflow's exit handlers take a second or more and have nothing left to do here.
    os._exit(0)


if __name__ == "__main__":
    main()
