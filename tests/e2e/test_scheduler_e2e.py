"""End to end: a DAG using ``.iterate()`` run by a real scheduler, LocalExecutor worker and API server.

Asserts through the public REST API only, i.e. what a user of the deployment would see.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest

from ._deployment import LOOPBACK, AirflowDeployment, ApiClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Mirrors tests/e2e/dags/iterate_e2e.py, which is not imported: the test sees the deployment only
# through its REST API.
DAG_ID = "iterate_e2e"
UPSTREAM_TASK = "make_items"
ITERATED_TASK = "transform"
DOWNSTREAM_TASK = "summarize"
ITEM_COUNT = 2000
FACTOR = 3

RUN_TIMEOUT = 120.0
TERMINAL_RUN_STATES = frozenset({"success", "failed"})


def assert_only_loopback_listeners(deployment: AirflowDeployment) -> None:
    listeners = deployment.listeners()
    exposed = [str(listener) for listener in listeners if not listener.is_loopback]
    assert not exposed, "sockets listening on non-loopback addresses:\n" + "\n".join(exposed)
    api_sockets = [
        listener
        for listener in listeners
        if listener.component == "api-server"
        and listener.protocol == "tcp"
        and listener.port == deployment.port
    ]
    # Guards the check above against passing vacuously, e.g. if socket inspection silently saw nothing.
    assert api_sockets, "the api-server's listening socket was not found:\n" + "\n".join(map(str, listeners))
    assert {listener.ip for listener in api_sockets} == {LOOPBACK}


def test_components_listen_on_loopback_only(airflow_deployment: AirflowDeployment) -> None:
    assert_only_loopback_listeners(airflow_deployment)


def finished_run(api: ApiClient, run_id: str) -> dict[str, Any] | None:
    run: dict[str, Any] = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
    return run if run["state"] in TERMINAL_RUN_STATES else None


def xcom_return_value(api: ApiClient, run_id: str, task_id: str) -> Any:
    entry = api.get(
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
        map_index=-1,
        deserialize=True,
    )
    return entry["value"]


def first_difference(actual: list[Any], expected: list[Any]) -> str:
    for index, (got, want) in enumerate(zip(actual, expected, strict=False)):
        if got != want:
            return f"first difference at index {index}: got {got!r}, expected {want!r}"
    return f"lengths differ: got {len(actual)}, expected {len(expected)}"


def describe(task_instances: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  {ti['task_id']}[{ti['map_index']}]: {ti['state']} (try {ti['try_number']}, "
        f"operator {ti.get('operator')!r}, operator_name {ti.get('operator_name')!r})"
        for ti in task_instances
    )


def test_iterate_runs_every_item_in_one_task_instance(airflow_deployment: AirflowDeployment) -> None:
    api = airflow_deployment.api
    dag = api.request("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    assert dag["is_paused"] is False

    run_id = f"e2e-{uuid.uuid4().hex[:12]}"
    api.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json={"dag_run_id": run_id, "logical_date": None})
    run = airflow_deployment.wait_for(
        f"dag run {run_id} to finish", lambda: finished_run(api, run_id), RUN_TIMEOUT
    )

    task_instances: list[dict[str, Any]] = api.get(
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", limit=100
    )["task_instances"]
    assert run["state"] == "success", (
        f"dag run {run_id} ended {run['state']}:\n{describe(task_instances)}\n"
        f"{airflow_deployment.diagnostics()}"
    )
    assert {ti["task_id"] for ti in task_instances} == {UPSTREAM_TASK, ITERATED_TASK, DOWNSTREAM_TASK}
    assert all(ti["state"] == "success" for ti in task_instances), describe(task_instances)

    # The whole point of .iterate(): one unmapped task instance, not one per item.
    iterated = [ti for ti in task_instances if ti["task_id"] == ITERATED_TASK]
    assert len(iterated) == 1, describe(iterated)
    assert iterated[0]["map_index"] == -1, describe(iterated)
    assert iterated[0]["operator_name"] == "@task.iterate", describe(iterated)

    task = api.get(f"/api/v2/dags/{DAG_ID}/tasks/{ITERATED_TASK}")
    assert task["operator_name"] == "@task.iterate"
    assert task["is_mapped"] is False

    expected = [x * FACTOR for x in range(ITEM_COUNT)]
    results = xcom_return_value(api, run_id, ITERATED_TASK)
    assert isinstance(results, list), f"return_value is {type(results).__name__}: {str(results)[:500]}"
    assert len(results) == ITEM_COUNT
    # Compared as a whole so a misplaced item fails too, not just a missing one.
    assert results == expected, first_difference(results, expected)

    summary = xcom_return_value(api, run_id, DOWNSTREAM_TASK)
    assert summary == {
        "count": ITEM_COUNT,
        "sum": sum(expected),
        "sha256": hashlib.sha256(json.dumps(expected).encode()).hexdigest(),
    }

    # Task execution starts new worker processes; they must not have opened anything public either.
    assert_only_loopback_listeners(airflow_deployment)
