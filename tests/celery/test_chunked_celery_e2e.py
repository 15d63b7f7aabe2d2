"""End to end on the CeleryExecutor: a chunked iterate spreads over two workers and survives losing one.

One DAG run, observed through the REST API only:

(a) two chunks run at the same time, one on each worker (the task instances' hostnames);
(b) the worker running one of them is SIGKILLed (its whole process tree) while that chunk is half
    done; Airflow retries the chunk on the other worker, which resumes it from the chunk's own
    checkpoint: try 2 runs the second half only;
(c) the gathered result is complete and in input order.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e._deployment import LOOPBACK, AirflowDeployment, ApiClient, ApiError

from .conftest import DAG_ID, WORKERS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Mirrors tests/celery/dags/iterate_chunked_celery.py (not imported: the test sees the deployment
# only through its REST API and the files its items write).
ITEM_COUNT = 800
CHUNK_SIZE = 200
GATE = CHUNK_SIZE // 2
CHUNKS_TASK = "work.chunks"
GATHER_TASK = "work.gather"

CHUNKS_RUNNING_TIMEOUT = 90.0
CHECKPOINT_TIMEOUT = 30.0
RUN_TIMEOUT = 150.0


def run_path(run_id: str) -> str:
    return f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}"


def task_instances(api: ApiClient, run_id: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api.get(f"{run_path(run_id)}/taskInstances", limit=100)["task_instances"]
    return result


def describe(tis: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  {ti['task_id']}[{ti['map_index']}]: {ti['state']} "
        f"(try {ti['try_number']}, host {ti['hostname']!r})"
        for ti in sorted(tis, key=lambda ti: (ti["task_id"], ti["map_index"]))
    )


def xcom(api: ApiClient, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    path = f"{run_path(run_id)}/taskInstances/{task_id}/xcomEntries/{key}"
    return api.get(path, map_index=map_index, deserialize=True)["value"]


def checkpointed(deployment: AirflowDeployment, run_id: str, map_index: int) -> set[int]:
    """Indexes (in the whole input) in the chunk's checkpoint, read from its task state store.

    Airflow 3.1 has no task state store: there the checkpoint is in the fallback directory under
    AIRFLOW_HOME, which both workers share on this one machine (as a shared mount would).
    """
    from airflow_iterate._core import Checkpoint, DirectoryStateStore

    try:
        entries = deployment.api.get(
            f"{run_path(run_id)}/taskInstances/{CHUNKS_TASK}/state-store", map_index=map_index, limit=100
        )["task_state_store"]
    except ApiError as exc:
        if "got 422" not in str(exc) and "got 404" not in str(exc):
            raise
        directory = DirectoryStateStore(deployment.home / "iterate-checkpoints")
        return set(Checkpoint(directory, f"{DAG_ID}/{run_id}/{CHUNKS_TASK}/{map_index}").load())
    store = {entry["key"]: entry["value"] for entry in entries}
    return set(Checkpoint(_ReadOnlyStore(store), "v1").load())


class _ReadOnlyStore:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def set(self, key: str, value: Any) -> None:
        raise AssertionError("read only")

    def delete(self, key: str) -> None:
        raise AssertionError("read only")


def effects(home: Path, map_index: int, try_number: int) -> list[int]:
    path = home / "chunked-celery" / f"effects-{map_index}-{try_number}.log"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def assert_only_loopback_listeners(deployment: AirflowDeployment) -> None:
    listeners = deployment.listeners()
    exposed = [str(listener) for listener in listeners if not listener.is_loopback]
    assert not exposed, "sockets listening on non-loopback addresses:\n" + "\n".join(exposed)
    # Guards the check against passing vacuously (socket inspection silently seeing nothing).
    seen = {(listener.component, listener.ip) for listener in listeners if listener.protocol == "tcp"}
    assert {("api-server", LOOPBACK), ("redis-server", LOOPBACK)} <= seen, "\n".join(map(str, listeners))


def test_no_component_listens_beyond_loopback(celery_deployment: AirflowDeployment) -> None:
    assert {c.name for c in celery_deployment.components} >= {"redis-server", "scheduler", *WORKERS}
    assert_only_loopback_listeners(celery_deployment)


def test_chunks_spread_over_workers_and_survive_a_killed_worker(celery_deployment: AirflowDeployment) -> None:
    deployment = celery_deployment
    api = deployment.api
    api.request("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    run_id = f"celery-{uuid.uuid4().hex[:12]}"
    api.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json={"dag_run_id": run_id, "logical_date": None})

    # (a) Each worker runs one task at a time, so two chunks running at once are on both workers.
    def one_chunk_per_worker() -> dict[str, int] | None:
        running = {
            ti["hostname"]: ti["map_index"]
            for ti in task_instances(api, run_id)
            if ti["task_id"] == CHUNKS_TASK and ti["state"] == "running"
        }
        return running if set(running) == set(WORKERS) else None

    running = deployment.wait_for(
        "a chunk running on each worker", one_chunk_per_worker, CHUNKS_RUNNING_TIMEOUT
    )
    victim, survivor = WORKERS
    chunk = running[victim]
    start = chunk * CHUNK_SIZE
    first_half = list(range(start, start + GATE))

    # The chunk stops at its gate half-way; wait until that first half is in its checkpoint.
    deployment.wait_for(
        f"chunk {chunk}'s checkpoint to hold its first {GATE} items",
        lambda: True if checkpointed(deployment, run_id, chunk) == set(first_half) else None,
        CHECKPOINT_TIMEOUT,
    )
    assert sorted(effects(deployment.home, chunk, 1)) == first_half

    # (b) The worker dies with everything it runs (no SIGTERM, no cleanup), then the gate opens.
    killed = deployment.kill(victim)
    assert len(killed) >= 3, killed  # the worker, its pool process, the task's supervisor and process
    (deployment.home / "chunked-celery" / "release").touch()

    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = api.get(run_path(run_id))
        return run if run["state"] in ("success", "failed") else None

    run = deployment.wait_for(f"dag run {run_id} to finish", finished, RUN_TIMEOUT)
    tis = task_instances(api, run_id)
    assert run["state"] == "success", f"{describe(tis)}\n{deployment.diagnostics()}"

    tries = api.get(f"{run_path(run_id)}/taskInstances/{CHUNKS_TASK}/{chunk}/tries")["task_instances"]
    assert [(t["try_number"], t["hostname"], t["state"]) for t in tries] == [
        (1, victim, "failed"),
        (2, survivor, "success"),
    ], tries
    summary = xcom(api, run_id, CHUNKS_TASK, key="iterate_summary", map_index=chunk)
    assert (summary["resumed"], summary["succeeded"], summary["failed"]) == (GATE, CHUNK_SIZE - GATE, 0), (
        summary
    )
    # Every item of the chunk ran exactly once: the first half before the kill, the rest after.
    assert sorted(effects(deployment.home, chunk, 1)) == first_half
    assert sorted(effects(deployment.home, chunk, 2)) == list(range(start + GATE, start + CHUNK_SIZE))

    chunk_tis = {ti["map_index"]: ti for ti in tis if ti["task_id"] == CHUNKS_TASK}
    assert sorted(chunk_tis) == list(range(ITEM_COUNT // CHUNK_SIZE)), describe(tis)
    assert (chunk_tis[chunk]["try_number"], chunk_tis[chunk]["hostname"]) == (2, survivor), describe(tis)
    assert {ti["hostname"] for ti in chunk_tis.values()} <= set(WORKERS), describe(tis)
    assert all(ti["state"] == "success" for ti in tis), describe(tis)

    # (c) Complete and in input order, as one list, for the unchanged downstream task.
    results = xcom(api, run_id, GATHER_TASK)
    assert results == [n * n for n in range(ITEM_COUNT)]
    gathered = xcom(api, run_id, GATHER_TASK, key="iterate_summary")
    assert (gathered["chunks"], gathered["total"], gathered["resumed"]) == (4, ITEM_COUNT, GATE), gathered
    assert xcom(api, run_id, "summarize")["count"] == ITEM_COUNT

    # The workers' task processes must not have opened anything public either.
    assert_only_loopback_listeners(deployment)
