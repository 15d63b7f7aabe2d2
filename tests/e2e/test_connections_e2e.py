"""Thousands of concurrent async items reading a connection from the metadata DB complete."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ._deployment import AirflowDeployment

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "iterate_connections_e2e"
ITEM_COUNT = 2000  # mirrors the DAG file
CONN_ID = "iterate_e2e_warehouse"


def test_thousands_of_items_read_one_connection_without_deadlock(
    airflow_deployment: AirflowDeployment,
) -> None:
    api = airflow_deployment.api
    # Stored in the metadata DB, so every read is a request through the task's supervisor channel.
    api.request(
        "POST",
        "/api/v2/connections",
        expected=201,
        json={"connection_id": CONN_ID, "conn_type": "generic", "host": "warehouse.internal", "port": 5433},
    )
    api.request("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    run_id = f"conn-{uuid.uuid4().hex[:12]}"
    api.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json={"dag_run_id": run_id, "logical_date": None})

    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    run = airflow_deployment.wait_for(f"dag run {run_id}", finished, 180)
    assert run["state"] == "success", airflow_deployment.diagnostics()
    values = api.get(
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/read/xcomEntries/return_value",
        map_index=-1,
        deserialize=True,
    )["value"]
    assert values == ["warehouse.internal:5433"] * ITEM_COUNT
