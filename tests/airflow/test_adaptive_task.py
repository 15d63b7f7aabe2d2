"""concurrency="auto" through dag.test(): the run completes, and shows its limit where users look."""

from __future__ import annotations

import asyncio

import pendulum
import pytest
from airflow.sdk import DAG, task

import airflow_iterate  # noqa: F401  - adds .iterate() to @task functions
from airflow_iterate import IterateUsageError
from tests.airflow._dagrun import ledger, run_dag, xcom

START = pendulum.datetime(2025, 1, 1, tz="UTC")


class Throttled(Exception):
    """What a partner's client library raises on HTTP 429."""


def test_an_auto_task_finds_the_limit_and_reports_it(capfd: pytest.CaptureFixture[str]) -> None:
    active = [0]

    with DAG("auto_concurrency", schedule=None, start_date=START, catchup=False) as dag:

        @task
        async def call(n: int) -> int:
            if active[0] >= 12:  # the partner serves 12 at once and throttles the rest
                raise Throttled("429 Too Many Requests")
            active[0] += 1
            try:
                await asyncio.sleep(0.005)
            finally:
                active[0] -= 1
            return n

        call.iterate(n=list(range(1_500)), concurrency="auto", overload_on=Throttled, progress_interval=0.2)

    dag_run = run_dag(dag)
    logs = "".join(capfd.readouterr())
    assert xcom(dag_run, "call") == list(range(1_500))  # item_retries=0 and max_failures=0, yet all done
    summary = xcom(dag_run, "call", key="iterate_summary")
    assert summary["failed"] == 0 and summary["overloaded"] > 0 and 1 <= summary["limit"] <= 128
    assert "adapting to the server, at most 128 at a time" in logs
    assert "(auto)" in logs and "overloaded" in logs  # the progress lines show the limit
    doc = ledger(dag_run, "call")
    assert doc["adaptive"] is True and doc["counts"]["overloaded"] == summary["overloaded"]
    assert doc["limit_changes"] and {reason for _, _, reason in doc["limit_changes"]} <= {
        "grow",
        "latency",
        "overload",
    }


def test_auto_options_are_checked_at_parse_time() -> None:
    @task
    def call(n: int) -> int:
        return n

    with DAG("auto_parse", schedule=None, start_date=START, catchup=False):
        with pytest.raises(IterateUsageError, match="max_concurrency bounds"):
            call.iterate(n=[1], concurrency=8, max_concurrency=16)
        with pytest.raises(IterateUsageError, match="'auto'"):
            call.iterate(n=[1], concurrency="fast")
        with pytest.raises(IterateUsageError, match="overload_on"):
            call.iterate(n=[1], concurrency="auto", overload_on="429")
