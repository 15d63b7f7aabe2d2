"""Retries, failure tolerance, resume, progress and bad results, through dag.test()."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import Counter
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, task

import airflow_iterate  # noqa: F401  - adds .iterate() to @task functions
from tests.airflow._dagrun import run_dag, task_instances, xcom

try:
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowFailException, AirflowSkipException  # type: ignore[no-redef]

START = pendulum.datetime(2025, 1, 1, tz="UTC")


def make_dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False)


def states(dag_run: Any) -> dict[str, str | None]:
    return {task_id: state for task_id, _, state in task_instances(dag_run)}


def test_flaky_items_succeed_through_item_retries() -> None:
    attempts: Counter[int] = Counter()

    with make_dag("flaky_items") as dag:

        @task
        async def flaky(x: int) -> int:
            attempts[x] += 1
            if attempts[x] < 3 and x % 4 == 0:
                raise ConnectionResetError(f"connection reset while fetching {x}")
            return x

        flaky.iterate(x=list(range(40)), item_retries=2, item_retry_delay=0.01)

    dag_run = run_dag(dag)
    assert xcom(dag_run, "flaky") == list(range(40))
    assert xcom(dag_run, "flaky", key="iterate_summary")["retried"] == 20
    assert attempts[0] == 3 and attempts[1] == 1


def test_retry_lines_in_the_task_log_redact_secrets(capfd: pytest.CaptureFixture[str]) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret("hunter2-retry-key")
    attempts: Counter[str] = Counter()

    with make_dag("retry_lines_redacted") as dag:

        @task
        def call(user: str, password: str) -> str:
            attempts[user] += 1
            if user == "gone":
                raise FileNotFoundError(f"/home/{user}/key?token=hunter2-retry-key")
            if attempts[user] == 1:
                raise ConnectionResetError(f"GET https://api.example/?api_key=hunter2-retry-key as {user}")
            return user

        call.iterate_kwargs(
            [{"user": "ann", "password": "pw-of-ann-2"}, {"user": "gone", "password": "pw-of-gone"}],
            item_retries=2,
            item_retry_delay=0.01,
            max_failures=1,
            concurrency=1,
        )

    dag_run = run_dag(dag)
    logs = "".join(capfd.readouterr())
    assert xcom(dag_run, "call") == ["ann", None]
    assert attempts == {"ann": 2, "gone": 1}
    retries = [line for line in logs.splitlines() if "Iterate retries:" in line]
    assert len(retries) == 2, retries
    assert (
        "Iterate retries: item 0 (input {'password': '***', 'user': 'ann'}) failed with "
        "ConnectionResetError: GET https://api.example/?api_key=*** as ann; retry 1/2 in "
    ) in retries[0]
    assert (
        "Iterate retries: item 1 (input {'password': '***', 'user': 'gone'}) failed with "
        "FileNotFoundError: /home/gone/key?token=***; not retried: the error is permanent "
        "(item_retry_permanent=True retries it)"
    ) in retries[1]
    assert "hunter2-retry-key" not in logs and "pw-of-" not in logs


def test_failures_under_the_limit_succeed_and_are_reported() -> None:
    with make_dag("tolerated") as dag:

        @task
        def parse(name: str) -> str:
            if name.startswith("bad"):
                raise ValueError(f"cannot parse {name}")
            return name.upper()

        parse.iterate(name=["a", "bad1", "b", "bad2"], max_failures=0.5)

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert xcom(dag_run, "parse") == ["A", None, "B", None]
    assert xcom(dag_run, "parse", key="iterate_failures") == [
        {"index": 1, "input": "'bad1'", "error": "ValueError: cannot parse bad1"},
        {"index": 3, "input": "'bad2'", "error": "ValueError: cannot parse bad2"},
    ]
    summary = xcom(dag_run, "parse", key="iterate_summary")
    assert (summary["succeeded"], summary["failed"], summary["total"]) == (2, 2, 4)


def test_failures_over_the_limit_fail_the_task(capfd: pytest.CaptureFixture[str]) -> None:
    with make_dag("over_limit") as dag:

        @task
        def parse(name: str) -> str:
            if name.startswith("bad"):
                raise ValueError(f"cannot parse {name}")
            return name

        parse.iterate(name=["a", "bad1", "bad2", "bad3"], max_failures=2, concurrency=1)

    dag_run = run_dag(dag)
    logs = "".join(capfd.readouterr())
    assert states(dag_run)["parse"] == "failed"
    assert "3 item(s) of 4 failed" in logs and "item 1 (input 'bad1')" in logs


def test_a_retried_task_resumes_instead_of_starting_over() -> None:
    calls: Counter[int] = Counter()

    with make_dag("resume_after_retry") as dag:

        @task(retries=1, retry_delay=dt.timedelta(seconds=0))
        async def download(n: int, ti: Any = None) -> str:
            calls[n] += 1
            if ti.try_number == 1 and n >= 60:
                raise ConnectionError("server dropped the connection")
            await asyncio.sleep(0)
            return f"file-{n}"

        download.iterate(n=list(range(100)), concurrency=1)

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert xcom(dag_run, "download") == [f"file-{n}" for n in range(100)]
    # try 1 succeeded for 0..59 and stopped at 60; try 2 ran only 60..99
    assert all(calls[n] == 1 for n in range(60)), calls
    assert calls[60] == 2 and all(calls[n] == 1 for n in range(61, 100))
    assert xcom(dag_run, "download", key="iterate_summary")["resumed"] == 60


def test_checkpoint_false_starts_over() -> None:
    calls: Counter[int] = Counter()

    with make_dag("no_checkpoint") as dag:

        @task(retries=1, retry_delay=dt.timedelta(seconds=0))
        def work(n: int, ti: Any = None) -> int:
            calls[n] += 1
            if ti.try_number == 1 and n == 9:
                raise ConnectionError("boom")
            return n

        work.iterate(n=list(range(10)), concurrency=1, checkpoint=False)

    assert run_dag(dag).state == "success"
    assert calls[0] == 2


def test_airflow_skip_from_an_item_skips_the_task() -> None:
    with make_dag("item_skips") as dag:

        @task(retries=2)
        def maybe(n: int) -> int:
            if n == 2:
                raise AirflowSkipException("nothing new upstream")
            return n

        maybe.iterate(n=[0, 1, 2, 3], item_retries=3, concurrency=1)

    assert states(run_dag(dag))["maybe"] == "skipped"


def test_airflow_fail_from_an_item_fails_the_task_without_retries() -> None:
    calls: Counter[int] = Counter()

    with make_dag("item_fails_hard") as dag:

        @task(retries=3, retry_delay=dt.timedelta(seconds=0))
        def strict(n: int) -> int:
            calls[n] += 1
            if n == 1:
                raise AirflowFailException("credentials revoked")
            return n

        strict.iterate(n=[0, 1, 2], item_retries=3, max_failures=None, concurrency=1)

    dag_run = run_dag(dag)
    assert states(dag_run)["strict"] == "failed"
    assert calls[1] == 1  # neither an item retry nor a task retry


def test_progress_lines_appear_in_the_task_log(capfd: pytest.CaptureFixture[str]) -> None:
    with make_dag("progress") as dag:

        @task
        async def tick(n: int) -> int:
            await asyncio.sleep(0.002)  # ~0.6 s of work in all, many progress intervals
            return n

        tick.iterate(n=list(range(300)), concurrency=1, progress_interval=0.05)

    run_dag(dag)
    logs = "".join(capfd.readouterr())
    progress = [line for line in logs.splitlines() if "Iterate progress:" in line]
    assert len(progress) >= 3
    assert "/ 300 done" in progress[0] and "items/s" in progress[0]
    finished = [line for line in logs.splitlines() if "Iterate finished: 300 / 300 done" in line]
    assert len(finished) == 1 and "ETA" not in finished[0]  # nothing left to estimate
    assert "ETA" in progress[0]


def test_an_unserializable_result_names_its_item(capfd: pytest.CaptureFixture[str]) -> None:
    with make_dag("unserializable") as dag:

        @task
        def opaque(n: int) -> Any:
            return object() if n == 2 else n

        opaque.iterate(n=[0, 1, 2, 3])

    dag_run = run_dag(dag)
    logs = "".join(capfd.readouterr())
    assert states(dag_run)["opaque"] == "failed"
    assert "item 2 (input 2)" in logs and "cannot be stored as an XCom" in logs


def test_max_items_guards_against_a_runaway_input(capfd: pytest.CaptureFixture[str]) -> None:
    calls: list[int] = []

    with make_dag("max_items") as dag:

        @task
        def many() -> list[int]:
            return list(range(11))

        @task
        def each(n: int) -> int:
            calls.append(n)
            return n

        each.iterate(n=many(), max_items=10)

    dag_run = run_dag(dag)
    assert states(dag_run)["each"] == "failed"
    assert calls == []
    assert "11 items, over max_items=10" in "".join(capfd.readouterr())


def test_libraries_log_warnings_only_while_items_run(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    chatty = logging.getLogger("chatty.library")  # as asyncssh logs each handshake, at INFO
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("AIRFLOW__ITERATE__QUIET_LOGGERS", "paramiko, chatty.library")

    @task
    def talk(n: int) -> int:
        chatty.info("handshake detail %d", n)
        chatty.warning("server refused %d", n)
        return n

    def library_lines() -> list[str]:
        lines = [r.getMessage() for r in caplog.records if r.name == chatty.name]
        caplog.clear()
        return sorted(lines)

    with make_dag("quiet_libraries") as dag:
        talk.iterate(n=[0, 1])
    run_dag(dag)
    assert library_lines() == ["server refused 0", "server refused 1"]
    assert chatty.level == logging.NOTSET  # given back after the run

    # the deployment chooses: an empty [iterate] quiet_loggers keeps every library's INFO lines
    monkeypatch.setenv("AIRFLOW__ITERATE__QUIET_LOGGERS", "")
    with make_dag("loud_libraries") as dag:
        talk.iterate(n=[0, 1])
    run_dag(dag)
    assert library_lines() == [
        "handshake detail 0",
        "handshake detail 1",
        "server refused 0",
        "server refused 1",
    ]
