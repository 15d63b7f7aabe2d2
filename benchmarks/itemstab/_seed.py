"""``python -m benchmarks.itemstab._seed ITEMS FAILURES --json-out FILE``: a DAG run whose iterated
task instance holds the ledger of ITEMS items with FAILURES failures.

Runs in the benchmark's AIRFLOW_HOME: a small iterated DAG through dag.test() gives real DAG run
and task instance rows; its ledger is then replaced by the one a run over ITEMS items writes,
built by airflow_iterate's own ``Ledger`` and stored as the task state store stores it.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import pendulum
from airflow.sdk import DAG, task
from tests.airflow._dagrun import run_dag

import airflow_iterate  # noqa: F401  - adds .iterate()
from airflow_iterate._airflow._ledger_store import LEDGER_STATE_PREFIX
from airflow_iterate._core import ItemFailure, RunStatistics
from airflow_iterate._core._ledger import Ledger

DAG_ID = "itemstab_bench"
TASK_ID = "fetch"
#: which items fail: every (ITEMS / FAILURES)-th one
ERROR = "partner API answered HTTP 503 (Service Unavailable) after 30.0s"


def label(n: int) -> str:
    return f"/in/partner-a/2026/12/01/batch-{n // 1000:04d}/file-{n:07d}.xml"


class _Collect:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def put(self, name: str, value: Any) -> None:
        self.values[name] = value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("items", type=int)
    parser.add_argument("failures", type=int)
    parser.add_argument("--json-out", required=True)
    args = parser.parse_args()

    with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:

        @task
        def fetch(path: str) -> str:
            return path

        fetch.iterate(path=["/in/a.xml", "/in/b.xml"])

    dag_run = run_dag(dag)

    started = time.perf_counter()
    step = args.items // args.failures
    failures = [
        ItemFailure(n, label(n), ConnectionError(ERROR), f"ConnectionError: {ERROR}", attempts=4)
        for n in range(step - 1, args.items, step)
    ][: args.failures]
    stats = RunStatistics(
        concurrency=128,
        total=args.items,
        started=args.items,
        succeeded=args.items - len(failures),
        failed=len(failures),
        resumed=0,
        retried=3 * len(failures),
        in_flight=0,
        peak_in_flight=128,
        elapsed=1_800.0,
    )
    collected = _Collect()
    identity = {"dag_id": DAG_ID, "run_id": dag_run.run_id, "task_id": TASK_ID, "map_index": -1}
    ledger = Ledger(collected, about={**identity, "try_number": 1, "first_index": 0, "operator": "fetch()"})
    document = ledger.write(
        stats, state="success", offset=0, pulled=args.items, running=[], failures=failures
    )
    built = time.perf_counter() - started

    from airflow._shared.state import TaskScope
    from airflow.state.metastore import _get_db_backend
    from airflow.utils.session import create_session

    scope = TaskScope(dag_id=DAG_ID, run_id=dag_run.run_id, task_id=TASK_ID, map_index=-1)
    backend = _get_db_backend()
    stored_chars = 0
    with create_session() as session:
        for name, value in collected.values.items():
            text = json.dumps(value)
            stored_chars += len(text)
            backend.set(scope, LEDGER_STATE_PREFIX + name, text, expires_at=None, session=session)
    with open(args.json_out, "w") as out:
        json.dump(
            {
                "run_id": dag_run.run_id,
                "dag_id": DAG_ID,
                "task_id": TASK_ID,
                "items": args.items,
                "failures": len(failures),
                "rows": len(collected.values),
                "document_chars": len(json.dumps(document)),
                "stored_chars": stored_chars,
                "seconds_to_store": time.perf_counter() - started,
                "seconds_to_build": built,
                "failed_labels": [label(failures[i].index) for i in (0, len(failures) // 2, -1)],
            },
            out,
        )


if __name__ == "__main__":
    main()
