"""``SomeOperator.partial(...).iterate(...)``: classic and async operators, through dag.test()."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections import Counter
from typing import Any

import pendulum
import pytest
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, BaseOperator, task

import airflow_iterate  # noqa: F401  - adds .iterate() to operator partials
from airflow_iterate import BaseAsyncOperator, IterateUsageError
from tests.airflow._dagrun import DagSerialization, run_dag, task_instances, xcom

START = pendulum.datetime(2025, 1, 1, tz="UTC")

CALLS: Counter[str] = Counter()
LOOPS: set[int] = set()
THREADS: set[str] = set()


def make_dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False)


class FetchOperator(BaseOperator):
    """A classic operator shaped like SFTPOperator: templated paths, pushes its own XCom."""

    template_fields = ("remote_path", "local_path")

    def __init__(self, *, remote_path: str, local_path: str, fail_once: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.remote_path = remote_path
        self.local_path = local_path
        self.fail_once = fail_once

    def execute(self, context: Any) -> str:
        CALLS[self.remote_path] += 1
        THREADS.add(threading.current_thread().name)
        if self.fail_once and context["ti"].try_number == 1 and self.remote_path.endswith("3.xml"):
            raise ConnectionError("lost the server")
        context["ti"].xcom_push(key="bytes", value=len(self.remote_path))
        return f"{self.remote_path} -> {self.local_path}"


class AsyncProbeOperator(BaseAsyncOperator):
    def __init__(self, *, value: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value

    async def aexecute(self, context: Any) -> int:
        LOOPS.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0.001)
        return self.value * 10


class DeferringOperator(BaseOperator):
    def __init__(self, *, path: str, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.deferrable = deferrable


def test_bash_operator_renders_each_item_against_its_own_context() -> None:
    with make_dag("bash_items") as dag:
        BashOperator.partial(task_id="say", env={"GREETING": "hi"}).iterate(
            bash_command=[
                "echo $GREETING {{ iterate_index }}",
                "echo {{ ti.task_id }}-{{ iterate_index }}",
                "echo plain",
            ]
        )

    dag_run = run_dag(dag)
    assert xcom(dag_run, "say") == ["hi 0", "say-1", "plain"]
    assert [t for t in task_instances(dag_run) if t[0] == "say"] == [("say", -1, "success")]


def test_classic_operator_items_run_on_threads_and_keep_their_xcoms_apart() -> None:
    THREADS.clear()
    with make_dag("classic_items") as dag:

        @task
        def paths() -> list[str]:
            return [f"/in/{n}.xml" for n in range(6)]

        FetchOperator.partial(task_id="fetch", local_path="/tmp/{{ iterate_index }}.xml").iterate(
            remote_path=paths(), concurrency=3
        )

    dag_run = run_dag(dag)
    assert xcom(dag_run, "fetch") == [f"/in/{n}.xml -> /tmp/{n}.xml" for n in range(6)]
    # every item pushed key "bytes": one XCom, one value per item, in input order
    assert xcom(dag_run, "fetch", key="bytes") == [len(f"/in/{n}.xml") for n in range(6)]
    assert THREADS and all(name.startswith("iterate-worker-") for name in THREADS)


def test_async_operator_items_share_one_event_loop() -> None:
    LOOPS.clear()
    with make_dag("async_operator_items") as dag:
        AsyncProbeOperator.partial(task_id="probe").iterate(value=list(range(50)), concurrency=10)

    dag_run = run_dag(dag)
    assert xcom(dag_run, "probe") == [v * 10 for v in range(50)]
    assert len(LOOPS) == 1


def test_an_async_operator_also_runs_as_a_plain_task() -> None:
    # Airflow 3.1 has no BaseAsyncOperator: there this covers the package's fallback's execute()
    LOOPS.clear()
    with make_dag("async_operator_plain") as dag:
        AsyncProbeOperator(task_id="probe", value=4, execution_timeout=dt.timedelta(seconds=30))

    assert xcom(run_dag(dag), "probe") == 40
    assert len(LOOPS) == 1


def test_operator_iterate_kwargs() -> None:
    with make_dag("operator_kwargs") as dag:
        FetchOperator.partial(task_id="fetch").iterate_kwargs(
            [{"remote_path": "/a", "local_path": "/x"}, {"remote_path": "/b", "local_path": "/y"}]
        )

    assert xcom(run_dag(dag), "fetch") == ["/a -> /x", "/b -> /y"]


def test_a_retried_operator_task_resumes_with_its_items_xcoms() -> None:
    CALLS.clear()
    with make_dag("operator_resume") as dag:
        FetchOperator.partial(
            task_id="fetch", local_path="/l", fail_once=True, retries=1, retry_delay=dt.timedelta(0)
        ).iterate(remote_path=[f"/r/{n}.xml" for n in range(6)], concurrency=1)

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert CALLS["/r/0.xml"] == 1 and CALLS["/r/3.xml"] == 2 and CALLS["/r/5.xml"] == 1
    assert xcom(dag_run, "fetch", key="bytes") == [len(f"/r/{n}.xml") for n in range(6)]


class ThrottledCopyOperator(BaseOperator):
    """Has its own ``concurrency``, as SFTPOperator does (files in flight within one transfer)."""

    def __init__(self, *, path: str, concurrency: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.concurrency = concurrency

    def execute(self, context: Any) -> dict[str, Any]:
        return {"path": self.path, "own_concurrency": self.concurrency}


def test_an_operator_with_a_parameter_named_like_an_option_iterates() -> None:
    with make_dag("operator_option_names") as dag:
        # .iterate(concurrency=...) is the run's option; the operator's own comes from .partial()
        ThrottledCopyOperator.partial(task_id="partial_value", concurrency=5).iterate(
            path=["/a", "/b", "/c"], concurrency=2
        )
        ThrottledCopyOperator.partial(task_id="default_value").iterate(path=["/a"], concurrency=3)
        ThrottledCopyOperator.partial(task_id="per_item").iterate_kwargs(
            [{"path": "/a", "concurrency": 7}, {"path": "/b", "concurrency": 9}], concurrency=2
        )

    dag_run = run_dag(dag)
    assert [r["own_concurrency"] for r in xcom(dag_run, "partial_value")] == [5, 5, 5]
    assert xcom(dag_run, "partial_value", key="iterate_summary")["concurrency"] == 2
    assert xcom(dag_run, "default_value") == [{"path": "/a", "own_concurrency": 1}]
    assert xcom(dag_run, "default_value", key="iterate_summary")["concurrency"] == 3
    assert [r["own_concurrency"] for r in xcom(dag_run, "per_item")] == [7, 9]


def test_deferrable_operators_are_refused_at_parse_time() -> None:
    with make_dag("deferrable"), pytest.raises(IterateUsageError, match="deferrable=False"):
        DeferringOperator.partial(task_id="wait", deferrable=True).iterate(path=["a"])


def test_unknown_operator_argument() -> None:
    with make_dag("unknown_arg"), pytest.raises(IterateUsageError, match="unexpected keyword argument 'pth'"):
        FetchOperator.partial(task_id="fetch", local_path="/l").iterate(pth=["a"])


def test_argument_already_in_partial() -> None:
    with make_dag("dup_arg"), pytest.raises(IterateUsageError, match=r"already given to \.partial"):
        FetchOperator.partial(task_id="fetch", local_path="/l").iterate(local_path=["a"], remote_path=["b"])


def test_operator_iterate_serializes_as_one_task() -> None:
    with make_dag("operator_serializes") as dag:

        @task
        def paths() -> list[str]:
            return ["/a"]

        FetchOperator.partial(task_id="fetch", local_path="/l").iterate(remote_path=paths())

    op = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("fetch")
    assert not getattr(op, "is_mapped", False)
    assert op.operator_name == "FetchOperator.iterate"
    assert op.upstream_task_ids == {"paths"}
