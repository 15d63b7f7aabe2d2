"""What the Airflow layer feature-detects is found on the Airflow under test (3.1 and later)."""

from __future__ import annotations

import datetime as dt

import airflow_iterate
from airflow_iterate._airflow._classic import is_async_operator
from airflow_iterate._airflow._compat import stats_module, xcom_serde


def test_metrics_have_somewhere_to_go() -> None:
    stats = stats_module()
    assert stats is not None
    stats.gauge("iterate.test", 1, tags={"dag_id": "d", "task_id": "t"})


def test_checkpoints_and_result_checks_use_the_xcom_encoding() -> None:
    serde = xcom_serde()
    assert serde is not None
    encode, decode = serde
    value = (1, "a", dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    assert decode(encode(value)) == value


def test_subclasses_of_the_exported_base_async_operator_run_on_the_event_loop() -> None:
    class Probe(airflow_iterate.BaseAsyncOperator):
        async def aexecute(self, context: object) -> int:
            return 1

    assert is_async_operator(Probe, {})


def test_a_plain_async_task_runs_on_every_supported_airflow() -> None:
    import asyncio

    import pendulum
    from airflow.sdk import DAG, task

    from tests.airflow._dagrun import run_dag, xcom

    with DAG("plain_async", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")) as dag:

        @task
        async def list_things() -> list[str]:
            await asyncio.sleep(0)
            return ["a", "b"]

        @task
        def count(things: list[str]) -> int:
            return len(things)

        count(list_things())

    dag_run = run_dag(dag)
    assert xcom(dag_run, "list_things") == ["a", "b"]
    assert xcom(dag_run, "count") == 2
