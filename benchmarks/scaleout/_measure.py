"""One DAG run per variant and repeat, observed through the REST API and the processes' CPU time."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from tests.e2e._deployment import AirflowDeployment

from benchmarks.sftp._accounting import cpu_between, cpu_snapshot
from benchmarks.sftp._data import DataSet
from benchmarks.sftp._servers import Servers

#: dag id (see _dag.py) -> what it shows
VARIANTS = {
    "scaleout_one_task": "one `.iterate()` task instance, one worker",
    "scaleout_chunks_one_worker": "`chunks=2`, one worker (the chunks run one after the other)",
    "scaleout_chunks_two_workers": "`chunks=2`, two workers (a chunk each, at the same time)",
}
#: worker name -> the Celery queues it consumes; only worker-a serves the one-worker variants
WORKERS = {"worker-a": ["default", "solo"], "worker-b": ["default"]}
FETCH_TASKS = ("fetch", "fetch.chunks")
RUN_TIMEOUT_BASE = 300.0
#: generous: a file takes well under a millisecond of one worker's time
SECONDS_PER_FILE_LIMIT = 0.05


def _timestamp(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _seconds(start: str, end: str) -> float:
    return (_timestamp(end) - _timestamp(start)).total_seconds()


def _one_run(deployment: AirflowDeployment, servers: Servers, data: DataSet, dag_id: str) -> dict[str, Any]:
    workers = [deployment.component(name).process.pid for name in WORKERS]
    before, sshd_before = cpu_snapshot(workers), cpu_snapshot([servers.listener_pid()])
    run_id = deployment.trigger(dag_id, prefix="bench")
    timeout = RUN_TIMEOUT_BASE + SECONDS_PER_FILE_LIMIT * len(data.paths)
    run = deployment.wait_for_run(dag_id, run_id, timeout)
    servers.wait_sessions_gone()
    workers_cpu = cpu_between(before, cpu_snapshot(workers))
    sshd_cpu = cpu_between(sshd_before, cpu_snapshot([servers.listener_pid()]))
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"
    tis = deployment.api.get(f"{path}/taskInstances", limit=100)["task_instances"]
    if run["state"] != "success":
        raise RuntimeError(f"DAG run {run_id} of {dag_id} ended {run['state']}\n{deployment.diagnostics()}")
    total = deployment.xcom(dag_id, run_id, "total")
    if total != {"files": len(data.paths), "bytes": data.total_bytes}:
        raise RuntimeError(f"DAG run {run_id} of {dag_id} read {total}, not all {len(data.paths)} files")
    fetches = sorted(
        (ti for ti in tis if ti["task_id"] in FETCH_TASKS), key=lambda ti: (ti["task_id"], ti["map_index"])
    )
    first_start = min((ti["start_date"] for ti in fetches), key=_timestamp)
    last_end = max((ti["end_date"] for ti in fetches), key=_timestamp)
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "dag_run_seconds": _seconds(run["start_date"], run["end_date"]),
        # From the first downloading task instance's start to the last one's end: the job itself,
        # without the listing, the planning and the gathering around it.
        "fetch_seconds": _seconds(first_start, last_end),
        "task_instances": [
            {
                "task_id": ti["task_id"],
                "map_index": ti["map_index"],
                "hostname": ti["hostname"],
                "try_number": ti["try_number"],
                "seconds": _seconds(ti["start_date"], ti["end_date"]),
                "offset": _seconds(first_start, ti["start_date"]),
            }
            for ti in fetches
        ],
        "workers_cpu": workers_cpu,
        "sshd_cpu": sshd_cpu,
    }


def measure(
    deployment: AirflowDeployment,
    servers: Servers,
    data: DataSet,
    repeats: int,
    progress: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Every variant ``repeats`` times, in turns (so that drift on the machine hits them alike)."""
    runs = []
    for repeat in range(1, repeats + 1):
        for dag_id in VARIANTS:
            progress(f"run {repeat}/{repeats}: {dag_id}, {len(data.paths):,} files")
            result = _one_run(deployment, servers, data, dag_id)
            hosts = ", ".join(
                f"{ti['task_id']}[{ti['map_index']}]@{ti['hostname']}" for ti in result["task_instances"]
            )
            seconds, dag_run = result["fetch_seconds"], result["dag_run_seconds"]
            progress(f"  {seconds:.1f} s downloading ({hosts}), DAG run {dag_run:.1f} s")
            runs.append(result)
    return runs
