"""Async items and the Task SDK: async accessors, the sync-call guard, blocked-loop warnings."""

from __future__ import annotations

import asyncio
import json
import time

import pendulum
import pytest
from airflow.sdk import DAG, Variable, task

import airflow_iterate
from tests.airflow._dagrun import run_dag, xcom

START = pendulum.datetime(2025, 1, 1, tz="UTC")


def make_dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False)


@pytest.fixture
def warehouse_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "sqlite", "host": "/data/warehouse.db", "extra": {"timeout": 7}}
    monkeypatch.setenv("AIRFLOW_CONN_ITERATE_WAREHOUSE", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_VAR_ITERATE_BATCH", json.dumps({"size": 250}))


def test_thousands_of_async_items_read_a_connection_and_a_variable(warehouse_connection: None) -> None:
    with make_dag("async_accessors") as dag:

        @task
        async def use(n: int) -> str:
            conn = await airflow_iterate.aget_connection("iterate_warehouse")
            batch = await airflow_iterate.aget_variable("iterate_batch", deserialize_json=True)
            await asyncio.sleep(0)
            return f"{conn.host}:{conn.extra_dejson['timeout']}:{batch['size']}:{n}"

        use.iterate(n=list(range(3000)), concurrency=500)

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert xcom(dag_run, "use") == [f"/data/warehouse.db:7:250:{n}" for n in range(3000)]


def test_a_missing_connection_fails_naming_it(capfd: pytest.CaptureFixture[str]) -> None:
    with make_dag("missing_connection") as dag:

        @task
        async def use(n: int) -> str:
            conn = await airflow_iterate.aget_connection("no_such_connection")
            return str(conn.host)

        use.iterate(n=[1, 2])

    dag_run = run_dag(dag)
    assert dag_run.state == "failed"
    assert "no_such_connection" in "".join(capfd.readouterr())


def test_a_sync_sdk_call_on_the_loop_is_named_with_its_replacement(capfd: pytest.CaptureFixture[str]) -> None:
    from airflow.models.variable import Variable as StoredVariable

    # In the metadata DB (not an env var), so reading it is a request to the supervisor.
    StoredVariable.set("iterate_db_batch", {"size": 250}, serialize_json=True)

    with make_dag("sync_call_on_loop") as dag:

        @task
        async def naive(n: int) -> int:
            return int(Variable.get("iterate_db_batch", deserialize_json=True)["size"]) + n

        naive.iterate(n=[0, 1, 2])

    dag_run = run_dag(dag)
    logs = "".join(capfd.readouterr())
    assert xcom(dag_run, "naive") == [250, 251, 252]
    assert logs.count("Variable.get() was called on the event loop") == 1  # once, not per item
    assert "await airflow_iterate.aget_variable(key)" in logs


def test_a_blocked_event_loop_is_reported_in_the_task_log(capfd: pytest.CaptureFixture[str]) -> None:
    with make_dag("blocked_loop") as dag:

        @task
        async def careless(n: int) -> int:
            if n == 1:
                time.sleep(0.4)  # a blocking call in an async item
            await asyncio.sleep(0)
            return n

        careless.iterate(n=[0, 1, 2])

    assert run_dag(dag).state == "success"
    logs = "".join(capfd.readouterr())
    assert "The event loop was blocked for" in logs
    assert "test_event_loop_safety.py" in logs and "in careless" in logs


def test_the_runs_own_checkpoint_writes_raise_no_false_warning(capfd: pytest.CaptureFixture[str]) -> None:
    # Longer than checkpoint_interval, so the checkpoint is written during the run and deleted at
    # its end; and a failing twin, whose checkpoint is written once more at its end. Both happen
    # after the loop, on its thread: no item is blocked, and the log must not say one is.
    with make_dag("checkpoint_after_the_loop") as dag:

        @task
        async def wait(n: int) -> int:
            await asyncio.sleep(0.2)
            return n

        @task
        async def fails(n: int) -> int:
            await asyncio.sleep(0.2)
            if n == 2:
                raise ValueError("bad item")
            return n

        wait.iterate(n=list(range(4)), concurrency=1, checkpoint_interval=0.1)
        fails.iterate(n=list(range(4)), concurrency=1, checkpoint_interval=0.1)

    dag_run = run_dag(dag)
    logs = "".join(capfd.readouterr())
    assert xcom(dag_run, "wait") == [0, 1, 2, 3]
    assert "Iterate item failed: item 2" in logs
    assert "was called on the event loop" not in logs
