"""Items named, bounded and accounted for: item_label, item_timeout and the item ledger, via dag.test()."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, task

import airflow_iterate  # noqa: F401  - adds .iterate() to @task functions
from airflow_iterate import IterateUsageError
from tests.airflow._dagrun import ledger, run_dag, task_instances, xcom

START = pendulum.datetime(2025, 1, 1, tz="UTC")


def make_dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False)


def state_of(dag_run: Any, task_id: str) -> str | None:
    return next(state for tid, _, state in task_instances(dag_run) if tid == task_id)


def test_labels_name_items_in_failures_the_log_and_the_ledger(capfd: pytest.CaptureFixture[str]) -> None:
    with make_dag("item_labels") as dag:

        @task
        def load(path: str, region: str) -> str:
            if path.endswith("3.xml"):
                raise ValueError("truncated document")
            return path

        load.iterate(
            path=[f"/in/{n}.xml" for n in range(5)],
            region=["eu"],
            item_label="{region}:{path}",
            max_failures=None,
        )

    dag_run = run_dag(dag)
    logs = "".join(capfd.readouterr())
    assert state_of(dag_run, "load") == "success"
    assert xcom(dag_run, "load", key="iterate_failures") == [
        {"index": 3, "input": "eu:/in/3.xml", "error": "ValueError: truncated document"}
    ]
    assert "item 3 (input eu:/in/3.xml): ValueError: truncated document" in logs
    doc = ledger(dag_run, "load")
    assert doc["failed"] == [
        {"index": 3, "label": "eu:/in/3.xml", "error_type": "ValueError", "message": "truncated document",
         "attempts": 1}
    ]  # fmt: skip
    assert doc["state"] == "success" and doc["counts"]["succeeded"] == 4
    assert doc["done_ranges"] == [[0, 5]]
    assert doc["try_number"] == 1 and doc["task_id"] == "load"


def test_a_label_that_cannot_be_built_falls_back_and_says_so_once(capfd: pytest.CaptureFixture[str]) -> None:
    def short(path: str) -> str:
        return path.rsplit("/", 1)[1] if "/" in path else path[10]  # IndexError for short names

    with make_dag("label_fallback") as dag:

        @task
        def fail(path: str) -> str:
            raise RuntimeError("nope")

        fail.iterate(path=["/a/b.csv", "x", "y"], item_label=short, max_failures=None)

    dag_run = run_dag(dag)
    logs = "".join(capfd.readouterr())
    inputs = [f["input"] for f in xcom(dag_run, "fail", key="iterate_failures")]
    assert inputs == ["b.csv", "'x'", "'y'"]  # the default label where the callable failed
    assert logs.count("item_label could not name the item") == 1


def test_labels_are_checked_at_parse_time() -> None:
    @task
    def load(path: str) -> str:
        return path

    with make_dag("label_parse"):
        with pytest.raises(IterateUsageError, match=r"names 'pth', which is not an argument"):
            load.iterate(path=["a"], item_label="{pth}")
        with pytest.raises(IterateUsageError, match="format string"):
            load.iterate(path=["a"], item_label=42)
        with pytest.raises(IterateUsageError, match="not by position"):
            load.iterate(path=["a"], item_label="{0}")


def test_a_hung_async_item_times_out_is_retried_and_tolerated_while_the_others_finish() -> None:
    attempts: list[str] = []
    cleanups: list[str] = []

    with make_dag("async_item_timeout") as dag:

        @task
        async def fetch(path: str) -> str:
            attempts.append(path)
            try:
                if path == "hung":
                    await asyncio.Event().wait()  # a server that accepted the request and went quiet
                await asyncio.sleep(0.01)
                return path
            finally:
                cleanups.append(path)

        fetch.iterate(
            path=["a", "hung", "b", "c"],
            item_timeout=0.5,
            item_retries=1,
            item_retry_delay=0,
            max_failures=1,
        )

    started = time.monotonic()
    dag_run = run_dag(dag)
    assert time.monotonic() - started < 60
    assert state_of(dag_run, "fetch") == "success"
    assert xcom(dag_run, "fetch") == ["a", None, "b", "c"]
    assert attempts.count("hung") == 2 and cleanups.count("hung") == 2
    (failure,) = xcom(dag_run, "fetch", key="iterate_failures")
    assert failure["index"] == 1
    assert failure["error"].startswith("ItemTimeoutError: item 1 ('hung') ran longer than item_timeout=0.5s")
    assert ledger(dag_run, "fetch")["failed"][0]["attempts"] == 2


def test_a_hung_sync_item_does_not_hold_the_run_past_its_timeout() -> None:
    release = threading.Event()

    with make_dag("sync_item_timeout") as dag:

        @task
        def fetch(path: str) -> str:
            if path == "hung":
                release.wait(120)  # a sync client without its own timeout
            return path

        fetch.iterate(path=["hung", *"abcdef"], item_timeout=0.5, max_failures=1, concurrency=2)

    started = time.monotonic()
    try:
        dag_run = run_dag(dag)
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert state_of(dag_run, "fetch") == "success"
    assert xcom(dag_run, "fetch") == [None, *"abcdef"]
    assert elapsed < 60  # not the 120 s the item would have held its slot
    (failure,) = xcom(dag_run, "fetch", key="iterate_failures")
    assert "could not be interrupted" in failure["error"]


def test_the_ledger_of_a_chunked_task_covers_the_whole_input() -> None:
    with make_dag("chunked_ledger") as dag:

        @task
        def square(n: int) -> int:
            if n in (3, 17):
                raise ValueError(f"odd one {n}")
            return n * n

        square.iterate(n=list(range(20)), chunks=2, max_failures=None, item_label="n={n}")

    dag_run = run_dag(dag)
    whole = ledger(dag_run, "square.gather")
    assert whole["counts"]["failed"] == 2 and whole["counts"]["succeeded"] == 18
    assert [(f["index"], f["label"], f["error_type"]) for f in whole["failed"]] == [
        (3, "n=3", "ValueError"),
        (17, "n=17", "ValueError"),
    ]
    assert whole["chunks"]["rows"] == [[0, 0, 10, 9, 1], [1, 10, 20, 9, 1]]
    second = ledger(dag_run, "square.chunks", map_index=1)
    assert second["chunk"] == {"start": 10, "stop": 20} and second["done_ranges"] == [[10, 20]]
