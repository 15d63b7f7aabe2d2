"""Thousands of concurrent async items reading a connection from the metadata DB complete."""

from __future__ import annotations

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
    run_id = airflow_deployment.trigger(DAG_ID, "conn")
    run = airflow_deployment.wait_for_run(DAG_ID, run_id, 180)
    assert run["state"] == "success", airflow_deployment.diagnostics()
    assert airflow_deployment.xcom(DAG_ID, run_id, "read") == ["warehouse.internal:5433"] * ITEM_COUNT
