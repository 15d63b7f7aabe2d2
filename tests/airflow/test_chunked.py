"""``chunk_size`` / ``chunks``: one input split over mapped task instances, through dag.test()."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, BaseOperator, TaskGroup, task

import airflow_iterate
from airflow_iterate import IterateInputError, IterateUsageError
from airflow_iterate._airflow import _paging
from airflow_iterate._airflow._inputs import ProductInput
from airflow_iterate._airflow._paging import window
from airflow_iterate._airflow._scaleout._gather import _check_complete
from airflow_iterate._airflow._scaleout._plan import chunk_bounds
from tests.airflow._dagrun import DagSerialization, run_dag, task_instances, xcom

START = pendulum.datetime(2025, 1, 1, tz="UTC")


def make_dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False)


def states(dag_run: Any) -> dict[tuple[str, int], str | None]:
    return {(task_id, map_index): state for task_id, map_index, state in task_instances(dag_run)}


# -- planning -------------------------------------------------------------------------------------


def test_chunk_size_gives_full_chunks_and_a_shorter_last_one() -> None:
    assert chunk_bounds(23, chunk_size=5, chunks=None) == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    assert chunk_bounds(5, chunk_size=5, chunks=None) == [(0, 5)]
    assert chunk_bounds(3, chunk_size=5, chunks=None) == [(0, 3)]


def test_chunks_splits_evenly_and_never_makes_an_empty_chunk() -> None:
    assert chunk_bounds(10, chunk_size=None, chunks=4) == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert chunk_bounds(3, chunk_size=None, chunks=8) == [(0, 1), (1, 2), (2, 3)]
    # an empty input still has one (empty) chunk, so the run succeeds with [] as unchunked does
    assert chunk_bounds(0, chunk_size=None, chunks=8) == [(0, 0)]
    assert chunk_bounds(0, chunk_size=5, chunks=None) == [(0, 0)]


class FakeLazySequence(Sequence[int]):
    """Stands in for a lazy XCom sequence: every slice is one request, recorded."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.requests: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, slice):
            raise AssertionError("read one element at a time: one request per item")
        start, stop, _ = key.indices(self.size)
        self.requests.append((start, stop))
        return list(range(start, stop))

    def __iter__(self) -> Iterator[int]:
        raise AssertionError("iterated from the start instead of slicing")


def test_a_lazy_input_is_read_only_within_the_chunk_a_page_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_paging, "is_lazy_xcom_sequence", lambda v: isinstance(v, FakeLazySequence))
    sequence = FakeLazySequence(10_000)
    items = list(window(sequence, 2500, 5000))
    assert items == list(range(2500, 5000))
    assert sequence.requests == [(2500, 3500), (3500, 4500), (4500, 5000)]


def test_the_cross_product_is_chunked_over_its_flattened_index() -> None:
    value = {"a": [0, 1, 2, 3], "b": ["x", "y"], "c": {"k": 1, "l": 2}}
    full = list(ProductInput(value).window(0, 16))
    assert full[:3] == [
        {"a": 0, "b": "x", "c": ("k", 1)},
        {"a": 0, "b": "x", "c": ("l", 2)},
        {"a": 0, "b": "y", "c": ("k", 1)},
    ]
    pieces = [
        list(ProductInput(value).window(start, stop))
        for start, stop in chunk_bounds(16, chunks=3, chunk_size=None)
    ]
    assert [len(p) for p in pieces] == [5, 5, 6]
    assert [item for piece in pieces for item in piece] == full


# -- results --------------------------------------------------------------------------------------


def test_a_mapped_upstream_is_chunked_and_gathered_in_input_order() -> None:
    seen_indexes: dict[int, int] = {}

    with make_dag("chunked_mapped_upstream") as dag:

        @task
        def make(n: int) -> int:
            return n

        @task
        async def double(x: int, iterate_index: int = -1) -> int:
            seen_indexes[x] = iterate_index
            return x * 2

        @task
        def collect(values: list[int]) -> list[int]:
            return list(values)

        collect(double.iterate(x=make.expand(n=list(range(11))), chunk_size=4))

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert xcom(dag_run, "collect") == [n * 2 for n in range(11)]
    assert xcom(dag_run, "double.plan") == [
        {"start": 0, "stop": 4},
        {"start": 4, "stop": 8},
        {"start": 8, "stop": 11},
    ]
    # iterate_index is the position in the whole input, not in the chunk
    assert seen_indexes == {n: n for n in range(11)}
    got = states(dag_run)
    assert [key for key in got if key[0] == "double.chunks"] == [("double.chunks", i) for i in range(3)]
    assert all(state == "success" for state in got.values()), got
    assert xcom(dag_run, "double.chunks", key="iterate_summary", map_index=2)["total"] == 3
    summary = xcom(dag_run, "double.gather", key="iterate_summary")
    assert (summary["chunks"], summary["total"], summary["succeeded"]) == (3, 11, 11)


def test_chunks_over_an_upstream_list_and_a_literal() -> None:
    with make_dag("chunked_list") as dag:

        @task
        def names() -> list[str]:
            return [f"n{i}" for i in range(10)]

        @task
        def label(name: str, suffix: str) -> str:
            return f"{name}-{suffix}"

        label.iterate(name=names(), suffix=["a", "b"], chunks=3, concurrency=2)

    dag_run = run_dag(dag)
    assert xcom(dag_run, "label.gather") == [f"n{i}-{s}" for i in range(10) for s in "ab"]
    assert [d["stop"] - d["start"] for d in xcom(dag_run, "label.plan")] == [6, 7, 7]


def test_mapped_and_zipped_xcom_args() -> None:
    with make_dag("chunked_map_zip") as dag:

        @task
        def numbers() -> list[int]:
            return list(range(7))

        @task
        def letters() -> list[str]:
            return list("abcdefg")

        @task
        def pair(p: tuple[int, str]) -> str:
            return f"{p[0]}{p[1]}"

        @task
        def plus_one(n: int) -> int:
            return n

        plus_one.override(task_id="mapped").iterate(n=numbers().map(lambda n: n + 1), chunk_size=3)
        pair.iterate(p=numbers().zip(letters()), chunk_size=3)

    dag_run = run_dag(dag)
    assert xcom(dag_run, "mapped.gather") == [n + 1 for n in range(7)]
    assert xcom(dag_run, "pair.gather") == [f"{n}{c}" for n, c in zip(range(7), "abcdefg", strict=True)]


def test_iterate_kwargs_in_chunks_as_a_plain_function() -> None:
    with make_dag("chunked_kwargs") as dag:

        @task
        def add(a: int, b: int) -> int:
            return a + b

        airflow_iterate.iterate_kwargs(add, [{"a": i, "b": 10 * i} for i in range(9)], chunks=2)

    assert xcom(run_dag(dag), "add.gather") == [11 * i for i in range(9)]


def test_an_empty_input_succeeds_with_an_empty_list() -> None:
    ran: list[Any] = []

    with make_dag("chunked_empty") as dag:

        @task
        def nothing() -> list[int]:
            return []

        @task
        def work(x: int) -> int:
            return x

        @task
        def after(values: list[int]) -> None:
            ran.append(list(values))

        after(work.iterate(x=nothing(), chunk_size=10))

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert ran == [[]]
    assert xcom(dag_run, "work.plan") == [{"start": 0, "stop": 0}]


class PathOperator(BaseOperator):
    template_fields = ("path", "prefix")

    def __init__(self, *, path: str, prefix: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.prefix = prefix

    def execute(self, context: Any) -> str:
        context["ti"].xcom_push(key="length", value=len(self.path))
        return f"{self.prefix}{self.path}"


def test_operator_partials_chunk_with_global_template_indexes() -> None:
    with make_dag("chunked_operator") as dag:

        @task
        def files() -> list[str]:
            return [f"f{i}" for i in range(7)]

        # The DAG's template renders per item with the item's place in the whole input; the
        # values from the XCom are data and stay as they are, as with .expand().
        PathOperator.partial(task_id="copy", prefix="{{ iterate_index }}>").iterate(
            path=files().map(lambda f: f + "-{{ iterate_index }}"), chunk_size=3
        )

    dag_run = run_dag(dag)
    paths = [f"f{i}-{{{{ iterate_index }}}}" for i in range(7)]
    assert xcom(dag_run, "copy.gather") == [f"{i}>{path}" for i, path in enumerate(paths)]
    # item XComs: one list per chunk task instance, and the gather's over the whole input
    assert xcom(dag_run, "copy.chunks", key="length", map_index=2) == [len(paths[6])]
    assert xcom(dag_run, "copy.gather", key="length") == [len(path) for path in paths]
    op = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("copy.chunks")
    assert op.upstream_task_ids == {"copy.plan", "files"}
    assert op.operator_name == "PathOperator.iterate"


def test_item_xcoms_are_combined_over_the_chunks_in_input_order() -> None:
    with make_dag("chunked_item_xcoms") as dag:

        @task
        def tag(n: int, ti: Any = None) -> int:
            if n >= 3:  # the first chunk (0, 1, 2) pushes nothing at all
                ti.xcom_push(key="tenfold", value=n * 10)
            if n % 2:
                ti.xcom_push(key="odd", value=True)
            return n

        tag.iterate(n=list(range(8)), chunk_size=3)

    dag_run = run_dag(dag)
    assert xcom(dag_run, "tag.gather") == list(range(8))
    assert xcom(dag_run, "tag.gather", key="tenfold") == [None, None, None, 30, 40, 50, 60, 70]
    assert xcom(dag_run, "tag.gather", key="odd") == [None, True, None, True, None, True, None, True]


# -- failures and resume --------------------------------------------------------------------------


def test_failures_name_the_global_index_and_are_gathered() -> None:
    with make_dag("chunked_failures") as dag:

        @task
        def parse(n: int) -> int:
            if n in (2, 7):
                raise ValueError(f"bad {n}")
            return n

        parse.iterate(n=list(range(9)), chunk_size=4, max_failures=2)

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert xcom(dag_run, "parse.gather") == [0, 1, None, 3, 4, 5, 6, None, 8]
    assert xcom(dag_run, "parse.chunks", key="iterate_failures", map_index=1) == [
        {"index": 7, "input": "7", "error": "ValueError: bad 7"}
    ]
    assert [f["index"] for f in xcom(dag_run, "parse.gather", key="iterate_failures")] == [2, 7]


def test_max_failures_holds_for_the_whole_input(capfd: pytest.CaptureFixture[str]) -> None:
    with make_dag("chunked_failure_limit") as dag:

        @task
        def parse(n: int) -> int:
            if n % 4 == 1:
                raise ValueError(f"bad {n}")
            return n

        # every chunk has one failure (within the limit on its own), three in all are over it
        parse.iterate(n=list(range(12)), chunk_size=4, max_failures=2)

    dag_run = run_dag(dag)
    logs = "".join(capfd.readouterr())
    got = states(dag_run)
    assert all(got[("parse.chunks", i)] == "success" for i in range(3))
    assert got[("parse.gather", -1)] == "failed"
    assert "3 item(s) of 12 failed" in logs and "item 5 (input 5)" in logs


def test_a_retried_chunk_resumes_from_its_own_checkpoint() -> None:
    calls: Counter[int] = Counter()

    with make_dag("chunked_resume") as dag:

        @task(retries=1, retry_delay=dt.timedelta(seconds=0))
        async def download(n: int, ti: Any = None) -> str:
            calls[n] += 1
            if ti.try_number == 1 and ti.map_index == 1 and n >= 15:
                raise ConnectionError("server dropped the connection")
            return f"file-{n}"

        download.iterate(n=list(range(30)), chunk_size=10, concurrency=1)

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert xcom(dag_run, "download.gather") == [f"file-{n}" for n in range(30)]
    # chunk 1 (items 10..19) failed at 15 and its retry ran 15..19 only; the others ran once
    assert all(calls[n] == 1 for n in range(30) if n != 15), calls
    assert calls[15] == 2
    assert xcom(dag_run, "download.chunks", key="iterate_summary", map_index=1)["resumed"] == 5
    assert xcom(dag_run, "download.chunks", key="iterate_summary", map_index=0)["resumed"] == 0


def test_the_plan_refuses_more_chunks_than_a_mapped_task_may_have(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "4")
    with make_dag("chunked_too_many") as dag:

        @task
        def work(n: int) -> int:
            return n

        work.iterate(n=list(range(10)), chunk_size=2)

    dag_run = run_dag(dag)
    assert states(dag_run)[("work.plan", -1)] == "failed"
    assert "into 5 chunks, over [core] max_map_length=4" in "".join(capfd.readouterr())


def test_the_plan_applies_max_items_to_the_whole_input(capfd: pytest.CaptureFixture[str]) -> None:
    with make_dag("chunked_max_items") as dag:

        @task
        def many() -> list[int]:
            return list(range(50))

        @task
        def work(n: int) -> int:
            return n

        work.iterate(n=many(), chunks=2, max_items=40)

    dag_run = run_dag(dag)
    assert states(dag_run)[("work.plan", -1)] == "failed"
    assert "the input has 50 items, over max_items=40" in "".join(capfd.readouterr())


def test_an_input_that_is_not_a_list_fails_the_plan_naming_the_argument(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with make_dag("chunked_bad_input") as dag:

        @task
        def not_a_list() -> int:
            return 7

        @task
        def work(n: int) -> int:
            return n

        work.iterate(n=not_a_list(), chunks=2)

    dag_run = run_dag(dag)
    assert states(dag_run)[("work.plan", -1)] == "failed"
    assert "iterate() argument 'n' is int 7" in "".join(capfd.readouterr())


def test_the_gather_refuses_results_that_do_not_match_the_plan() -> None:
    plan = [{"start": 0, "stop": 2}, {"start": 2, "stop": 3}]
    _check_complete([[1, 2], [3]], plan)
    # a chunk without its return value (marked successful by hand) would shift every later item
    with pytest.raises(IterateInputError, match="marked successful by hand"):
        _check_complete([[1, 2]], plan)
    with pytest.raises(IterateInputError, match="sizes"):
        _check_complete([[1], [2, 3]], plan)


# -- the DAG it builds ----------------------------------------------------------------------------


@task
def fetch(path: str) -> str:
    return path


def test_the_group_holds_plan_chunks_and_gather_and_keeps_dependencies() -> None:
    with make_dag("chunked_shape") as dag:

        @task
        def start() -> None: ...

        @task
        def done(values: list[str]) -> None: ...

        result = fetch.override(
            retries=3, pool="sftp", queue="transfers", max_active_tis_per_dagrun=2
        ).iterate(path=["a", "b", "c"], chunk_size=2)
        start() >> result
        done(result)

    plan, chunks, gather = (dag.get_task(f"fetch.{name}") for name in ("plan", "chunks", "gather"))
    assert plan.upstream_task_ids == {"start"}
    assert chunks.upstream_task_ids == {"fetch.plan"} and chunks.is_mapped
    assert gather.upstream_task_ids == {"fetch.chunks"} and gather.downstream_task_ids == {"done"}
    assert dag.task_group.get_child_by_label("fetch").group_id == "fetch"
    # the chunks carry the task's settings; plan and gather only where it may run
    assert chunks.partial_kwargs["pool"] == "sftp" and chunks.partial_kwargs["retries"] == 3
    assert chunks.partial_kwargs["max_active_tis_per_dagrun"] == 2
    assert (plan.queue, gather.queue, plan.retries) == ("transfers", "transfers", 3)
    assert plan.pool != "sftp" and gather.pool != "sftp"
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert serialized.get_task("fetch.chunks").operator_name == "@task.iterate"
    assert serialized.get_task("fetch.gather").downstream_task_ids == {"done"}


def test_group_ids_stay_unique_and_nest_in_task_groups() -> None:
    with make_dag("chunked_names") as dag:
        fetch.iterate(path=["a"], chunks=2)
        fetch.iterate(path=["b"], chunks=2)
        with TaskGroup("outer"):
            fetch.iterate(path=["c"], chunks=2)

    assert {"fetch.plan", "fetch__1.plan", "outer.fetch.plan"} <= set(dag.task_ids)
    assert xcom(run_dag(dag), "outer.fetch.gather") == ["c"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chunk_size": 0}, r"chunk_size must be a positive int or None, got 0"),
        ({"chunks": -2}, r"chunks must be a positive int or None, got -2"),
        ({"chunk_size": "100"}, r"chunk_size must be a positive int or None, got '100'"),
        ({"chunks": True}, r"chunks must be a positive int or None, got True"),
        ({"chunk_size": 10, "chunks": 2}, r"pass chunk_size \(items per task instance\) or chunks"),
    ],
)
def test_chunk_options_are_checked_at_parse_time(options: dict[str, Any], message: str) -> None:
    with make_dag("chunked_bad_options"):
        with pytest.raises(IterateUsageError, match=message):
            fetch.iterate(path=["a"], **options)
        with pytest.raises(IterateUsageError, match=message):
            fetch.iterate_kwargs([{"path": "a"}], **options)


def test_a_parameter_named_chunks_points_to_iterate_kwargs() -> None:
    @task
    def split(text: str, chunks: int) -> list[str]:
        return [text]

    with make_dag("chunked_clash"), pytest.raises(IterateUsageError, match=r"'chunks'.*iterate_kwargs"):
        split.iterate(text=["a"])


def test_chunking_needs_a_dag() -> None:
    with pytest.raises(IterateUsageError, match="needs a DAG"):
        fetch.iterate(path=["a"], chunk_size=1)
