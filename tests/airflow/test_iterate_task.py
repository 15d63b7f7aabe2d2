"""@task functions with .iterate()/.iterate_kwargs(), run through dag.test() against a real metadata DB."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, task

import airflow_iterate
from tests.airflow._dagrun import DagSerialization, run_dag, task_instances, xcom

START = pendulum.datetime(2025, 1, 1, tz="UTC")


def make_dag(dag_id: str, **kwargs: Any) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False, **kwargs)


# -- results --------------------------------------------------------------------------------------


def test_async_iterate_over_an_upstream_xcom_returns_every_result_in_order() -> None:
    received: list[list[int]] = []

    with make_dag("async_over_xcom") as dag:

        @task
        def numbers() -> list[int]:
            return list(range(1000))

        @task
        async def slow_double(x: int) -> int:
            await asyncio.sleep(0.001 * (x % 7))  # completion order differs from input order
            return x * 2

        @task
        def collect(values: list[int]) -> int:
            received.append(list(values))
            return len(values)

        collect(slow_double.iterate(x=numbers()))

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert received == [[x * 2 for x in range(1000)]]
    assert xcom(dag_run, "slow_double") == [x * 2 for x in range(1000)]
    # ONE task instance for the iterated task, not one per item.
    assert [t for t in task_instances(dag_run) if t[0] == "slow_double"] == [("slow_double", -1, "success")]


def test_sync_iterate_over_a_literal_list_runs_on_a_thread_pool() -> None:
    threads: set[str] = set()

    with make_dag("sync_literal") as dag:

        @task
        def shout(word: str) -> str:
            threads.add(threading.current_thread().name)
            return word.upper()

        shout.iterate(word=["a", "b", "c", "d"], concurrency=2)

    dag_run = run_dag(dag)
    assert xcom(dag_run, "shout") == ["A", "B", "C", "D"]
    assert threads and all(name.startswith("iterate-worker-") for name in threads)


def test_partial_arguments_reach_every_item() -> None:
    with make_dag("partial_args") as dag:

        @task
        async def scale(x: int, factor: int, offset: int = 0) -> int:
            return x * factor + offset

        scale.partial(factor=10, offset=1).iterate(x=[1, 2, 3])

    assert xcom(run_dag(dag), "scale") == [11, 21, 31]


def test_several_arguments_iterate_over_their_cross_product_like_expand() -> None:
    with make_dag("cross_product") as dag:

        @task
        def pair(a: int, b: str) -> str:
            return f"{a}{b}"

        pair.iterate(a=[1, 2], b=["x", "y", "z"])

    assert xcom(run_dag(dag), "pair") == ["1x", "1y", "1z", "2x", "2y", "2z"]


def test_a_dict_iterates_as_key_value_pairs_like_expand() -> None:
    with make_dag("dict_pairs") as dag:

        @task
        def render(entry: tuple[str, int]) -> str:
            key, value = entry
            return f"{key}={value}"

        render.iterate(entry={"a": 1, "b": 2})

    assert xcom(run_dag(dag), "render") == ["a=1", "b=2"]


def test_iterate_kwargs_over_literal_and_xcom_lists_of_dicts() -> None:
    with make_dag("iterate_kwargs") as dag:

        @task
        def jobs() -> list[dict[str, Any]]:
            return [{"path": f"f{i}.xml", "size": i} for i in range(5)]

        @task
        async def describe(path: str, size: int, unit: str = "B") -> str:
            return f"{path}:{size}{unit}"

        describe.iterate_kwargs(jobs())
        describe.partial(unit="kB").iterate_kwargs([{"path": "a", "size": 1}, {"path": "b", "size": 2}])

    dag_run = run_dag(dag)
    assert xcom(dag_run, "describe") == [f"f{i}.xml:{i}B" for i in range(5)]
    assert xcom(dag_run, "describe__1") == ["a:1kB", "b:2kB"]


def test_iterate_result_feeds_another_iterate_and_an_expand() -> None:
    with make_dag("chained") as dag:

        @task
        def start() -> list[int]:
            return [1, 2, 3]

        @task
        async def inc(x: int) -> int:
            return x + 1

        @task
        def square(x: int) -> int:
            return x * x

        incremented = inc.iterate(x=start())
        square.iterate(x=incremented)
        square.expand(x=incremented)

    dag_run = run_dag(dag)
    assert xcom(dag_run, "square") == [4, 9, 16]
    assert [xcom(dag_run, "square__1", map_index=i) for i in range(3)] == [4, 9, 16]


def test_functional_form_does_the_same_without_the_method() -> None:
    with make_dag("functional") as dag:

        @task
        def neg(x: int) -> int:
            return -x

        airflow_iterate.iterate(neg, x=[1, 2])
        airflow_iterate.iterate_kwargs(neg, [{"x": 3}])

    dag_run = run_dag(dag)
    assert (xcom(dag_run, "neg"), xcom(dag_run, "neg__1")) == ([-1, -2], [-3])


def test_an_empty_input_succeeds_with_an_empty_list() -> None:
    with make_dag("empty_input") as dag:

        @task
        def nothing() -> list[int]:
            return []

        @task
        def never(x: int) -> int:
            raise AssertionError("must not run")

        never.iterate(x=nothing())

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert xcom(dag_run, "never") == []


# -- context ------------------------------------------------------------------------------------


def test_each_item_gets_its_index_and_its_own_copy_of_the_context() -> None:
    seen: list[tuple[int, str, bool]] = []

    with make_dag("context_copy") as dag:

        @task
        async def inspect_context(x: str, **context: Any) -> int:
            leaked = "scribble" in context
            context["scribble"] = x  # must not be visible to any other item
            await asyncio.sleep(0)
            seen.append((context["iterate_index"], context["ti"].task_id, leaked))
            return int(context["iterate_index"])

        @task
        def named(x: str, iterate_index: int | None = None, run_id: str | None = None) -> str:
            return f"{iterate_index}:{x}:{bool(run_id)}"

        inspect_context.iterate(x=["a", "b", "c", "d"], concurrency=4)
        named.iterate(x=["p", "q"])

    dag_run = run_dag(dag)
    assert xcom(dag_run, "inspect_context") == [0, 1, 2, 3]
    assert sorted(seen) == [(i, "inspect_context", False) for i in range(4)]
    assert xcom(dag_run, "named") == ["0:p:True", "1:q:True"]


def test_concurrency_option_bounds_items_in_flight() -> None:
    peak = 0

    with make_dag("concurrency_option") as dag:

        @task
        async def probe(x: int) -> int:
            nonlocal peak
            probe_live.append(x)
            peak = max(peak, len(probe_live))
            await asyncio.sleep(0.001)
            probe_live.remove(x)
            return x

        probe.iterate(x=list(range(200)), concurrency=5)

    probe_live: list[int] = []
    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert peak == 5


# -- failures and timeouts -----------------------------------------------------------------------


def test_a_failing_item_fails_the_task_with_its_index_and_input(capfd: pytest.CaptureFixture[str]) -> None:
    with make_dag("item_fails") as dag:

        @task
        def parse(name: str) -> str:
            if name == "broken.xml":
                raise ValueError("not well-formed (line 1)")
            return name

        @task
        def after(values: list[str]) -> None:
            raise AssertionError("downstream must not run")

        after(parse.iterate(name=["a.xml", "b.xml", "broken.xml", "c.xml"]))

    dag_run = run_dag(dag)
    out = capfd.readouterr()
    logs = out.out + out.err
    assert dag_run.state == "failed"
    states = {t[0]: t[2] for t in task_instances(dag_run)}
    assert states["parse"] == "failed"
    assert states["after"] == "upstream_failed"
    assert "item 2 (input 'broken.xml'): ValueError: not well-formed (line 1)" in logs


def test_an_xcom_that_is_not_a_list_fails_with_a_clear_error(capfd: pytest.CaptureFixture[str]) -> None:
    with make_dag("not_a_list") as dag:

        @task
        def count() -> int:
            return 42

        @task
        def use(n: int) -> int:
            return n

        use.iterate(n=count())

    dag_run = run_dag(dag)
    out = capfd.readouterr()
    assert dag_run.state == "failed"
    assert "iterate() argument 'n' is int 42; expected a list" in out.out + out.err
    assert "Iterate finished" not in out.out + out.err  # nothing ran: no empty summary before the error


def test_execution_timeout_cancels_in_flight_items_and_runs_their_cleanup() -> None:
    cleaned_up: list[int] = []

    with make_dag("timeout") as dag:

        @task(execution_timeout=dt.timedelta(seconds=2))
        async def hang(x: int) -> int:
            if x < 10:
                return x
            try:
                await asyncio.Event().wait()  # an item that never finishes on its own
            finally:
                cleaned_up.append(x)
            return x  # pragma: no cover

        hang.iterate(x=list(range(100)), concurrency=4)

    started = time.monotonic()
    dag_run = run_dag(dag)
    assert dag_run.state == "failed"
    assert time.monotonic() - started < 60
    assert sorted(cleaned_up) == [10, 11, 12, 13]


# -- serialization --------------------------------------------------------------------------------


def test_the_dag_serializes_with_one_unmapped_iterate_task() -> None:
    with make_dag("serializes") as dag:

        @task
        def files() -> list[str]:
            return ["a"]

        @task
        async def fetch(path: str, retries_per_file: int) -> str:
            """Fetch one file."""
            return path

        fetch.partial(retries_per_file=2).iterate(path=files())

    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    op = restored.get_task("fetch")
    assert not getattr(op, "is_mapped", False)
    assert op.operator_name == "@task.iterate"
    assert op.upstream_task_ids == {"files"}
    assert op.doc_md == "Fetch one file."


def test_the_output_of_a_mapped_task_is_read_page_by_page() -> None:
    from airflow_iterate._airflow import _paging

    with make_dag("mapped_upstream") as dag:

        @task
        def part(n: int) -> str:
            return f"p{n}"

        @task
        async def use(name: str, iterate_index: int | None = None) -> str:
            return f"{iterate_index}:{name}"

        use.iterate(name=part.expand(n=list(range(25))))

    pages: list[int] = []
    real_pages = _paging._pages

    def recorded_pages(sequence: Any, start: int, stop: int | None) -> Any:
        for page in real_pages(sequence, start, stop):
            pages.append(len(page))
            yield page

    _paging._pages, _paging.PAGE_SIZE = recorded_pages, 4  # several pages, a short last one
    try:
        dag_run = run_dag(dag)
    finally:
        _paging._pages, _paging.PAGE_SIZE = real_pages, 1000
    assert xcom(dag_run, "use") == [f"{i}:p{i}" for i in range(25)]
    assert pages == [4, 4, 4, 4, 4, 4, 1]
