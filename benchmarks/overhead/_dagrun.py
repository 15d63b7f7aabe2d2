"""Subprocess entry point: real ``dag.test()`` runs of ``.iterate()`` and ``.expand()``.

Runs in its own interpreter so that Airflow's logging (written to the caller's log file) and its
one-off start-up costs stay out of the in-process timings. dag.test() executes task instances in
this process, so wrapping ``IterateOperator.execute`` here times the real execute of a real task
instance, context, XCom push and all around it.
"""

from __future__ import annotations

import argparse
import functools
import json
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

from ._config import ASYNC_CONCURRENCY, SYNC_THREADS

_execute_seconds: dict[str, list[float]] = {}


def _time_execute() -> None:
    original = IterateOperator.execute

    @functools.wraps(original)
    def timed(self: IterateOperator, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, context)
        finally:
            _execute_seconds.setdefault(self.task_id, []).append(time.perf_counter() - start)

    IterateOperator.execute = timed  # type: ignore[method-assign]


@task
async def noop(x: Any) -> Any:
    return x


@task
def noop_sync(x: Any) -> Any:
    return x


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)


def build_dags(async_items: int, sync_items: int, expand_tis: int) -> dict[str, DAG]:
    with _dag("overhead_iterate") as iterate_dag:
        # The floors' concurrency, so that the rows compare like with like.
        noop.override(task_id="iterate_async").iterate(
            x=list(range(async_items)), concurrency=ASYNC_CONCURRENCY
        )
        noop_sync.override(task_id="iterate_sync").iterate(
            x=list(range(sync_items)), concurrency=SYNC_THREADS
        )
    # The one-instance run is the baseline: subtracting it leaves what each further mapped task
    # instance adds, without the DAG run's own fixed cost.
    with _dag("overhead_expand_1") as expand_one:
        noop.override(task_id="expand_async").expand(x=[0])
    with _dag("overhead_expand_m") as expand_many:
        noop.override(task_id="expand_async").expand(x=list(range(expand_tis)))
    return {"iterate": iterate_dag, "expand_1": expand_one, "expand_m": expand_many}


def register(dags: dict[str, DAG], empty_folder: Path) -> None:
    """dag.test() only runs DAGs that are serialized in the metadata DB."""
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(empty_folder))
    for dag in dags.values():
        bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def run(dag: DAG) -> tuple[float, dict[str, list[float]]]:
    """Wall time of one dag.test() and the duration of each of its task instances, by task id."""
    start = time.perf_counter()
    dag_run = dag.test()
    wall = time.perf_counter() - start
    if dag_run.state != "success":
        raise RuntimeError(f"dag.test() of {dag.dag_id} ended in state {dag_run.state}")
    durations: dict[str, list[float]] = {}
    with create_session() as session:
        for ti in session.query(TaskInstance).filter_by(dag_id=dag.dag_id, run_id=dag_run.run_id):
            durations.setdefault(ti.task_id, []).append(float(ti.duration or 0.0))
    return wall, durations


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--async-items", type=int, required=True)
    parser.add_argument("--sync-items", type=int, required=True)
    parser.add_argument("--expand-tis", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--expand-repeats", type=int, required=True)
    parser.add_argument("--dags-folder", type=Path, required=True)
    parser.add_argument("--json-out", type=Path, required=True)
    args = parser.parse_args()

    _time_execute()
    dags = build_dags(args.async_items, args.sync_items, args.expand_tis)
    register(dags, args.dags_folder)

    # The first task instance of a process starts the in-process execution API; that one-off
    # cost belongs to no particular measurement.
    run(dags["expand_1"])

    result: dict[str, Any] = {"expand_tis": args.expand_tis, "expand_1": [], "expand_m": [], "iterate": []}
    for _ in range(args.expand_repeats):
        for key in ("expand_1", "expand_m"):
            wall, durations = run(dags[key])
            result[key].append({"wall": wall, "ti_durations": durations["expand_async"]})
    _execute_seconds.clear()
    for _ in range(args.repeats):
        wall, durations = run(dags["iterate"])
        result["iterate"].append({"wall": wall, "ti_durations": durations})
    result["execute_seconds"] = _execute_seconds
    result["items"] = {"iterate_async": args.async_items, "iterate_sync": args.sync_items}
    args.json_out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
