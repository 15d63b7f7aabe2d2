"""End to end: a DAG using ``.iterate()`` run by a real scheduler, LocalExecutor worker and API server.

Asserts through the public REST API only, i.e. what a user of the deployment would see.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from ._deployment import LOOPBACK, AirflowDeployment

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
    run_id = airflow_deployment.trigger(DAG_ID)
    run = airflow_deployment.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT)

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
    results = airflow_deployment.xcom(DAG_ID, run_id, ITERATED_TASK)
    assert isinstance(results, list), f"return_value is {type(results).__name__}: {str(results)[:500]}"
    assert len(results) == ITEM_COUNT
    # Compared as a whole so a misplaced item fails too, not just a missing one.
    assert results == expected, first_difference(results, expected)

    summary = airflow_deployment.xcom(DAG_ID, run_id, DOWNSTREAM_TASK)
    assert summary == {
        "count": ITEM_COUNT,
        "sum": sum(expected),
        "sha256": hashlib.sha256(json.dumps(expected).encode()).hexdigest(),
    }

    # Task execution starts new worker processes; they must not have opened anything public either.
    assert_only_loopback_listeners(airflow_deployment)
